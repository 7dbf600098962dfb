package spec

import "encoding/json"

// ChatbotEvent is one event of Userlike's Chatbot API: what Userlike sends
// to the bot's webhook, what the bot answers with, and what the bot sends to
// the API URL. Every field is optional.
type ChatbotEvent struct {
	Info   ChatbotInfo   `json:"info"`
	Packet ChatbotPacket `json:"packet"`
}

// ChatbotInfo is the envelope's info: the session and what is known of it.
type ChatbotInfo struct {
	// Cid is the chatbot session id: the conversation.
	Cid          Str             `json:"cid"`
	ApproachMode Str             `json:"approach_mode"`
	Contact      Contact         `json:"contact"`
	Widget       Widget          `json:"widget"`
	Conversation Ref             `json:"conversation"`
	Context      json.RawMessage `json:"context"`
}

// ChatbotPacket names the event and carries its payload.
type ChatbotPacket struct {
	Name Str `json:"name"`
	// Event is the older or alternative key for Name.
	Event   Str             `json:"event"`
	Payload json.RawMessage `json:"payload"`
}

// Contact is what a payload tells of the contact.
type Contact struct {
	ID                 Str `json:"id"`
	UUID               Str `json:"uuid"`
	Name               Str `json:"name"`
	Email              Str `json:"email"`
	MobileNumber       Str `json:"mobile_number"`
	PhoneNumber        Str `json:"phone_number"`
	Company            Str `json:"company"`
	ExternalCustomerID Str `json:"external_customer_id"`
	Locale             Str `json:"locale"`
}

// Widget is a chat widget as a payload names it.
type Widget struct {
	ID   Str `json:"id"`
	Name Str `json:"name"`
	Key  Str `json:"key"`
}

// Ref is an object of which only the id matters.
type Ref struct {
	ID Str `json:"id"`
}

// DecodeChatbotEvent reads one Chatbot API event tolerantly: unknown fields
// are ignored (they stay in the verbatim payload), fields of an unexpected
// type are left empty. Only a payload that is not a JSON object is an error.
func DecodeChatbotEvent(data []byte) (ChatbotEvent, error) {
	var e ChatbotEvent
	err := decodeLenient(data, &e)
	return e, err
}

// Name is the event's name: packet.name, else packet.event.
func (e *ChatbotEvent) Name() string {
	if e.Packet.Name != "" {
		return string(e.Packet.Name)
	}
	return string(e.Packet.Event)
}
