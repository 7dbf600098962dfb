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

// TestCompareIdentifiesCatches proves the identify comparison can fail,
// and that it takes an identify made old by a newer one as delivered: a
// lost email with nothing newer is missing, a trait the conversation never
// knew is wrong, and a contact whose latest stamped identify carries an
// older email ends wrong. Arrival order does not count: the sinks deliver
// unordered.
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
			"o4-id": {AnonymousID: "userlike-contact:1", Traits: old},
		},
		Final: map[string]mapper.Contact{"userlike-contact:1": {Key: "userlike-contact:1", Traits: fresh}},
	}
	once := func(got map[string][]byte) map[string]int {
		counts := map[string]int{}
		for id := range got {
			counts[id] = 1
		}
		return counts
	}
	newEmail := ident("o2-id", t0.Add(time.Hour), map[string]any{spec.TraitEmail: "new@example.org"})
	oldEmail := ident("o1-id", t0, map[string]any{spec.TraitEmail: "old@example.org"})
	check := func(name string, got map[string][]byte, missing, wrong, delivered int) {
		t.Helper()
		if v := compare(o, got, once(got), nil); v.Missing != missing || v.Wrong != wrong || v.Delivered != delivered {
			t.Errorf("%s: missing %d wrong %d delivered %d, want %d %d %d (%v)", name, v.Missing, v.Wrong, v.Delivered, missing, wrong, delivered, v.Examples)
		}
	}
	check("both", map[string][]byte{"o1-id": oldEmail, "o2-id": newEmail}, 0, 0, 2)
	// The newer conversation announced the email under another of its
	// Observations (o3), and the older one's email, being old, not at
	// all: all the oracle said is received or made old.
	check("the newer email alone, from another Observation", map[string][]byte{"o3-id": ident("o3-id", t0.Add(2*time.Hour), map[string]any{spec.TraitEmail: "new@example.org"})}, 0, 0, 2)
	check("the new email lost", map[string][]byte{"o1-id": oldEmail}, 1, 1, 1)
	// o4's conversation knew the old email, but stamped later than the
	// new one: the contact ends with the old email.
	check("the old email stamped last", map[string][]byte{"o2-id": newEmail, "o4-id": ident("o4-id", t0.Add(2*time.Hour), map[string]any{spec.TraitEmail: "old@example.org"})}, 0, 1, 2)
	// An identify with a name its conversation never knew is wrong, and
	// not taken: the new email is then missing and the contact ends wrong.
	check("an invented name", map[string][]byte{"o2-id": ident("o2-id", t0.Add(time.Hour), map[string]any{spec.TraitEmail: "new@example.org", spec.TraitName: "Mallory"}), "o1-id": oldEmail}, 1, 2, 1)
}
