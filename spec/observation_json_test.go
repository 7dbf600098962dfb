package spec_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chattap/chattap/spec"
)

func FuzzObservationAppendJSON(f *testing.F) {
	f.Add("id-1", "message", "chatbot::258:a5\"6\n", []byte("{ \"a\" :\t[1, 2] }"), []byte(nil), "")
	f.Add("é\xff", "undecodable", "", []byte(nil), []byte("not json \x00\x01"), "invalid character 'o'")
	f.Fuzz(func(t *testing.T, id, kind, cid string, payload, raw []byte, errText string) {
		// Decoders store a payload without the white space around it: a
		// JSON reader could not give that back anyway.
		payload = bytes.TrimSpace(payload)
		if len(payload) > 0 && !json.Valid(payload) {
			t.Skip()
		}
		in := spec.Observation{V: 1, ID: id, Source: spec.SourceChatbotWebhook, Kind: kind,
			ReceivedAt: time.Unix(1763719200, 123456000).UTC(), ConversationID: cid, Exchange: id,
			Index: 3, Status: 200, Error: errText, Payload: payload, PayloadRaw: raw}
		b := in.AppendJSON(nil)
		var out spec.Observation
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("AppendJSON wrote invalid JSON %q: %v", b, err)
		}
		if !bytes.Equal(out.Payload, payload) {
			t.Fatalf("payload not verbatim: got %q, want %q", out.Payload, payload)
		}
		if !bytes.Equal(out.PayloadRaw, raw) {
			t.Fatalf("payload_raw: got %q, want %q", out.PayloadRaw, raw)
		}
		// Strings survive unless they held invalid UTF-8, which JSON cannot.
		want := in
		want.Payload, want.PayloadRaw, out.Payload, out.PayloadRaw = nil, nil, nil, nil
		if validUTF8(id, kind, cid, errText) && !reflect.DeepEqual(out, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", out, want)
		}
	})
}

func validUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

func BenchmarkObservationAppendJSON(b *testing.B) {
	o := spec.Observation{V: 1, ID: "0193c5e4-7f7e-7a1c-9d1e-2f6a3b4c5d6e", Source: spec.SourceChatbotWebhook, Kind: "message",
		ReceivedAt: time.Now(), ConversationID: "chatbot::258:a56785fb6fb84edd890905913b0c0821", Status: 200,
		Payload: []byte(`{"info":{"cid":"chatbot::258:a56785fb6fb84edd890905913b0c0821"},"packet":{"name":"message","payload":{"body":"Hello, I have a question about my balance."}}}`)}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = o.AppendJSON(buf[:0])
	}
}
