package mapper_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
)

// A contact's first message to a bot: the conversation starts before it,
// and the contact's traits are identified.
func ExampleMapper_Map() {
	m, err := mapper.New(mapper.Options{Version: "1.0.0"})
	if err != nil {
		panic(err)
	}
	obs := &spec.Observation{
		V: 1, ID: "0193c5e4-8a7b-7c01-9d2e-3f4a5b6c7d8e", Source: spec.SourceChatbotWebhook, Kind: "message",
		ReceivedAt:     time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		ConversationID: "chatbot::258:a567", Status: 200,
		Payload: json.RawMessage(`{"info":{"cid":"chatbot::258:a567","contact":{"id":48213,"name":"Maria","external_customer_id":"CRM-42"}},
			"packet":{"name":"message","payload":{"body":"Hello!"}}}`),
	}
	out, next, err := m.Map(obs, mapper.State{}, spec.DefaultSettings)
	if err != nil {
		panic(err)
	}
	for _, msg := range out {
		fmt.Println(msg.Type, msg.Event, msg.UserID, msg.AnonymousID, msg.Properties[spec.PropMessageBody])
	}
	// Redelivered, the same Observation yields nothing more.
	again, _, _ := m.Map(obs, next, spec.DefaultSettings)
	fmt.Println(len(again))
	// Output:
	// identify  CRM-42 userlike-contact:48213 <nil>
	// track Live Chat Conversation Started CRM-42 userlike-contact:48213 <nil>
	// track Live Chat Message Sent CRM-42 userlike-contact:48213 Hello!
	// 0
}

// Options come from CHATTAP_ variables in cmd/chattap; Validate reports
// every bad one at once.
func ExampleOptions_Validate() {
	err := mapper.Options{MessageBody: "redact", Events: "started,typing", Timezone: "Mars/Olympus"}.Validate()
	fmt.Println(err)
	// Output:
	// CHATTAP_MESSAGE_BODY: "redact" is neither keep nor drop
	// CHATTAP_EVENTS: unknown "typing" (known: ended, received, sent, started)
	// CHATTAP_TIMEZONE: "Mars/Olympus" is not an IANA zone: unknown time zone Mars/Olympus
}
