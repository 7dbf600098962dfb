package mapper_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
)

func TestRefusedExchangeIsNotAnalytics(t *testing.T) {
	m, err := mapper.New(mapper.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	forged := map[spec.Source]string{
		spec.SourceChatbotWebhook:  `{"info":{"cid":"c1","contact":{"id":1,"email":"victim@example.com","external_customer_id":"CRM-1"}},"packet":{"name":"message","payload":{"body":"hi"}}}`,
		spec.SourceChatbotAPI:      `{"info":{"cid":"c1","contact":{"email":"victim@example.com"}},"packet":{"name":"contact_update","payload":{"email":"attacker@example.com"}}}`,
		spec.SourceChannelInbound:  `{"contact_id":"victim@example.com","name":"Victim","text":"hi"}`,
		spec.SourceChannelOutbound: `{"contact":{"email":"victim@example.com"},"message":{"body":"hi","event":"message"}}`,
	}
	for source, payload := range forged {
		for _, tc := range []struct {
			status int
			yields bool
		}{
			{401, false}, {403, false},
			// Not a refusal of the caller: today's rules hold (the
			// contact's side of a 5xx is still the contact's message).
			{200, true},
		} {
			t.Run(fmt.Sprintf("%s/%d", source, tc.status), func(t *testing.T) {
				cid := "c1"
				if source == spec.SourceChannelInbound || source == spec.SourceChannelOutbound {
					cid = "channel::victim@example.com"
				}
				obs := &spec.Observation{V: 1, ID: "obs-" + string(source), Source: source, Kind: "message", ReceivedAt: at, ConversationID: cid, Status: tc.status, Payload: json.RawMessage(payload)}
				out, next, err := m.Map(obs, mapper.State{}, spec.DefaultSettings)
				if err != nil {
					t.Fatal(err)
				}
				if tc.yields && source == spec.SourceChatbotAPI {
					// A contact_update yields no track, and an identify
					// waits for the conversation's first Live Chat event:
					// the accepted one is news kept in the state.
					if len(out) > 0 || next.Traits[spec.TraitEmail] != "attacker@example.com" {
						t.Fatalf("accepted contact_update: %d messages, traits %v; want none yet and the new email kept", len(out), next.Traits)
					}
					return
				}
				if got := len(out) > 0; got != tc.yields {
					t.Fatalf("yields %d messages (%+v), want any: %v", len(out), out, tc.yields)
				}
				if !tc.yields && (next.Started || len(next.Applied) > 0) {
					t.Errorf("a refused exchange changed the conversation's state: %+v", next)
				}
			})
		}
	}
	// A 5xx on the contact's side still records the contact's message.
	obs := &spec.Observation{V: 1, ID: "five", Source: spec.SourceChatbotWebhook, Kind: "message", ReceivedAt: at, ConversationID: "c2", Status: 502, Payload: json.RawMessage(forged[spec.SourceChatbotWebhook])}
	if out, _, err := m.Map(obs, mapper.State{}, spec.DefaultSettings); err != nil || len(out) == 0 {
		t.Errorf("502: got %d messages, %v; want the contact's message as before", len(out), err)
	}
}
