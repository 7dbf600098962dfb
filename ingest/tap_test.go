package ingest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/spec"
)

const (
	cid         = "chatbot::258:a56785fb6fb84edd890905913b0c0821"
	webhookBody = `{"info": {"approach_mode": "normal", "cid": "` + cid + `", "contact": {"name": "Ada"}, "context": {}, "conversation": {}, "widget": {"id": 7}},
 "packet": {"name": "message", "payload": {"body": "Hello, I have a question about my balance."}}}`
	replyEvent1 = `{"info":{"context":{"step":2}},"packet":{"name":"message","payload":{"body":"What is your order number?"}}}`
	replyEvent2 = `{"packet":{"name":"bubbles","payload":{"body":"Pick one","options":["a","b"]}}}`
)

func TestWebhookIsProxiedUnchangedAndRecorded(t *testing.T) {
	bot := newUpstream(t, replyWith(http.StatusOK, map[string]string{"Content-Type": "application/json", "X-Bot": "yes"}, "["+replyEvent1+", "+replyEvent2+"]"))
	h := startTaps(t, func(o *ingest.Options) { o.BotWebhookURL = bot.URL + "/hook?bot=1"; o.WebhookToken = "s3cret" })

	resp, body := h.post(t, ingest.RouteWebhook+"?from=userlike", webhookBody, map[string]string{
		"SECURITY-TOKEN": "s3cret", "Content-Type": "application/json", "X-Custom": "kept", "X-Forwarded-For": "10.1.2.3",
	})

	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Bot") != "yes" || body != "["+replyEvent1+", "+replyEvent2+"]" {
		t.Fatalf("caller got %d %v %q, want the bot's answer unchanged", resp.StatusCode, resp.Header, body)
	}
	got := bot.seen()
	if len(got) != 1 {
		t.Fatalf("bot saw %d requests, want 1", len(got))
	}
	r := got[0]
	if r.method != http.MethodPost || r.uri != "/hook?bot=1&from=userlike" || r.body != webhookBody {
		t.Errorf("bot saw %s %s %q", r.method, r.uri, r.body)
	}
	for k, want := range map[string]string{"Security-Token": "s3cret", "Content-Type": "application/json", "X-Custom": "kept", "X-Forwarded-For": "10.1.2.3"} {
		if r.header.Get(k) != want {
			t.Errorf("bot saw header %s = %q, want %q", k, r.header.Get(k), want)
		}
	}

	recs := h.records(t, 3)
	if len(recs) != 1 {
		t.Fatalf("%d records for one exchange, want 1", len(recs))
	}
	var obs []stored
	for _, o := range recs[0].obs {
		obs = append(obs, stored{subject: recs[0].subject, msgID: recs[0].msgID, obs: o})
	}
	subject := spec.RawPartitionSubject(spec.Partition(cid), spec.SourceChatbotWebhook, "message")
	want := []struct {
		subject, kind string
		source        spec.Source
		payload       string
		index         int
	}{
		{subject, "message", spec.SourceChatbotWebhook, webhookBody, 0},
		{subject, "message", spec.SourceChatbotReply, replyEvent1, 1},
		{subject, "bubbles", spec.SourceChatbotReply, replyEvent2, 2},
	}
	exchange := obs[0].obs.ID
	for i, w := range want {
		o := obs[i]
		if o.subject != w.subject || o.obs.Kind != w.kind || o.obs.Source != w.source || o.obs.Index != w.index {
			t.Errorf("observation %d: %s %s/%s index %d, want %s %s/%s index %d", i, o.subject, o.obs.Source, o.obs.Kind, o.obs.Index, w.subject, w.source, w.kind, w.index)
		}
		if string(o.obs.Payload) != w.payload {
			t.Errorf("observation %d payload not verbatim:\n got %s\nwant %s", i, o.obs.Payload, w.payload)
		}
		if o.msgID == "" || o.msgID != exchange || o.obs.ID != spec.ObservationID(exchange, i) || o.obs.Record != exchange {
			t.Errorf("observation %d: Nats-Msg-Id %q, id %q", i, o.msgID, o.obs.ID)
		}
		if o.obs.ConversationID != cid || o.obs.Exchange != exchange || o.obs.Status != http.StatusOK || o.obs.V != spec.RecordVersion || o.obs.ReceivedAt.IsZero() {
			t.Errorf("observation %d: %+v", i, o.obs)
		}
	}
}

func TestWebhookWithoutBotAnswersEmptyObject(t *testing.T) {
	h := startTaps(t, nil)
	resp, body := h.post(t, ingest.RouteWebhook, `{"info":{"cid":"c1"},"packet":{"name":"start","payload":{}}}`, nil)
	if resp.StatusCode != http.StatusOK || body != "{}" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q (%s), want 200 {}", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	o := h.observations(t, 1)[0]
	if o.subject != spec.RawPartitionSubject(spec.Partition("c1"), spec.SourceChatbotWebhook, "start") || o.obs.ConversationID != "c1" || o.obs.Status != 200 {
		t.Errorf("got %s %+v", o.subject, o.obs)
	}
}

func TestProxiedRoutes(t *testing.T) {
	for _, tc := range []struct {
		name, route, body, header, token string
		configure                        func(o *ingest.Options, url string)
		subjects                         []string
		conversation                     string
	}{
		{
			name: "bot to API URL, two events", route: ingest.RouteAPI,
			body:      `[{"info":{"cid":"c9"},"packet":{"name":"message","payload":{"body":"hi"}}},{"info":{"cid":"c9"},"packet":{"event":"end","payload":{}}}]`,
			configure: func(o *ingest.Options, url string) { o.UserlikeAPIURL = url },
			subjects:  []string{"chattap.raw.1.chatbot.api.message", "chattap.raw.1.chatbot.api.message"}, conversation: "c9",
		},
		{
			name: "channel inbound", route: ingest.RouteChannelInbound,
			body:      `{"contact_id":"cust-42","name":"Ada","text":"Where is my parcel?"}`,
			configure: func(o *ingest.Options, url string) { o.ChannelInboundURL = url },
			subjects:  []string{"chattap.raw.8.channel.inbound.message"}, conversation: "channel::cust-42",
		},
		{
			name: "channel outbound with token", route: ingest.RouteChannelOutbound, header: "API-SECURITY-TOKEN", token: "out",
			body:      `{"contact":{"email":"ada@example.com"},"message":{"body":"On its way","event":"message","is_deleted":false}}`,
			configure: func(o *ingest.Options, url string) { o.ChannelOutboundURL = url; o.ChannelOutboundTok = "out" },
			subjects:  []string{"chattap.raw.1.channel.outbound.message"}, conversation: "channel::ada@example.com",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, replyWith(http.StatusAccepted, map[string]string{"X-Upstream": "1"}, `{"ok":true}`))
			h := startTaps(t, func(o *ingest.Options) { tc.configure(o, up.URL) })
			hdr := map[string]string{"Content-Type": "application/json"}
			if tc.header != "" {
				hdr[tc.header] = tc.token
			}
			resp, body := h.post(t, tc.route, tc.body, hdr)
			if resp.StatusCode != http.StatusAccepted || body != `{"ok":true}` || resp.Header.Get("X-Upstream") != "1" {
				t.Fatalf("caller got %d %q", resp.StatusCode, body)
			}
			if s := up.seen(); len(s) != 1 || s[0].body != tc.body {
				t.Fatalf("upstream saw %+v", s)
			}
			for i, o := range h.observations(t, len(tc.subjects)) {
				if o.subject != tc.subjects[i] || o.obs.ConversationID != tc.conversation || o.obs.Status != http.StatusAccepted {
					t.Errorf("observation %d: %s %+v", i, o.subject, o.obs)
				}
				if !strings.Contains(tc.body, string(o.obs.Payload)) {
					t.Errorf("observation %d payload %s is not part of the body", i, o.obs.Payload)
				}
			}
		})
	}
}

func TestRouteWithoutUpstreamIsNotFound(t *testing.T) {
	h := startTaps(t, nil)
	resp, body := h.post(t, ingest.RouteChannelInbound, `{"text":"x"}`, nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "CHATTAP_CHANNEL_INBOUND_URL") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}
