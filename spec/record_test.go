package spec_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/chattap/chattap/spec"
)

func TestReadRawSplitsARecord(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.UTC)
	rec := spec.NewRecord("ex1", at, 200, []*spec.Observation{
		{Source: spec.SourceChatbotWebhook, Kind: "message", ConversationID: "c", Payload: []byte(`{"info":{"cid":"c"},"packet":{"name":"message"}}`)},
		{Source: spec.SourceChatbotReply, Kind: "message", ConversationID: "c", Payload: []byte(`{ "name" : "message" }`)},
		{Source: spec.SourceChatbotReply, Kind: "message", ConversationID: "d", Payload: []byte(`{"info":{"cid":"d"}}`)},
		{Source: spec.SourceChatbotReply, Kind: spec.KindUndecodable, ConversationID: "c", Error: "bad", PayloadRaw: []byte("\x00raw")},
	})
	if rec.Partition != spec.Partition("c") || rec.Subject() != spec.RawPartitionSubject(spec.Partition("c"), spec.SourceChatbotWebhook, "message") {
		t.Fatalf("partition %d, subject %s", rec.Partition, rec.Subject())
	}
	obs, err := spec.ReadRaw(rec.AppendJSON(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []spec.Observation{
		{V: 2, ID: "ex1", Record: "ex1", Source: spec.SourceChatbotWebhook, Kind: "message", ReceivedAt: at, ConversationID: "c", Exchange: "ex1", Status: 200, Payload: json.RawMessage(`{"info":{"cid":"c"},"packet":{"name":"message"}}`)},
		{V: 2, ID: "ex1-1", Record: "ex1", Source: spec.SourceChatbotReply, Kind: "message", ReceivedAt: at, ConversationID: "c", Exchange: "ex1", Index: 1, Status: 200, Payload: json.RawMessage(`{ "name" : "message" }`)},
		{V: 2, ID: "ex1-2", Record: "ex1", Source: spec.SourceChatbotReply, Kind: "message", ReceivedAt: at, ConversationID: "d", Exchange: "ex1", Index: 2, Status: 200, Payload: json.RawMessage(`{"info":{"cid":"d"}}`)},
		{V: 2, ID: "ex1-3", Record: "ex1", Source: spec.SourceChatbotReply, Kind: spec.KindUndecodable, ReceivedAt: at, ConversationID: "c", Exchange: "ex1", Index: 3, Status: 200, Error: "bad", PayloadRaw: []byte("\x00raw")},
	}
	if !reflect.DeepEqual(obs, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", obs, want)
	}
	// The same bytes read again give the same ids: a replay maps to the
	// same messageIds.
	again, _ := spec.ReadRaw(rec.AppendJSON(nil))
	if !reflect.DeepEqual(again, obs) {
		t.Fatal("not deterministic")
	}
}

func TestReadRawReadsVersion1(t *testing.T) {
	v1 := `{"v":1,"id":"o-2","source":"chatbot.reply","kind":"end","received_at":"2026-11-21T10:00:00.123456Z","conversation_id":"c","exchange":"o","index":2,"status":502,"payload":{"name":"end"}}`
	obs, err := spec.ReadRaw([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	want := spec.Observation{V: 1, ID: "o-2", Record: "o-2", Source: spec.SourceChatbotReply, Kind: "end", ReceivedAt: time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.UTC),
		ConversationID: "c", Exchange: "o", Index: 2, Status: 502, Payload: json.RawMessage(`{"name":"end"}`)}
	if len(obs) != 1 || !reflect.DeepEqual(obs[0], want) {
		t.Fatalf("got %+v", obs)
	}
}

func TestReadRawRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":        `{"v":2,`,
		"unknown version": `{"v":3,"id":"a"}`,
		"no version":      `{"id":"a"}`,
		"no events":       `{"v":2,"id":"a","source":"addon","kind":"x","received_at":"2026-11-21T10:00:00Z","status":200,"events":[]}`,
		"v1 without id":   `{"v":1,"source":"addon","kind":"x","received_at":"2026-11-21T10:00:00Z","status":200}`,
		"no id":           `{"v":2,"source":"addon","kind":"x","received_at":"2026-11-21T10:00:00Z","status":200,"events":[{"source":"addon","kind":"x"}]}`,
	} {
		if _, err := spec.ReadRaw([]byte(doc)); err == nil {
			t.Errorf("%s: read", name)
		}
	}
}

func FuzzRecordAppendJSON(f *testing.F) {
	f.Add("ex-1", "message", "chatbot::258:a5\"6\n", []byte("{ \"a\" :\t[1, 2] }"), []byte(nil), "", uint8(3))
	f.Add("é\xff", "undecodable", "", []byte(nil), []byte("not json \x00\x01"), "invalid character 'o'", uint8(1))
	f.Fuzz(func(t *testing.T, id, kind, cid string, payload, raw []byte, errText string, n uint8) {
		payload = bytes.TrimSpace(payload)
		if (len(payload) > 0 && !json.Valid(payload)) || id == "" {
			t.Skip()
		}
		obs := make([]*spec.Observation, 1+int(n%8))
		for i := range obs {
			obs[i] = &spec.Observation{Source: spec.SourceChatbotReply, Kind: kind, ConversationID: cid, Error: errText, Payload: payload, PayloadRaw: raw}
		}
		obs[0].Source = spec.SourceChatbotWebhook
		rec := spec.NewRecord(id, time.Unix(1763719200, 123456000), 200, obs)
		b := rec.AppendJSON(nil)
		var back spec.Record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("AppendJSON wrote invalid JSON %q: %v", b, err)
		}
		split, err := spec.ReadRaw(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(split) != len(obs) {
			t.Fatalf("%d observations of %d events", len(split), len(obs))
		}
		for i, o := range split {
			if !bytes.Equal(o.Payload, payload) || !bytes.Equal(o.PayloadRaw, raw) {
				t.Fatalf("event %d not verbatim: %q %q", i, o.Payload, o.PayloadRaw)
			}
			if o.ID != spec.ObservationID(back.ID, i) || o.Record != back.ID || o.Index != i {
				t.Fatalf("event %d: id %q record %q index %d", i, o.ID, o.Record, o.Index)
			}
		}
		if validUTF8(id, kind, cid, errText) {
			if back.ID != id || split[1%len(split)].ConversationID != cid || split[0].Kind != kind || split[0].Error != errText {
				t.Fatalf("round trip: %+v", split[0])
			}
		}
	})
}

func BenchmarkRecordAppendJSON(b *testing.B) {
	payload := []byte(`{"info":{"cid":"chatbot::258:a56785fb6fb84edd890905913b0c0821"},"packet":{"name":"message","payload":{"body":"Hello, I have a question about my balance."}}}`)
	obs := make([]*spec.Observation, 6)
	for i := range obs {
		obs[i] = &spec.Observation{Source: spec.SourceChatbotReply, Kind: "message", ConversationID: "chatbot::258:a56785fb6fb84edd890905913b0c0821", Payload: payload}
	}
	rec := spec.NewRecord("0193c5e4-7f7e-7a1c-9d1e-2f6a3b4c5d6e", time.Now(), 200, obs)
	buf := make([]byte, 0, rec.Size())
	b.ReportAllocs()
	for b.Loop() {
		buf = rec.AppendJSON(buf[:0])
	}
}

func ExampleReadRaw() {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	rec := spec.NewRecord("ex-1", at, 200, []*spec.Observation{
		{Source: spec.SourceChatbotWebhook, Kind: "message", ConversationID: "chatbot::1:demo", Payload: []byte(`{"info":{"cid":"chatbot::1:demo"},"packet":{"name":"message"}}`)},
		{Source: spec.SourceChatbotReply, Kind: "bubbles", ConversationID: "chatbot::1:demo", Payload: []byte(`{"packet":{"name":"bubbles"}}`)},
	})
	fmt.Println(rec.Subject())
	obs, _ := spec.ReadRaw(rec.AppendJSON(nil))
	for _, o := range obs {
		fmt.Println(o.ID, o.Record, o.Source, o.Kind, o.Index)
	}
	// Output:
	// chattap.raw.4.chatbot.webhook.message
	// ex-1 ex-1 chatbot.webhook message 0
	// ex-1-1 ex-1 chatbot.reply bubbles 1
}

// FuzzReadRaw checks that any bytes on CHATTAP_RAW are read without a
// panic, the same way twice, and that what is read names its record.
func FuzzReadRaw(f *testing.F) {
	f.Add([]byte(`{"v":2,"id":"a","source":"addon","kind":"x","received_at":"2026-11-21T10:00:00Z","partition":3,"status":200,"events":[{"source":"addon","kind":"x","payload":{}}]}`))
	f.Add([]byte(`{"v":1,"id":"o","source":"chatbot.reply","kind":"end","received_at":"2026-11-21T10:00:00Z","index":2,"status":502}`))
	f.Add([]byte(`{"v":2,"id":"a","events":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		obs, err := spec.ReadRaw(data)
		again, err2 := spec.ReadRaw(data)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(obs, again) {
			t.Fatal("not deterministic")
		}
		if err != nil {
			return
		}
		if len(obs) == 0 {
			t.Fatal("no error and no observation")
		}
		for i, o := range obs {
			if o.Record == "" || (o.V == spec.RecordVersion && o.ID != spec.ObservationID(o.Record, i)) {
				t.Fatalf("observation %d: id %q of record %q", i, o.ID, o.Record)
			}
		}
	})
}
