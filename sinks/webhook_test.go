package sinks_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/sinks/sinkstest"
)

// TestWebhookRedactsAnEchoedCredential: a destination that refuses a
// request and echoes the credential it was sent, decoded ("invalid write
// key …"), must not put that credential in the dead letter's reason or
// the replay's failures, however the header carried it.
func TestWebhookRedactsAnEchoedCredential(t *testing.T) {
	const user, password, token = "wk_live_supersecret", "pa55word-hush", "tok_bearer_hush"
	basic := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, header string
		secrets      []string
	}{
		{"basic user only", "Authorization: Basic " + basic(user+":"), []string{user}},
		{"basic user and password", "Authorization: Basic " + basic(user+":"+password), []string{user, password}},
		{"basic without padding", "Authorization: Basic " + strings.TrimRight(basic(user+":ab"), "="), []string{user}},
		{"bearer", "Authorization: Bearer " + token, []string{token}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := brokertest.Start(t)
			dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				echo := r.Header.Get("Authorization")
				if u, p, ok := r.BasicAuth(); ok {
					echo = "user " + u + " password " + p
				} else if tok, ok := strings.CutPrefix(echo, "Bearer "); ok {
					echo = "token " + tok
				}
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte("invalid write key: " + echo))
			}))
			t.Cleanup(dest.Close)
			s, err := sinks.NewWebhook(sinks.WebhookOptions{URL: dest.URL + "/v1/batch", Headers: tc.header, Timeout: time.Second}, fast(), sinks.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close(context.Background()) })
			publish(t, srv.JS, sinkstest.Events("echo", 1)...)
			res, err := sinks.Replay(t.Context(), srv.JS, s, sinks.Range{FromSeq: 1}, sinks.ReplayOptions{})
			if err != nil {
				t.Fatal(err)
			}
			entries := dlq(t, srv.JS, sinks.DLQFilter{})
			if len(entries) != 1 || len(res.Failures) != 1 {
				t.Fatalf("%d dead letters, %d failures; want one of each", len(entries), len(res.Failures))
			}
			if !strings.Contains(entries[0].Reason, "(redacted)") {
				t.Errorf("reason %q: the destination's echo was not kept, redacted", entries[0].Reason)
			}
			for _, sec := range tc.secrets {
				if strings.Contains(entries[0].Reason, sec) {
					t.Errorf("dead letter reason holds %q: %q", sec, entries[0].Reason)
				}
				if strings.Contains(res.Failures[0].Error, sec) {
					t.Errorf("replay failure holds %q: %q", sec, res.Failures[0].Error)
				}
			}
		})
	}
}
