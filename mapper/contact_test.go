package mapper_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
)

func contactWebhook(id, cid, contact string) *spec.Observation {
	return &spec.Observation{V: 1, ID: id, Source: spec.SourceChatbotWebhook, Kind: "message",
		ReceivedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), Status: 200, ConversationID: cid,
		Payload: json.RawMessage(`{"info":{"cid":"` + cid + `","contact":` + contact + `},"packet":{"name":"message","payload":{"body":"hi"}}}`)}
}

func identifyOf(t *testing.T, out []spec.Message) *spec.Message {
	t.Helper()
	for i := range out {
		if out[i].Type == spec.TypeIdentify {
			return &out[i]
		}
	}
	return nil
}

// TestIdentifyCarriesOnlyTheNews: two conversations of one contact mapped
// at once, each on the Contact as it was before either: the one that
// names only a new name must not send the email it read, which the other
// has just announced anew; a destination would take the old email back.
func TestIdentifyCarriesOnlyTheNews(t *testing.T) {
	m, err := mapper.New(mapper.Options{})
	if err != nil {
		t.Fatal(err)
	}
	set := spec.DefaultSettings
	first := contactWebhook("0193c5e4-0000-7000-8000-000000000001", "chatbot::1:aaaa", `{"id":48213,"email":"old@example.org","locale":"de_DE"}`)
	_, _, before, _, err := m.MapContact(first, mapper.State{}, mapper.Contact{}, set)
	if err != nil {
		t.Fatal(err)
	}
	newEmail := contactWebhook("0193c5e4-0000-7000-8000-000000000002", "chatbot::1:bbbb", `{"id":48213,"email":"new@example.org"}`)
	out, _, _, _, err := m.MapContact(newEmail, mapper.State{}, before, set)
	if err != nil {
		t.Fatal(err)
	}
	if id := identifyOf(t, out); id == nil || id.Traits[spec.TraitEmail] != "new@example.org" || len(id.Traits) != 1 {
		t.Errorf("identify of the new email: %+v, want the email alone", id)
	}
	newName := contactWebhook("0193c5e4-0000-7000-8000-000000000003", "chatbot::1:cccc", `{"id":48213,"name":"Maria"}`)
	out, _, after, _, err := m.MapContact(newName, mapper.State{}, before, set)
	if err != nil {
		t.Fatal(err)
	}
	id := identifyOf(t, out)
	if id == nil {
		t.Fatal("no identify for a new name")
	}
	if _, ok := id.Traits[spec.TraitEmail]; ok || id.Traits[spec.TraitName] != "Maria" || len(id.Traits) != 1 {
		t.Errorf("identify traits %v, want the name alone", id.Traits)
	}
	// The Contact it returns still knows all that was announced, so the
	// conversation's next event announces nothing twice.
	if after.Traits[spec.TraitEmail] != "old@example.org" || after.Traits[spec.TraitName] != "Maria" {
		t.Errorf("next Contact %+v", after)
	}
}

// TestOlderConversationMappedLateAnnouncesNothing: the contact's newer
// conversation (a new email) is mapped first, as when the older one's
// partition is behind (a takeover, records held while the store was
// full). The older conversation's email differs from the stored one but
// is older: no identify, and the Contact keeps the newer email, so the
// destination does not end with the old value. A value newer than the
// stored one is still news.
func TestOlderConversationMappedLateAnnouncesNothing(t *testing.T) {
	m, err := mapper.New(mapper.Options{})
	if err != nil {
		t.Fatal(err)
	}
	set := spec.DefaultSettings
	at := func(o *spec.Observation, d time.Duration) *spec.Observation {
		o.ReceivedAt = o.ReceivedAt.Add(d)
		return o
	}
	newer := at(contactWebhook("0193c5e4-0000-7000-8000-000000000012", "chatbot::1:newer", `{"id":48213,"email":"new@example.org"}`), time.Hour)
	out, _, ct, _, err := m.MapContact(newer, mapper.State{}, mapper.Contact{}, set)
	if err != nil {
		t.Fatal(err)
	}
	if id := identifyOf(t, out); id == nil || id.Traits[spec.TraitEmail] != "new@example.org" {
		t.Fatalf("newer conversation: identify %+v, want the new email", id)
	}
	older := contactWebhook("0193c5e4-0000-7000-8000-000000000011", "chatbot::1:older", `{"id":48213,"email":"old@example.org","name":"Maria"}`)
	out, _, ct, _, err = m.MapContact(older, mapper.State{}, ct, set)
	if err != nil {
		t.Fatal(err)
	}
	// The name is news (never announced); the older email is not.
	if id := identifyOf(t, out); id == nil || id.Traits[spec.TraitName] != "Maria" || len(id.Traits) != 1 {
		t.Errorf("older conversation: identify %+v, want the name alone", id)
	}
	if ct.Traits[spec.TraitEmail] != "new@example.org" {
		t.Errorf("Contact after the older conversation: email %q, want the newer one", ct.Traits[spec.TraitEmail])
	}
	latest := at(contactWebhook("0193c5e4-0000-7000-8000-000000000013", "chatbot::1:latest", `{"id":48213,"email":"latest@example.org"}`), 2*time.Hour)
	out, _, _, _, err = m.MapContact(latest, mapper.State{}, ct, set)
	if err != nil {
		t.Fatal(err)
	}
	if id := identifyOf(t, out); id == nil || id.Traits[spec.TraitEmail] != "latest@example.org" {
		t.Errorf("latest conversation: identify %+v, want the latest email", id)
	}
}
