package mapper_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
)

func webhookMessage(id, cid, body string) *spec.Observation {
	payload, _ := json.Marshal(map[string]any{
		"info":   map[string]any{"cid": cid},
		"packet": map[string]any{"name": "message", "payload": map[string]any{"body": body}},
	})
	return &spec.Observation{V: 1, ID: id, Source: spec.SourceChatbotWebhook, Kind: "message",
		ReceivedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), ConversationID: cid, Status: 200, Payload: payload}
}

func eventNames(out []spec.Message) []string {
	var names []string
	for _, m := range out {
		names = append(names, m.Type+":"+m.Event)
	}
	return names
}

// TestDisabledEventsAreLeftOutButTheirStateKept switches Conversation
// Started off at run time: the first message yields only Message Sent, and
// once Started is switched on again the conversation is not started twice.
func TestDisabledEventsAreLeftOutButTheirStateKept(t *testing.T) {
	m, err := mapper.New(mapper.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	off := spec.Settings{RecordLiveChatEvents: true, DisabledEvents: []string{spec.EventConversationStarted}}
	out, st, err := m.Map(webhookMessage("o1", "chatbot::1:a", "hello"), mapper.State{}, off)
	if err != nil {
		t.Fatal(err)
	}
	if got := eventNames(out); len(got) != 1 || got[0] != "track:"+spec.EventMessageSent {
		t.Fatalf("with Started off: %v, want only Message Sent", got)
	}
	out, _, err = m.Map(webhookMessage("o2", "chatbot::1:a", "again"), st, spec.DefaultSettings)
	if err != nil {
		t.Fatal(err)
	}
	if got := eventNames(out); len(got) != 1 || got[0] != "track:"+spec.EventMessageSent {
		t.Fatalf("with Started back on: %v, want only Message Sent (the conversation had started)", got)
	}
	out, _, err = m.Map(webhookMessage("o3", "chatbot::2:b", "hi"), mapper.State{}, spec.DefaultSettings)
	if err != nil {
		t.Fatal(err)
	}
	if got := eventNames(out); len(got) != 2 || got[0] != "track:"+spec.EventConversationStarted {
		t.Fatalf("default settings on a new conversation: %v, want Started then Sent", got)
	}
}
