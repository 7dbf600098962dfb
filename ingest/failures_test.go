package ingest_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/spec"
)

func TestWrongOrMissingTokenIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, route, query string
		header             map[string]string
		configure          func(o *ingest.Options, url string)
	}{
		{"webhook, no token", ingest.RouteWebhook, "", nil, func(o *ingest.Options, u string) { o.BotWebhookURL = u; o.WebhookToken = "right" }},
		{"webhook, wrong token", ingest.RouteWebhook, "", map[string]string{"SECURITY-TOKEN": "wrong"}, func(o *ingest.Options, u string) { o.BotWebhookURL = u; o.WebhookToken = "right" }},
		{"outbound, wrong token", ingest.RouteChannelOutbound, "", map[string]string{"API-SECURITY-TOKEN": "righ"}, func(o *ingest.Options, u string) { o.ChannelOutboundURL = u; o.ChannelOutboundTok = "right" }},
		{"inbound, no token", ingest.RouteChannelInbound, "", nil, func(o *ingest.Options, u string) { o.ChannelInboundURL = u; o.ChannelInboundTok = "right" }},
		{"inbound, wrong token", ingest.RouteChannelInbound, "", map[string]string{"API-SECURITY-TOKEN": "rightt"}, func(o *ingest.Options, u string) { o.ChannelInboundURL = u; o.ChannelInboundTok = "right" }},
		{"inbound, outbound's header name", ingest.RouteChannelInbound, "", map[string]string{"SECURITY-TOKEN": "right"}, func(o *ingest.Options, u string) { o.ChannelInboundURL = u; o.ChannelInboundTok = "right" }},
		{"api, no token", ingest.RouteAPI, "", nil, func(o *ingest.Options, u string) { o.UserlikeAPIURL = u; o.UserlikeAPIToken = "right" }},
		{"api, wrong token", ingest.RouteAPI, "", map[string]string{"SECURITY-TOKEN": "Right"}, func(o *ingest.Options, u string) { o.UserlikeAPIURL = u; o.UserlikeAPIToken = "right" }},
		{"add-on, wrong query token", ingest.RouteAddon, "?token=nope", nil, func(o *ingest.Options, u string) { o.AddonToken = "right" }},
		{"add-on, wrong header token", ingest.RouteAddon, "", map[string]string{"X-Chattap-Token": "nope"}, func(o *ingest.Options, u string) { o.AddonToken = "right" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, replyWith(http.StatusOK, nil, "{}"))
			h := startTaps(t, func(o *ingest.Options) { tc.configure(o, up.URL) })
			resp, _ := h.post(t, tc.route+tc.query, `{"_type":"chat_session","_event":"start","id":1,"info":{"cid":"c"},"packet":{"name":"start"}}`, tc.header)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("got %d, want 403", resp.StatusCode)
			}
			if n := len(up.seen()); n != 0 {
				t.Errorf("upstream saw %d requests, want none", n)
			}
			if n := h.reg.Gather("chattap_tap_forbidden_total", map[string]string{"route": tc.route}); n != 1 {
				t.Errorf("forbidden counter = %v, want 1", n)
			}
			// The refused request was not recorded: the next Observation
			// on the stream is a good one sent afterwards.
			good := map[string]string{"SECURITY-TOKEN": "right", "API-SECURITY-TOKEN": "right", "X-Chattap-Token": "right"}
			if resp, _ := h.post(t, tc.route, `{"_type":"chat_session","_event":"end","id":1,"info":{"cid":"c"},"packet":{"name":"end"}}`, good); resp.StatusCode != http.StatusOK {
				t.Fatalf("request with the right token got %d", resp.StatusCode)
			}
			if o := h.observations(t, 1)[0]; !strings.Contains(string(o.obs.Payload), "end") {
				t.Errorf("first observation is %s, want the accepted request", o.obs.Payload)
			}
		})
	}
}

func TestBodyOverLimitIs413(t *testing.T) {
	up := newUpstream(t, replyWith(http.StatusOK, nil, "{}"))
	h := startTaps(t, func(o *ingest.Options) { o.BotWebhookURL = up.URL; o.MaxBodyBytes = 1024 })
	big := `{"packet":{"name":"message","payload":{"body":"` + strings.Repeat("x", 2000) + `"}}}`
	for _, route := range []string{ingest.RouteWebhook, ingest.RouteAddon} {
		resp, body := h.post(t, route, big, nil)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "1024") {
			t.Errorf("%s: got %d %q, want 413", route, resp.StatusCode, body)
		}
	}
	// A chunked body has no Content-Length to check up front.
	req, _ := http.NewRequest(http.MethodPost, h.url+ingest.RouteWebhook, struct{ *strings.Reader }{strings.NewReader(big)})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked: got %d, want 413", resp.StatusCode)
	}
	if n := len(up.seen()); n != 0 {
		t.Errorf("upstream saw %d requests, want none", n)
	}
	if n := h.rawCount(t); n != 0 {
		t.Errorf("%d observations recorded, want none", n)
	}
}

func TestBodyThatIsNotJSON(t *testing.T) {
	up := newUpstream(t, replyWith(http.StatusOK, nil, "not json either"))
	h := startTaps(t, func(o *ingest.Options) { o.BotWebhookURL = up.URL })

	resp, body := h.post(t, ingest.RouteWebhook, "hello=world&x=\x00", nil)
	if resp.StatusCode != http.StatusOK || body != "not json either" {
		t.Fatalf("proxied route got %d %q, want the upstream's answer", resp.StatusCode, body)
	}
	if s := up.seen(); len(s) != 1 || s[0].body != "hello=world&x=\x00" {
		t.Fatalf("upstream saw %+v, want the body unchanged", s)
	}
	obs := h.observations(t, 2)
	for i, o := range obs {
		if o.obs.Kind != spec.KindUndecodable || o.obs.Error == "" || !strings.HasSuffix(o.subject, ".undecodable") {
			t.Errorf("observation %d: %s %+v", i, o.subject, o.obs)
		}
	}
	if string(obs[0].obs.PayloadRaw) != "hello=world&x=\x00" || string(obs[1].obs.PayloadRaw) != "not json either" {
		t.Errorf("raw payloads %q, %q", obs[0].obs.PayloadRaw, obs[1].obs.PayloadRaw)
	}

	resp, body = h.post(t, ingest.RouteAddon, "[1,2]", nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not a JSON object") {
		t.Errorf("add-on got %d %q, want 400", resp.StatusCode, body)
	}
}

func TestUpstreamUnreachableIs502AndStillRecorded(t *testing.T) {
	up := newUpstream(t, replyWith(http.StatusOK, nil, "{}"))
	up.Close()
	h := startTaps(t, func(o *ingest.Options) { o.BotWebhookURL = up.URL })
	resp, body := h.post(t, ingest.RouteWebhook, webhookBody, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "upstream") {
		t.Fatalf("got %d %q, want 502", resp.StatusCode, body)
	}
	o := h.observations(t, 1)[0]
	if o.obs.Source != spec.SourceChatbotWebhook || o.obs.Status != http.StatusBadGateway || string(o.obs.Payload) != webhookBody {
		t.Errorf("got %+v", o.obs)
	}
}

func TestUpstreamTimeoutIs502(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	h := startTaps(t, func(o *ingest.Options) { o.BotWebhookURL = up.URL; o.UpstreamTimeout = 100 * time.Millisecond })
	resp, body := h.post(t, ingest.RouteWebhook, webhookBody, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "in time") {
		t.Fatalf("got %d %q, want 502 for a timeout", resp.StatusCode, body)
	}
	if o := h.observations(t, 1)[0].obs; o.Status != http.StatusBadGateway || string(o.Payload) != webhookBody {
		t.Errorf("contact's side recorded as %+v, want it with status 502", o)
	}
}

func TestUpstreamThatStallsItsBodyIs502(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`[{"packet":`))
		w.(http.Flusher).Flush()
		<-release
	})
	defer close(release)
	h := startTaps(t, func(o *ingest.Options) { o.BotWebhookURL = up.URL; o.UpstreamTimeout = 200 * time.Millisecond })
	resp, body := h.post(t, ingest.RouteWebhook, webhookBody, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "in time") {
		t.Fatalf("got %d %q, want 502 for a reply body that never ends", resp.StatusCode, body)
	}
	if o := h.observations(t, 1)[0].obs; o.Status != http.StatusBadGateway || string(o.Payload) != webhookBody {
		t.Errorf("contact's side recorded as %+v, want it with status 502", o)
	}
}

func TestHeadersAreNotAddedByTheProxy(t *testing.T) {
	up := newUpstream(t, replyWith(http.StatusOK, nil, "{}"))
	h := startTaps(t, func(o *ingest.Options) { o.BotWebhookURL = up.URL })
	req, _ := http.NewRequest(http.MethodPost, h.url+ingest.RouteWebhook, strings.NewReader(webhookBody))
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hdr := up.seen()[0].header
	for _, name := range []string{"Accept-Encoding", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
		if v := hdr.Get(name); v != "" {
			t.Errorf("upstream got %s: %q, which the caller did not send", name, v)
		}
	}
}

// TestObservationOverBrokerLimit runs against a broker that takes smaller
// messages than the tap accepts: the exchange goes through, the event is
// recorded without its payload, and the add-on callback gets 413, not an
// endless 503.
func TestObservationOverBrokerLimit(t *testing.T) {
	nc, js := smallEmbedded(t)
	up := newUpstream(t, replyWith(http.StatusOK, nil, "{}"))
	o := testOptions()
	o.BotWebhookURL = up.URL
	h := newHarness(t, nc, js, o)
	big := `{"info":{"cid":"c-big"},"packet":{"name":"message","payload":{"body":"` + strings.Repeat("x", 100<<10) + `"}}}`
	if resp, _ := h.post(t, ingest.RouteWebhook, big, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
	got := h.observations(t, 1)[0].obs
	if got.Kind != spec.KindUndecodable || len(got.Payload) != 0 || !strings.Contains(got.Error, "max_payload") || got.ConversationID != "c-big" {
		t.Errorf("recorded %+v", got)
	}
	addon := `{"_type":"chat_session","_event":"receive","id":9,"topic":"` + strings.Repeat("y", 100<<10) + `"}`
	if resp, body := h.post(t, ingest.RouteAddon, addon, nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("add-on: %d %s, want 413", resp.StatusCode, body)
	}
	if held := h.pub.Held(); held != 0 {
		t.Errorf("publisher still holds %d records", held)
	}
}

// TestRecordOverBrokerLimitKeepsTheSmallEvents: when the bot's reply makes
// the record too large for the broker, only the largest payloads are left
// out, so the contact's message is still recorded in full.
func TestRecordOverBrokerLimitKeepsTheSmallEvents(t *testing.T) {
	nc, js := smallEmbedded(t)
	big := `{"packet":{"name":"message","payload":{"body":"` + strings.Repeat("x", 100<<10) + `"}}}`
	up := newUpstream(t, replyWith(http.StatusOK, nil, "["+replyEvent1+","+big+"]"))
	o := testOptions()
	o.BotWebhookURL = up.URL
	h := newHarness(t, nc, js, o)
	if resp, _ := h.post(t, ingest.RouteWebhook, webhookBody, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
	obs := h.observations(t, 3)
	if string(obs[0].obs.Payload) != webhookBody || string(obs[1].obs.Payload) != replyEvent1 {
		t.Errorf("small events not kept: %+v", obs[:2])
	}
	if got := obs[2].obs; got.Kind != spec.KindUndecodable || len(got.Payload) != 0 || !strings.Contains(got.Error, "max_payload") {
		t.Errorf("large event recorded as %+v", got)
	}
	if n := h.reg.Gather("chattap_records_too_large_total", nil); n != 1 {
		t.Errorf("too large counted %v times, want 1", n)
	}
}

func TestUpstreamNon2xxIsPassedThrough(t *testing.T) {
	up := newUpstream(t, replyWith(http.StatusServiceUnavailable, map[string]string{"Retry-After": "7"}, replyEvent1))
	h := startTaps(t, func(o *ingest.Options) { o.BotWebhookURL = up.URL })
	resp, body := h.post(t, ingest.RouteWebhook, webhookBody, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "7" || body != replyEvent1 {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	obs := h.observations(t, 2)
	if obs[1].obs.Source != spec.SourceChatbotReply || obs[1].obs.Status != http.StatusServiceUnavailable || obs[1].obs.Delivered() {
		t.Errorf("reply recorded as %+v, want status 503, not delivered", obs[1].obs)
	}
}

func TestLargeReplyIsStreamedButNotRecorded(t *testing.T) {
	big := `[` + strings.Repeat(replyEvent1+",", 100) + replyEvent1 + `]`
	up := newUpstream(t, replyWith(http.StatusOK, nil, big))
	h := startTaps(t, func(o *ingest.Options) { o.BotWebhookURL = up.URL; o.MaxBodyBytes = 4096 })
	resp, body := h.post(t, ingest.RouteWebhook, webhookBody, nil)
	if resp.StatusCode != http.StatusOK || body != big {
		t.Fatalf("caller got %d and %d bytes, want 200 and all %d", resp.StatusCode, len(body), len(big))
	}
	if o := h.observations(t, 2)[1].obs; o.Kind != spec.KindUndecodable || !strings.Contains(o.Error, "larger") {
		t.Errorf("got %+v", o)
	}
}

func TestAddonAnswersAfterJetStreamStoredIt(t *testing.T) {
	h := startTaps(t, func(o *ingest.Options) { o.AddonToken = "tok" })
	payload := `{"_type":"chat_meta","_event":"receive","id":4711,"client_name":null,"created_at":"2014-12-29 11:26:24"}`
	resp, body := h.post(t, ingest.RouteAddon+"?token=tok", payload, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"id"`) {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	// Stored before the answer: the stream already holds it.
	if n := h.rawCount(t); n != 1 {
		t.Fatalf("stream holds %d observations at the time of the answer, want 1", n)
	}
	o := h.observations(t, 1)[0]
	if o.subject != "chattap.raw.6.addon.chat_meta.receive" || o.msgID != o.obs.ID || !strings.Contains(body, o.obs.ID) || o.obs.ConversationID != "userlike::4711" || string(o.obs.Payload) != payload {
		t.Errorf("got %s %+v", o.subject, o.obs)
	}
}

// TestAddonCallbackSentTwiceIsStoredOnce: Userlike sends a callback
// again after a 503, also when the first one was stored after all (the
// publish timed out, not failed). Its id comes from its bytes, so
// JetStream's dedup drops the second; another callback is another record.
func TestAddonCallbackSentTwiceIsStoredOnce(t *testing.T) {
	h := startTaps(t, func(o *ingest.Options) { o.AddonToken = "tok" })
	const callback = `{"_type":"chat_session","_event":"receive","id":4711,"topic":"refund"}`
	var ids []string
	for _, payload := range []string{callback, callback, strings.Replace(callback, "refund", "invoice", 1)} {
		resp, body := h.post(t, ingest.RouteAddon+"?token=tok", payload, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		var answer struct{ ID string }
		if err := json.Unmarshal([]byte(body), &answer); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, answer.ID)
	}
	if ids[0] != ids[1] || ids[0] == ids[2] {
		t.Errorf("ids %v: want the same for the same callback, another for another", ids)
	}
	if n := h.rawCount(t); n != 2 {
		t.Errorf("stream holds %d records, want 2: the callback sent twice stored once", n)
	}
}

func TestSyncAckModeStoresBeforeAnswering(t *testing.T) {
	up := newUpstream(t, replyWith(http.StatusOK, nil, replyEvent1))
	h := startTaps(t, func(o *ingest.Options) {
		o.BotWebhookURL = up.URL
		o.TapAck = ingest.AckSync
		o.TapAckTimeout = 2 * time.Second
	})
	for i := range 20 {
		body := strings.Replace(webhookBody, "balance", fmt.Sprint("balance ", i), 1)
		if resp, _ := h.post(t, ingest.RouteWebhook, body, nil); resp.StatusCode != http.StatusOK {
			t.Fatal(resp.Status)
		}
		if n := h.rawCount(t); n != uint64(i+1) {
			t.Fatalf("after exchange %d the stream holds %d records, want %d", i, n, i+1)
		}
	}
}

func TestGzippedReplyIsRecordedDecompressed(t *testing.T) {
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(replyEvent2))
	_ = zw.Close()
	up := newUpstream(t, replyWith(http.StatusOK, map[string]string{"Content-Encoding": "gzip"}, zipped.String()))
	h := startTaps(t, func(o *ingest.Options) { o.BotWebhookURL = up.URL })
	req, _ := http.NewRequest(http.MethodPost, h.url+ingest.RouteWebhook, strings.NewReader(webhookBody))
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("caller lost the encoding: %v", resp.Header)
	}
	if o := h.observations(t, 2)[1].obs; string(o.Payload) != replyEvent2 {
		t.Errorf("recorded %+v", o)
	}
}
