package spec_test

import (
	"strings"
	"testing"

	"github.com/chattap/chattap/spec"
)

// The bodies of ingest's BenchmarkTapWebhook: a contact's message and a
// four-event bot reply.
var (
	benchWebhook = []byte(`{"info":{"approach_mode":"normal","cid":"chatbot::258:a56785fb6fb84edd890905913b0c0821","contact":{"id":1042,"name":"Ada","email":"ada@example.com"},` +
		`"context":{"step":3},"conversation":{},"widget":{"id":10,"name":"Support"}},"packet":{"name":"message","payload":{"body":"` +
		strings.Repeat("I have a question about my balance. ", 6) + `"}}}`)
	benchReply = []byte(`[{"packet":{"name":"message","payload":{"body":"Thanks for your message. Let me check your order for you, one moment please."}}},` +
		`{"packet":{"name":"message","payload":{"body":"Your payment went through on Monday and the parcel should arrive soon."}}},` +
		`{"packet":{"name":"message","payload":{"body":"Is there anything else I can help you with?"}}},` +
		`{"packet":{"name":"bubbles","payload":{"body":"Pick one","options":[{"label":"Billing","value":"opt1"},{"label":"Delivery","value":"opt2"}]}}}]`)
)

// BenchmarkTapReading is what a tap reads of one exchange: the webhook's
// head and the reply's events with theirs, by the fast path
// (DecodeChatbotHead, SplitChatbotEvents) and by the plain decoders it
// stands in for (DecodeChatbotEvent, SplitEvents).
func BenchmarkTapReading(b *testing.B) {
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if h, err := spec.DecodeChatbotHead(benchWebhook); err != nil || h.Cid == "" {
				b.Fatal(err)
			}
			if evs, err := spec.SplitChatbotEvents(benchReply); err != nil || len(evs) != 4 {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ev, err := spec.DecodeChatbotEvent(benchWebhook); err != nil || ev.Info.Cid == "" {
				b.Fatal(err)
			}
			evs, err := spec.SplitEvents(benchReply)
			if err != nil || len(evs) != 4 {
				b.Fatal(err)
			}
			for _, e := range evs {
				if _, err := spec.DecodeChatbotEvent(e); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
