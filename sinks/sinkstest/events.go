package sinkstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/spec"
)

// Events returns n valid Live Chat messages with messageIds prefix-0…,
// cycling through the four events and an identify, with fixed timestamps.
func Events(prefix string, n int) []spec.Message {
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	lib := &spec.Library{Name: spec.LibraryName, Version: "test"}
	out := make([]spec.Message, n)
	for i := range out {
		conv := fmt.Sprintf("chatbot::258:%s-%d", prefix, i/5)
		m := spec.Message{
			Type:        spec.TypeTrack,
			MessageID:   fmt.Sprintf("%s-%d", prefix, i),
			AnonymousID: "anon-" + conv,
			Timestamp:   base.Add(time.Duration(i) * time.Second),
			Context:     &spec.Context{Library: lib, Traits: map[string]any{spec.TraitName: "Ada", spec.TraitEmail: "ada@example.com"}},
			Properties: map[string]any{
				spec.PropConversationID: conv,
				spec.PropAgentID:        "bot-1",
				spec.PropAgentName:      "Helper Bot",
			},
		}
		switch i % 5 {
		case 0:
			m.Event = spec.EventConversationStarted
		case 1:
			m.Event = spec.EventMessageSent
			m.Properties[spec.PropMessageBody] = "Hello, I have a question about my balance."
			m.Properties[spec.PropMessageID] = fmt.Sprintf("%d", i)
		case 2:
			m.Event = spec.EventMessageReceived
			m.Properties[spec.PropMessageBody] = "What is your order number? <b>&</b>"
		case 3:
			m.Type, m.Event, m.Properties = spec.TypeIdentify, "", nil
			m.UserID = "cust-42"
			m.Traits = map[string]any{spec.TraitName: "Ada", spec.TraitEmail: "ada@example.com"}
			m.Context = &spec.Context{Library: lib}
			m.Integrations = map[string]bool{"All": true, "Mixpanel": false}
		case 4:
			m.Event = spec.EventConversationEnded
			m.Properties[spec.PropConversationDuration] = 120
		}
		out[i] = m
	}
	return out
}

// Delivery makes a Delivery of m as the Runner would.
func Delivery(t testing.TB, m spec.Message, seq uint64) sinks.Delivery {
	t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d, err := sinks.NewDelivery(spec.EventSubject(&m), seq, 1, data)
	if err != nil {
		t.Fatalf("delivery of %s: %v", m.MessageID, err)
	}
	return d
}

// SameJSON reports whether a and b hold the same JSON value (key order,
// spacing and number spelling aside).
func SameJSON(a, b []byte) bool {
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
