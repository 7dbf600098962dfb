package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
)

// TestLogsHoldNoSecretAndNoBody runs chattap with every secret set, bodies
// flowing through every route, failures on every side (wrong tokens, a
// dead upstream, a destination refusing the key, one failing for a while)
// and debug logging, then reads everything it wrote: no token, key,
// password, message body or contact email may be in it.
func TestLogsHoldNoSecretAndNoBody(t *testing.T) {
	secrets := map[string]string{
		"CHATTAP_WEBHOOK_TOKEN":          "sec-webhook-7f3a",
		"CHATTAP_USERLIKE_API_TOKEN":     "sec-api-91bd",
		"CHATTAP_CHANNEL_OUTBOUND_TOKEN": "sec-outbound-22ce",
		"CHATTAP_CHANNEL_INBOUND_TOKEN":  "sec-inbound-5e07",
		"CHATTAP_ADDON_TOKEN":            "sec-addon-c4d1",
		"CHATTAP_ADMIN_TOKEN":            "sec-admin-0a9f",
		"CHATTAP_SEGMENT_WRITE_KEY":      "sec-writekey-6b2e",
		"CHATTAP_WEBHOOK_SINK_SECRET":    "sec-hmac-3d8c",
		"CHATTAP_NATS_PASSWORD":          "sec-natspw-e15a",
	}
	bodies := []string{"body-words-b7c2", "reply-words-4e1f", "api-words-90aa", "inbound-words-17d3", "outbound-words-8f6b", "addon-words-c0c5", "grep-victim@example.com", "not-json-words-2a2a"}
	urlSecrets := []string{"sec-botquery-aa11", "sec-apiuser-bb22", "sec-apipass-cc33", "sec-sinkquery-dd44", "sec-sinkheader-ee55", "sec-deadquery-ff66"}

	var segCalls atomic.Int64
	seg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch n := segCalls.Add(1); {
		case n <= 3:
			http.Error(w, `{"error":"invalid write key sec-writekey-6b2e"}`, http.StatusUnauthorized)
			return
		case n == 4: // a failure that is logged with the answer
			http.Error(w, `{"error":"overloaded, key sec-writekey-6b2e"}`, http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer seg.Close()
	var hookCalls atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if hookCalls.Add(1) <= 2 {
			// Echoing what it was sent, as some endpoints do.
			http.Error(w, "overloaded: "+r.URL.RawQuery+" "+r.Header.Get("Authorization"), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer hook.Close()
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `[{"packet":{"name":"message","payload":{"body":"reply-words-4e1f"}}},{"packet":{"name":"end","payload":{}}}]`)
	}))
	defer bot.Close()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer echo.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	natsAddr := brokertest.FreeAddr(t)
	environ := []string{
		"CHATTAP_LOG_LEVEL=debug", "CHATTAP_NATS_LISTEN=" + natsAddr, "CHATTAP_NATS_USER=chattap",
		"CHATTAP_SEGMENT_ENDPOINT=" + seg.URL,
		"CHATTAP_WEBHOOK_SINK_URL=" + hook.URL + "/in?token=sec-sinkquery-dd44",
		"CHATTAP_WEBHOOK_SINK_HEADERS=Authorization: Bearer sec-sinkheader-ee55",
		"CHATTAP_BOT_WEBHOOK_URL=" + bot.URL + "/hook?key=sec-botquery-aa11",
		"CHATTAP_USERLIKE_API_URL=" + strings.Replace(echo.URL, "http://", "http://sec-apiuser-bb22:sec-apipass-cc33@", 1) + "/api",
		"CHATTAP_CHANNEL_OUTBOUND_URL=" + echo.URL + "/out",
		"CHATTAP_CHANNEL_INBOUND_URL=" + dead.URL + "/in?auth=sec-deadquery-ff66", // unreachable: 502s and their log
		"CHATTAP_SINK_FLUSH_INTERVAL=20ms", "CHATTAP_SINK_BACKOFF_MIN=50ms", "CHATTAP_SINK_BACKOFF_MAX=200ms",
	}
	for k, v := range secrets {
		environ = append(environ, k+"="+v)
	}
	in := start(t, environ...)
	type call struct{ route, body, header, token string }
	for _, c := range []call{
		{"/userlike/webhook", `{"info":{"cid":"c-grep","contact":{"id":5,"email":"grep-victim@example.com","name":"Grep"}},"packet":{"name":"message","payload":{"body":"body-words-b7c2"}}}`, "SECURITY-TOKEN", secrets["CHATTAP_WEBHOOK_TOKEN"]},
		{"/userlike/webhook", `not-json-words-2a2a`, "SECURITY-TOKEN", secrets["CHATTAP_WEBHOOK_TOKEN"]},
		{"/userlike/api", `{"info":{"cid":"c-grep"},"packet":{"name":"message","payload":{"body":"api-words-90aa"}}}`, "SECURITY-TOKEN", secrets["CHATTAP_USERLIKE_API_TOKEN"]},
		{"/userlike/channel/inbound", `{"contact_id":"grep-victim@example.com","text":"inbound-words-17d3"}`, "API-SECURITY-TOKEN", secrets["CHATTAP_CHANNEL_INBOUND_TOKEN"]},
		{"/userlike/channel/outbound", `{"contact":{"email":"grep-victim@example.com"},"message":{"body":"outbound-words-8f6b","event":"message"}}`, "API-SECURITY-TOKEN", secrets["CHATTAP_CHANNEL_OUTBOUND_TOKEN"]},
		{"/userlike/addon?token=" + secrets["CHATTAP_ADDON_TOKEN"], `{"_type":"chat_session","_event":"message_sent","id":77,"client_email":"grep-victim@example.com","messages":[{"message":"addon-words-c0c5","type":"op"}]}`, "", ""},
		// Refused, each with a guess that must not be logged either.
		{"/userlike/webhook", `{"packet":{"name":"message","payload":{"body":"body-words-b7c2"}}}`, "SECURITY-TOKEN", "sec-webhook-7f3b"},
		{"/userlike/addon?token=sec-addon-c4d2", `{}`, "", ""},
	} {
		h := map[string]string{"Content-Type": "application/json"}
		if c.header != "" {
			h[c.header] = c.token
		}
		in.post(t, c.route, c.body, h)
	}
	in.get(t, "/admin/settings", map[string]string{"Authorization": "Bearer " + secrets["CHATTAP_ADMIN_TOKEN"]})
	in.get(t, "/debugger", map[string]string{"Authorization": "Bearer " + secrets["CHATTAP_ADMIN_TOKEN"]})
	in.get(t, "/admin/settings", map[string]string{"Authorization": "Bearer sec-admin-0a9e"})
	// Let the sinks go through their failures and deliver.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && (segCalls.Load() < 5 || hookCalls.Load() < 3) {
		time.Sleep(20 * time.Millisecond)
	}
	if segCalls.Load() < 5 || hookCalls.Load() < 3 {
		t.Fatalf("sinks did not get through their failures: segment %d, webhook %d calls", segCalls.Load(), hookCalls.Load())
	}
	in.get(t, "/readyz", nil)
	in.stop(t)

	logs := in.stdout.String() + in.stderr.String()
	if !strings.Contains(logs, "destination misconfigured") || !strings.Contains(logs, "upstream failed") || !strings.Contains(logs, "request refused") || !strings.Contains(logs, "delivery failed; retrying") {
		t.Fatalf("the run did not log what it was meant to exercise:\n%s", logs)
	}
	var leaked []string
	for _, s := range append(append(values(secrets), bodies...), urlSecrets...) {
		if strings.Contains(logs, s) {
			leaked = append(leaked, s)
		}
	}
	// A guess is as secret as the token it was close to.
	for _, guess := range []string{"sec-webhook-7f3b", "sec-addon-c4d2", "sec-admin-0a9e"} {
		if strings.Contains(logs, guess) {
			leaked = append(leaked, guess)
		}
	}
	if len(leaked) > 0 {
		t.Errorf("the logs hold %v:\n%s", leaked, logs)
	}
	if in.stdout.String() != "" {
		t.Errorf("standard output is not empty with Segment and the webhook sink on:\n%s", in.stdout)
	}
}

func values(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
