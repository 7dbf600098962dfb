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
	var fixes []*Contact
	if err := batch.commit(t.Context(), func(fix *Contact) error { fixes = append(fixes, fix); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(fixes) != 0 {
		t.Errorf("corrections %+v, want none: the other conversation announced another trait", fixes)
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

// TestConcurrentAnnouncementsGetACorrection: two conversations of one
// contact read the same Contact and announced different emails at once,
// so their identifies went out in an order nobody chose. Whichever batch
// writes second sees the other's write and sends a correction carrying
// the newest email, before its write: the destination's last word is the
// newest value, whichever identify arrived last.
func TestConcurrentAnnouncementsGetACorrection(t *testing.T) {
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
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	obs := func(id, cid, email string, at time.Time) *spec.Observation {
		return &spec.Observation{V: 1, ID: id, Source: spec.SourceChatbotWebhook, Kind: "message", ReceivedAt: at, Status: 200, ConversationID: cid,
			Payload: json.RawMessage(`{"info":{"cid":"` + cid + `","contact":{"id":48213,"email":"` + email + `"}},"packet":{"name":"message","payload":{"body":"hi"}}}`)}
	}
	for _, tc := range []struct {
		name            string
		mine, theirs    string
		mineAt, theirAt time.Time
	}{
		{"mine older", "old@example.org", "new@example.org", t0, t0.Add(time.Minute)},
		{"mine newer", "new@example.org", "old@example.org", t0.Add(time.Minute), t0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// put never goes back in time: each case starts from the first email.
			if err := kv.Delete(t.Context(), ContactStateKey(key)); err != nil {
				t.Fatal(err)
			}
			if err := store.put(t.Context(), Contact{Key: key, Traits: map[string]string{spec.TraitEmail: "first@example.org"}, At: map[string]int64{spec.TraitEmail: t0.Add(-time.Hour).UnixMilli()}}); err != nil {
				t.Fatal(err)
			}
			mine, theirs := newContactBatch(t.Context(), kv), newContactBatch(t.Context(), kv)
			for _, b := range []struct {
				batch *contactBatch
				o     *spec.Observation
			}{{mine, obs("0193c5e4-0000-7000-8000-0000000000a1", "chatbot::1:mine", tc.mine, tc.mineAt)}, {theirs, obs("0193c5e4-0000-7000-8000-0000000000b1", "chatbot::1:theirs", tc.theirs, tc.theirAt)}} {
				out, _, _, err := b.batch.apply(m, &group{conversation: b.o.ConversationID}, b.o, State{}, spec.DefaultSettings)
				if err != nil {
					t.Fatal(err)
				}
				if identifyIn(out) == nil {
					t.Fatalf("%s: no identify", b.o.ConversationID)
				}
			}
			none := func(fix *Contact) error { t.Errorf("first writer: correction %+v, want none", fix); return nil }
			if err := theirs.commit(t.Context(), none); err != nil {
				t.Fatal(err)
			}
			var fixes []*Contact
			if err := mine.commit(t.Context(), func(fix *Contact) error { fixes = append(fixes, fix); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(fixes) != 1 || fixes[0].Traits[spec.TraitEmail] != "new@example.org" {
				t.Fatalf("corrections %+v, want one with the newer email", fixes)
			}
			msg := m.correctionMessage(fixes[0])
			if err := msg.Validate(); err != nil {
				t.Fatal(err)
			}
			if msg.Traits[spec.TraitEmail] != "new@example.org" || msg.AnonymousID != key || !msg.Timestamp.Equal(t0.Add(time.Minute)) {
				t.Errorf("correction message %+v", msg)
			}
			got, err := store.get(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			if got.Traits[spec.TraitEmail] != "new@example.org" {
				t.Errorf("stored email %q, want the newer", got.Traits[spec.TraitEmail])
			}
		})
	}
}

func identifyIn(out []spec.Message) *spec.Message {
	for i := range out {
		if out[i].Type == spec.TypeIdentify {
			return &out[i]
		}
	}
	return nil
}
