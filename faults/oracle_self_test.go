//go:build faults

package faults_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chattap/chattap/spec"
)

// TestCompareCatches proves the comparison can fail: from a faithful
// delivery it takes one event away, doubles one, changes one's body,
// adds a phantom second Started, and loses an accepted exchange, and
// each is counted once.
func TestCompareCatches(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	msg := func(id, event, conv, body string) []byte {
		b, _ := json.Marshal(spec.Message{Type: "track", Event: event, MessageID: id, AnonymousID: "a", Timestamp: at,
			Properties: map[string]any{"conversation_id": conv, "message_body": body}})
		return b
	}
	o := &oracle{Events: map[string]projection{}, Order: map[string][]string{}, Markers: map[string]int{"fxm-000000-000001": 1}}
	sent := map[string][]byte{
		"s1": msg("s1", spec.EventConversationStarted, "c1", ""),
		"m1": msg("m1", spec.EventMessageSent, "c1", "hello"),
		"m2": msg("m2", spec.EventMessageReceived, "c1", "hi"),
		"m3": msg("m3", spec.EventMessageSent, "c1", "bye"),
	}
	for id, b := range sent {
		p := project(b)
		o.Events[id] = p
		o.Order[p.Conversation] = append(o.Order[p.Conversation], p.Event)
	}
	counts := map[string]int{"s1": 1, "m1": 1, "m2": 1, "m3": 1}
	if v := compare(o, sent, counts, nil); v.Missing+v.Doubled+v.Wrong+v.Lost != 0 || v.Delivered != 4 {
		t.Fatalf("a faithful delivery: %+v", v)
	}
	got := map[string][]byte{
		"s1": sent["s1"],
		"m1": msg("m1", spec.EventMessageSent, "c1", "hello, changed"),
		"m2": sent["m2"],
		"s2": msg("s2", spec.EventConversationStarted, "c1", ""),
	}
	counts = map[string]int{"s1": 1, "m1": 1, "m2": 2, "s2": 1}
	ex := []exchange{{Marker: "fxm-000000-000001", Status: 200}, {Marker: "fxm-000000-000002", Status: 200}, {Marker: "fxm-000000-000003", Status: 502}}
	v := compare(o, got, counts, ex)
	// wrong: m1's body, the unexpected s2, and c1 with two Started.
	if v.Missing != 1 || v.Doubled != 1 || v.Wrong != 3 || v.Lost != 1 || v.Delivered != 3 {
		t.Errorf("compare = missing %d doubled %d wrong %d lost %d delivered %d, want 1 1 3 1 3", v.Missing, v.Doubled, v.Wrong, v.Lost, v.Delivered)
	}
}
