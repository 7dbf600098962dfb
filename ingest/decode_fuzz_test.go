package ingest

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/chattap/chattap/spec"
)

// checkVerbatim fails unless every Observation keeps its part of body
// byte for byte, and encodes to JSON that reads back with that payload.
func checkVerbatim(t *testing.T, body []byte, obs []*spec.Observation) {
	t.Helper()
	for i, o := range obs {
		kept := o.Payload
		if o.Kind == spec.KindUndecodable && len(o.PayloadRaw) > 0 {
			kept = o.PayloadRaw
		}
		if len(kept) == 0 && len(bytes.TrimSpace(body)) > 0 && len(obs) == 1 {
			t.Fatalf("observation %d kept nothing of %q", i, body)
		}
		if !bytes.Contains(body, kept) {
			t.Fatalf("observation %d payload %q is not a verbatim part of %q", i, kept, body)
		}
		var back spec.Observation
		if err := json.Unmarshal(o.AppendJSON(nil), &back); err != nil {
			t.Fatalf("observation %d does not encode to JSON: %v", i, err)
		}
		if !bytes.Equal(back.Payload, o.Payload) || !bytes.Equal(back.PayloadRaw, o.PayloadRaw) {
			t.Fatalf("observation %d payload changed in the stream: %q → %q", i, o.Payload, back.Payload)
		}
		if o.Subject() == "" || o.Kind == "" {
			t.Fatalf("observation %d has no subject or kind", i)
		}
	}
}

func fuzzExchange() *exchange {
	return &exchange{id: "ex", received: time.Unix(0, 0)}
}

func FuzzDecodeWebhook(f *testing.F) {
	f.Add([]byte(`{"info":{"cid":"chatbot::258:a5","contact":{"id":12}},"packet":{"name":"message","payload":{"body":"hi"}}}`))
	f.Add([]byte(`{"info":"oops","packet":{"event":7}}`))
	f.Add([]byte("not json"))
	f.Add([]byte(`  {"packet":{"name":"a.b.*>"}}  `))
	f.Fuzz(func(t *testing.T, body []byte) {
		obs := fuzzExchange().decodeChatbot(spec.SourceChatbotWebhook, body, 0, "")
		if len(obs) != 1 {
			t.Fatalf("a webhook is one observation, got %d", len(obs))
		}
		checkVerbatim(t, body, obs)
	})
}

func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte(`[{"packet":{"name":"message","payload":{"body":"a"}}},{}, null, {"packet":{"name":"end"}}]`))
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	f.Add([]byte(`[1, "x", {"info":{"cid":5}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		obs := fuzzExchange().decodeChatbot(spec.SourceChatbotReply, body, 1, "cid")
		checkVerbatim(t, body, obs)
		for i, o := range obs {
			if o.Index != i+1 {
				t.Fatalf("reply %d has index %d", i, o.Index)
			}
		}
	})
}

func FuzzDecodeChannel(f *testing.F) {
	f.Add([]byte(`{"contact_id":"c-1","text":"hello"}`))
	f.Add([]byte(`{"contact":{"email":"a@b.c"},"message":{"body":"x","event":"message","is_deleted":true}}`))
	f.Add([]byte(`{"contact_id":12.5e3,"message":"plain"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, src := range []spec.Source{spec.SourceChannelInbound, spec.SourceChannelOutbound} {
			checkVerbatim(t, body, []*spec.Observation{fuzzExchange().decodeChannel(src, body)})
		}
	})
}

func FuzzDecodeAddon(f *testing.F) {
	f.Add([]byte(`{"_type":"chat_meta","_event":"receive","id":4711,"client_name":null,"messages":[{"message":"hi","type":"co"}]}`))
	f.Add([]byte(`{"_type":["x"],"_event":{"a":1}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := fuzzExchange().decodeAddon(body)
		if err != nil {
			return // answered 400: nothing recorded
		}
		checkVerbatim(t, body, []*spec.Observation{o})
	})
}
