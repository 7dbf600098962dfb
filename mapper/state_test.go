package mapper_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/mapper"
)

// TestStateEncodingIsStable pins the stored form of the hash lists: one
// JSON string, base64url without padding of the little-endian words, as
// every State already in a bucket holds them.
func TestStateEncodingIsStable(t *testing.T) {
	st := mapper.State{ConversationID: "c", Started: true, StartedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		Traits: map[string]string{"name": "Eva"}, Options: []string{"a"},
		Seen: mapper.Hashes{1, 1 << 63, 0xdeadbeefcafef00d}, Applied: mapper.Hashes{42}}
	b, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]mapper.Hashes{"seen": st.Seen, "applied": st.Applied} {
		raw := make([]byte, 0, 8*len(h))
		for _, v := range h {
			raw = binary.LittleEndian.AppendUint64(raw, v)
		}
		want, _ := json.Marshal(base64.RawURLEncoding.EncodeToString(raw))
		if string(fields[name]) != string(want) {
			t.Errorf("%s stored as %s, want %s", name, fields[name], want)
		}
	}
	back, err := mapper.DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, st) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, st)
	}
	for _, bad := range []string{`{"seen":"AQ"}`, `{"seen":"!!!!!!!!!!!"}`, `{"seen":12}`, `{"applied":"AQAAAAAAAA"}`} {
		if _, err := mapper.DecodeState([]byte(bad)); err == nil {
			t.Errorf("DecodeState(%s) accepted", bad)
		}
	}
	if st, err := mapper.DecodeState([]byte(`{"seen":"","applied":null}`)); err != nil || len(st.Seen) != 0 || len(st.Applied) != 0 {
		t.Errorf("empty lists: %+v, %v", st, err)
	}
}

// TestStateOutboxEncoding pins the outbox's stored form and reads a State
// stored before there was one.
func TestStateOutboxEncoding(t *testing.T) {
	msg := []byte(`{"type":"track","event":"Live Chat Message Sent","messageId":"o-ev","properties":{"message_body":"<b>&</b>"}}`)
	st := mapper.State{ConversationID: "c", Applied: mapper.Hashes{7},
		Outbox: []mapper.OutboxMessage{{Subject: "chattap.events.live_chat_message_sent", MessageID: "o-ev", Data: msg}}}
	b, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var fields struct {
		Outbox []map[string]json.RawMessage `json:"outbox"`
	}
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"subject": `"chattap.events.live_chat_message_sent"`, "id": `"o-ev"`,
		"data": `"` + base64.StdEncoding.EncodeToString(msg) + `"`}
	if len(fields.Outbox) != 1 || len(fields.Outbox[0]) != len(want) {
		t.Fatalf("outbox stored as %s", b)
	}
	for k, v := range want {
		if string(fields.Outbox[0][k]) != v {
			t.Errorf("outbox %s stored as %s, want %s", k, fields.Outbox[0][k], v)
		}
	}
	back, err := mapper.DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, st) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, st)
	}
	if string(back.Outbox[0].Data) != string(msg) {
		t.Errorf("message changed in the outbox: %s", back.Outbox[0].Data)
	}

	st.Outbox = nil
	if b, err := st.Encode(); err != nil || strings.Contains(string(b), "outbox") {
		t.Errorf("empty outbox stored: %s (%v)", b, err)
	}
	old, err := mapper.DecodeState([]byte(`{"v":1,"conversation_id":"c","started":true,"anonymous_id":"a","applied":"BwAAAAAAAAA"}`))
	if err != nil || old.Outbox != nil || !old.Started || len(old.Applied) != 1 || old.Applied[0] != 7 {
		t.Errorf("State stored before the outbox: %+v, %v", old, err)
	}
}
