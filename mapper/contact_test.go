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
