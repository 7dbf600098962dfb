package ingest_test

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/metrics"
)

func TestRecordingRoutesNameEachToken(t *testing.T) {
	o := testOptions()
	o.ChannelInboundURL, o.ChannelInboundTok = "http://channel.test/in", "t"
	o.UserlikeAPIURL = "http://userlike.test/api"
	got := o.RecordingRoutes()
	for i := range got {
		if got[i].Carrier == "" {
			t.Errorf("%s: no carrier", got[i].Route)
		}
		got[i].Carrier = ""
	}
	want := []ingest.RouteAccess{
		{Route: ingest.RouteWebhook, TokenEnv: "CHATTAP_WEBHOOK_TOKEN"},
		{Route: ingest.RouteAPI, TokenEnv: "CHATTAP_USERLIKE_API_TOKEN"},
		{Route: ingest.RouteChannelInbound, TokenEnv: "CHATTAP_CHANNEL_INBOUND_TOKEN", Protected: true},
		{Route: ingest.RouteAddon, TokenEnv: "CHATTAP_ADDON_TOKEN"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestSeparateAdminMovesOperatorRoutes(t *testing.T) {
	o := testOptions()
	o.AdminToken = "adm"
	for _, separate := range []bool{false, true} {
		reg := metrics.New()
		srv, err := ingest.New(ingest.Deps{Options: o, Metrics: metrics.NewIngest(reg), MetricsHandler: reg.Handler(), SeparateAdmin: separate})
		if err != nil {
			t.Fatal(err)
		}
		status := func(h http.Handler, path string) int {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			return rec.Code
		}
		if got := status(srv, "/healthz"); got != http.StatusOK {
			t.Errorf("separate=%v: public /healthz got %d", separate, got)
		}
		wantPublic := http.StatusOK
		if separate {
			wantPublic = http.StatusNotFound
			if got := status(srv.AdminHandler(), "/metrics"); got != http.StatusOK {
				t.Errorf("admin /metrics got %d, want 200", got)
			}
			if got := status(srv.AdminHandler(), "/healthz"); got != http.StatusNotFound {
				t.Errorf("admin listener serves /healthz (%d): it carries the operator's routes only", got)
			}
		} else if srv.AdminHandler() != nil {
			t.Errorf("AdminHandler is set without SeparateAdmin")
		}
		if got := status(srv, "/metrics"); got != wantPublic {
			t.Errorf("separate=%v: public /metrics got %d, want %d", separate, got, wantPublic)
		}
	}
}
