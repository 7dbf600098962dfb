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
	Cid          Str     `json:"cid"`
	ApproachMode Str     `json:"approach_mode"`
	Contact      Contact `json:"contact"`
	Widget       Widget  `json:"widget"`
	Conversation Ref     `json:"conversation"`
	// info.context, the bot's own state of up to 10 KB that Userlike
	// echoes back, is not read: nothing in chattap looks into it, and it
	// stays in the verbatim payload.
}

// ChatbotPacket names the event and carries its payload.
type ChatbotPacket struct {
	Name Str `json:"name"`
	// Event is the older or alternative key for Name.
	Event   Str            `json:"event"`
	Payload ChatbotPayload `json:"payload"`
}

// ChatbotPayload is packet.payload of every Chatbot API event chattap
// reads, in one struct: the event's name says which fields matter. The
// keys of click, bubbles, carousel and forward payloads are not public,
// so the likely ones are all read (guessed: everything but body, url and
// the contact_update fields).
type ChatbotPayload struct {
	Body    Str `json:"body"`
	Text    Str `json:"text"`
	Message Str `json:"message"`
	Title   Str `json:"title"`
	// Label, Value, Option, Index, OptionIndex and Selected are how a
	// click may name the option chosen.
	Label       Str             `json:"label"`
	Value       Str             `json:"value"`
	URL         Str             `json:"url"`
	Option      json.RawMessage `json:"option"`
	Index       Str             `json:"index"`
	OptionIndex Str             `json:"option_index"`
	Selected    Str             `json:"selected"`
	// Options, Elements, Items and Buttons are the options of bubbles,
	// carousel and the deprecated button.
	Options  []ChatbotOption `json:"options"`
	Elements []ChatbotOption `json:"elements"`
	Items    []ChatbotOption `json:"items"`
	Buttons  []ChatbotOption `json:"buttons"`
	// Group, GroupID and GroupName are forward_group's group.
	Group     Str `json:"group"`
	GroupID   Str `json:"group_id"`
	GroupName Str `json:"group_name"`
	// Name, Email, MobileNumber and PhoneNumber are contact_update's.
	Name         Str `json:"name"`
	Email        Str `json:"email"`
	MobileNumber Str `json:"mobile_number"`
	PhoneNumber  Str `json:"phone_number"`
}

// ChatbotOption is one option of a bubbles or carousel element.
type ChatbotOption struct {
	Label Str `json:"label"`
	Title Str `json:"title"`
	Text  Str `json:"text"`
	Body  Str `json:"body"`
	Value Str `json:"value"`
}

// Caption is what the contact sees of the option: its label, title, text
// or body, else its value.
func (o *ChatbotOption) Caption() string {
	return FirstOf(o.Label, o.Title, o.Text, o.Body, o.Value)
}

// Said is the text of the event: body, text, message or title, the
// first that is there.
func (p *ChatbotPayload) Said() string { return FirstOf(p.Body, p.Text, p.Message, p.Title) }

// OptionList is the options the event offers, from the first of options,
// elements, items and buttons that has any.
func (p *ChatbotPayload) OptionList() []ChatbotOption {
	for _, l := range [][]ChatbotOption{p.Options, p.Elements, p.Items, p.Buttons} {
		if len(l) > 0 {
			return l
		}
	}
	return nil
}

// ChatbotChoice is what a click payload says of the option chosen; any
// part may be missing. Index is one-based, 0 when not named.
type ChatbotChoice struct {
	Index int
	Label string
	Value string
}

// Choice reads a click: option as an object ({label, value, …}), a
// number (its index) or a string (its label), else label/title/text and
// value beside it, and index, option_index or selected as the index.
func (p *ChatbotPayload) Choice() ChatbotChoice {
	var opt ChatbotOption
	var ch ChatbotChoice
	if len(p.Option) > 0 {
		if p.Option[0] == '{' {
			_ = decodeLenient(p.Option, &opt)
		} else {
			var s Str
			_ = s.UnmarshalJSON(p.Option)
			if n, ok := s.Int(); ok {
				ch.Index = int(n)
			} else {
				opt.Label = s
			}
		}
	}
	ch.Label = FirstOf(opt.Label, opt.Title, opt.Text, p.Label, p.Title, p.Text)
	ch.Value = FirstOf(opt.Value, p.Value)
	for _, s := range []Str{p.Index, p.OptionIndex, p.Selected} {
		if n, ok := s.Int(); ok && ch.Index == 0 {
			ch.Index = int(n)
		}
	}
	return ch
}

// FirstOf is the first of ss that is not empty, else "".
func FirstOf(ss ...Str) string {
	for _, s := range ss {
		if s != "" {
			return string(s)
		}
	}
	return ""
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
func DecodeChatbotEvent(data []byte) (*ChatbotEvent, error) {
	e := new(ChatbotEvent)
	err := decodeLenient(data, e)
	return e, err
}

// Name is the event's name: packet.name, else packet.event.
func (e *ChatbotEvent) Name() string {
	if e.Packet.Name != "" {
		return string(e.Packet.Name)
	}
	return string(e.Packet.Event)
}
