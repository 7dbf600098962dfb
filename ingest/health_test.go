package ingest_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/metrics"
)

func TestReadyzAnswers(t *testing.T) {
	down := func(context.Context) error { return errors.New("broker away") }
	up := func(context.Context) error { return nil }
	refused := func() error { return errors.New("sink segment: the destination refuses chattap (401 Unauthorized)") }
	for _, tc := range []struct {
		name     string
		ready    func(context.Context) error
		degraded func() error
		code     int
		body     string
	}{
		{"ready", up, nil, http.StatusOK, `"status":"ready"`},
		{"broker away", down, refused, http.StatusServiceUnavailable, "broker away"},
		// The taps still work: a load balancer must keep sending the chat.
		{"degraded", up, refused, http.StatusOK, `"status":"degraded","warning":"sink segment`},
		{"recovered", up, func() error { return nil }, http.StatusOK, `"status":"ready"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := ingest.New(ingest.Deps{Options: testOptions(), Metrics: metrics.NewIngest(metrics.New()), Ready: tc.ready, Degraded: tc.degraded})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("got %d %s, want %d with %s", rec.Code, rec.Body, tc.code, tc.body)
			}
		})
	}
}
