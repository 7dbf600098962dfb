package mapper

// An internal test: the race it reproduces (another writer between a
// batch's read of a Contact and its write) has no seam outside.

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/spec"
)

// TestContactWriteMergesOnlyTheNews: a batch read the Contact, another
// conversation of the contact then stored a new email, and the batch,
// whose conversation announced only a new name, writes: the stored
// Contact keeps the new email, and gains the name.
func TestContactWriteMergesOnlyTheNews(t *testing.T) {
	s := brokertest.Start(t)
	kv, err := s.JS.KeyValue(t.Context(), spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	const key = "userlike-contact:48213"
	store := contactStore{kv: kv}
	if err := store.put(t.Context(), Contact{Key: key, UserID: "CRM-1", Traits: map[string]string{spec.TraitEmail: "old@example.org"}}); err != nil {
		t.Fatal(err)
	}
	const cid = "chatbot::1:cccc"
	obs := &spec.Observation{V: 1, ID: "0193c5e4-0000-7000-8000-000000000003", Source: spec.SourceChatbotWebhook, Kind: "message",
		ReceivedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), Status: 200, ConversationID: cid,
		Payload: json.RawMessage(`{"info":{"cid":"` + cid + `","contact":{"id":48213,"name":"Maria"}},"packet":{"name":"message","payload":{"body":"hi"}}}`)}
	batch := newContactBatch(t.Context(), kv)
	if _, _, _, err := batch.apply(m, &group{conversation: cid}, obs, State{}, spec.DefaultSettings); err != nil {
		t.Fatal(err)
	}
	// The other conversation's write, after this batch read the Contact.
	if err := store.put(t.Context(), Contact{Key: key, Traits: map[string]string{spec.TraitEmail: "new@example.org"}}); err != nil {
		t.Fatal(err)
	}
	if err := batch.commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := store.get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Traits[spec.TraitEmail] != "new@example.org" || got.Traits[spec.TraitName] != "Maria" || got.UserID != "CRM-1" {
		t.Errorf("stored Contact %+v, want the new email, the name and the userId", got)
	}
}

// TestContactWriteKeepsANewerValue: a batch announced an email from an
// older event than the one another conversation stored meanwhile (its
// partition was behind): the write keeps the newer email.
func TestContactWriteKeepsANewerValue(t *testing.T) {
	s := brokertest.Start(t)
	kv, err := s.JS.KeyValue(t.Context(), spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	const key = "userlike-contact:48213"
	store := contactStore{kv: kv}
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).UnixMilli()
	if err := store.put(t.Context(), Contact{Key: key, Traits: map[string]string{spec.TraitEmail: "new@example.org"}, At: map[string]int64{spec.TraitEmail: t0 + 1000}}); err != nil {
		t.Fatal(err)
	}
	if err := store.put(t.Context(), Contact{Key: key, Traits: map[string]string{spec.TraitEmail: "old@example.org", spec.TraitName: "Maria"}, At: map[string]int64{spec.TraitEmail: t0, spec.TraitName: t0}}); err != nil {
		t.Fatal(err)
	}
	got, err := store.get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Traits[spec.TraitEmail] != "new@example.org" || got.At[spec.TraitEmail] != t0+1000 || got.Traits[spec.TraitName] != "Maria" {
		t.Errorf("stored Contact %+v, want the newer email kept and the name added", got)
	}
}
