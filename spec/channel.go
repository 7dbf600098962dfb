package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// ChannelFields names where in a Custom Channel message the contact, its
// display name, the text and a media URL are. Each is a list of dotted
// paths, tried in order; the first that holds a scalar wins. Userlike does
// not publish the exact keys, so DefaultChannelFields tries the likely ones
// and a user may name their own.
type ChannelFields struct {
	Contact  []string
	Name     []string
	Body     []string
	URL      []string
	Operator []string
}

// DefaultChannelFields are the paths tried when a user names none.
var DefaultChannelFields = ChannelFields{
	Contact:  []string{"contact_id", "external_id", "contact.external_id", "contact.id", "email", "contact.email", "identifier", "contact.identifier"},
	Name:     []string{"name", "contact_name", "contact.name", "display_name"},
	Body:     []string{"message.body", "message.text", "body", "text", "message"},
	URL:      []string{"url", "message.url", "media_url", "message.media_url"},
	Operator: []string{"operator.name", "message.operator.name", "operator_name", "message.operator_name"},
}

// ChannelMessage is one Custom Channel message, inbound or outbound.
type ChannelMessage struct {
	Contact      string
	ContactName  string
	Body         string
	URL          string
	OperatorName string
	OperatorID   string
	// OperatorUsername is guessed: operator.username and the like.
	OperatorUsername string
	// Event is message.event where present (outbound only).
	Event string
	// Deleted is message.is_deleted.
	Deleted bool
}

// DecodeChannelMessage reads a Custom Channel message with the given field
// paths (zero fields: DefaultChannelFields). Only a payload that is not a
// JSON object is an error.
func DecodeChannelMessage(data []byte, fields ChannelFields) (ChannelMessage, error) {
	var doc map[string]any
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return ChannelMessage{}, ErrNotObject
	}
	if !json.Valid(data) {
		return ChannelMessage{}, errors.New("channel message is not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return ChannelMessage{}, err
	}
	fields = fields.withDefaults()
	m := ChannelMessage{
		Contact:          firstScalar(doc, fields.Contact),
		ContactName:      firstScalar(doc, fields.Name),
		Body:             firstScalar(doc, fields.Body),
		URL:              firstScalar(doc, fields.URL),
		OperatorName:     firstScalar(doc, fields.Operator),
		OperatorID:       firstScalar(doc, []string{"operator.id", "message.operator.id", "operator_id", "message.operator_id"}),
		OperatorUsername: firstScalar(doc, []string{"operator.username", "message.operator.username", "operator_username", "message.operator_username"}),
		Event:            firstScalar(doc, []string{"message.event", "event"}),
	}
	m.Deleted = firstScalar(doc, []string{"message.is_deleted", "is_deleted"}) == "true"
	return m, nil
}

// Conversation is the conversation id chattap gives a channel message: a
// channel has no session id, so the contact names the conversation.
func (m *ChannelMessage) Conversation() string {
	if m.Contact == "" {
		return ""
	}
	return "channel::" + m.Contact
}

func (f ChannelFields) withDefaults() ChannelFields {
	if len(f.Contact) == 0 {
		f.Contact = DefaultChannelFields.Contact
	}
	if len(f.Name) == 0 {
		f.Name = DefaultChannelFields.Name
	}
	if len(f.Body) == 0 {
		f.Body = DefaultChannelFields.Body
	}
	if len(f.URL) == 0 {
		f.URL = DefaultChannelFields.URL
	}
	if len(f.Operator) == 0 {
		f.Operator = DefaultChannelFields.Operator
	}
	return f
}

func firstScalar(doc map[string]any, paths []string) string {
	for _, p := range paths {
		if s, ok := lookupScalar(doc, p); ok && s != "" {
			return s
		}
	}
	return ""
}

func lookupScalar(doc map[string]any, path string) (string, bool) {
	var cur any = doc
	for more := true; more; {
		var key string
		key, path, more = strings.Cut(path, ".")
		obj, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		if cur, ok = obj[key]; !ok {
			return "", false
		}
	}
	switch v := cur.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	}
	return "", false
}
