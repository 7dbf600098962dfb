//go:build faults

package faults_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chattap/chattap/mapper"
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
	if v := compare(o, sent, counts, nil, nil); v.Missing+v.Doubled+v.Wrong+v.Lost != 0 || v.Delivered != 4 {
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
	v := compare(o, got, counts, nil, ex)
	// wrong: m1's body, the unexpected s2, and c1 with two Started.
	if v.Missing != 1 || v.Doubled != 1 || v.Wrong != 3 || v.Lost != 1 || v.Delivered != 3 {
		t.Errorf("compare = missing %d doubled %d wrong %d lost %d delivered %d, want 1 1 3 1 3", v.Missing, v.Doubled, v.Wrong, v.Lost, v.Delivered)
	}
}

// TestCompareIdentifiesCatches proves the identify comparison can fail,
// and that it takes an identify made old by a newer one as delivered: a
// lost email with nothing newer is missing, a trait the conversation never
// knew is wrong, and an older email arriving after the newer one leaves
// the contact with the wrong final value.
func TestCompareIdentifiesCatches(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ident := func(id string, at time.Time, traits map[string]any) []byte {
		b, _ := json.Marshal(spec.Message{Type: spec.TypeIdentify, MessageID: id, AnonymousID: "userlike-contact:1", Timestamp: at, Traits: traits})
		return b
	}
	old := map[string]string{spec.TraitEmail: "old@example.org"}
	fresh := map[string]string{spec.TraitEmail: "new@example.org"}
	o := &oracle{Events: map[string]projection{}, Order: map[string][]string{},
		Identifies: map[string]announced{
			"o1-id": {AnonymousID: "userlike-contact:1", Traits: old, At: t0.UnixMilli()},
			"o2-id": {AnonymousID: "userlike-contact:1", Traits: fresh, At: t0.Add(time.Hour).UnixMilli()},
		},
		Identity: map[string]announced{
			"o1-id": {AnonymousID: "userlike-contact:1", Traits: old},
			"o2-id": {AnonymousID: "userlike-contact:1", Traits: fresh},
			"o3-id": {AnonymousID: "userlike-contact:1", Traits: fresh},
		},
		Final: map[string]mapper.Contact{"userlike-contact:1": {Key: "userlike-contact:1", Traits: fresh}},
	}
	arrive := func(ids ...string) map[string]time.Time {
		out := map[string]time.Time{}
		for i, id := range ids {
			out[id] = t0.Add(time.Duration(i) * time.Second)
		}
		return out
	}
	newEmail := ident("o2-id", t0.Add(time.Hour), map[string]any{spec.TraitEmail: "new@example.org"})
	oldEmail := ident("o1-id", t0, map[string]any{spec.TraitEmail: "old@example.org"})
	// The newer conversation announced first, under another Observation's
	// id (o3, of the newer conversation), and the older one's email, being
	// old, not at all: all the oracle said is received or made old.
	got := map[string][]byte{"o3-id": ident("o3-id", t0.Add(2*time.Hour), map[string]any{spec.TraitEmail: "new@example.org"})}
	if v := compare(o, got, map[string]int{"o3-id": 1}, arrive("o3-id"), nil); v.Missing+v.Wrong != 0 || v.Delivered != 2 {
		t.Errorf("the newer email alone: %+v", v)
	}
	// Only the old email: the new one is lost.
	got = map[string][]byte{"o1-id": oldEmail}
	if v := compare(o, got, map[string]int{"o1-id": 1}, arrive("o1-id"), nil); v.Missing != 1 || v.Wrong != 1 {
		t.Errorf("the new email lost: missing %d wrong %d, want 1 (o2) and 1 (final email)", v.Missing, v.Wrong)
	}
	// Both, the older arriving last: the contact ends with the old email.
	got = map[string][]byte{"o1-id": oldEmail, "o2-id": newEmail}
	if v := compare(o, got, map[string]int{"o1-id": 1, "o2-id": 1}, arrive("o2-id", "o1-id"), nil); v.Missing != 0 || v.Wrong != 1 {
		t.Errorf("the old email last: missing %d wrong %d, want 0 and 1", v.Missing, v.Wrong)
	}
	// A trait o2's conversation never knew.
	got = map[string][]byte{"o2-id": ident("o2-id", t0.Add(time.Hour), map[string]any{spec.TraitEmail: "new@example.org", spec.TraitName: "Mallory"})}
	if v := compare(o, got, map[string]int{"o2-id": 1}, arrive("o2-id"), nil); v.Wrong != 1 {
		t.Errorf("an invented name: wrong %d, want 1", v.Wrong)
	}
}
