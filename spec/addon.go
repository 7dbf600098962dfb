package spec

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AddonEvent is an API add-on callback: `_type` and `_event` say what it
// is; the session fields are those of the older chat_meta format and of
// chat_session, any of which may be null or absent.
type AddonEvent struct {
	Type  Str `json:"_type"`
	Event Str `json:"_event"`

	ID               Str             `json:"id"`
	SessionID        Str             `json:"session_id"`
	ChatMetaID       Str             `json:"chat_meta_id"`
	ConversationID   Str             `json:"conversation_id"`
	ChatWidget       Widget          `json:"chat_widget"`
	ClientName       Str             `json:"client_name"`
	ClientEmail      Str             `json:"client_email"`
	ClientUUID       Str             `json:"client_uuid"`
	CreatedAt        Str             `json:"created_at"`
	EndedAt          Str             `json:"ended_at"`
	Duration         Str             `json:"duration"`
	OperatorCurrent  *Operator       `json:"operator_current"`
	OperatorCreated  *Operator       `json:"operator_created"`
	Messages         []AddonMessage  `json:"messages"`
	Message          Str             `json:"message"`
	Rate             Str             `json:"rate"`
	FeedbackMessage  Str             `json:"feedback_message"`
	PostSurveyOption Str             `json:"post_survey_option"`
	Topic            Str             `json:"topic"`
	URL              Str             `json:"url"`
	Referrer         Str             `json:"referrer"`
	InitialURL       Str             `json:"initial_url"`
	InitalURL        Str             `json:"inital_url"` // sic: Userlike's spelling
	LocCity          Str             `json:"loc_city"`
	LocCountry       Str             `json:"loc_country"`
	BrowserName      Str             `json:"browser_name"`
	BrowserOS        Str             `json:"browser_os"`
	WasProactive     Str             `json:"was_proactive"`
	Custom           json.RawMessage `json:"custom"`

	// Fields of a live message event (message_received, message_sent)
	// beside message: its own id and time, and the other names its text
	// may go by (guessed: body, text).
	MessageID Str `json:"message_id"`
	SentAt    Str `json:"sent_at"`
	Body      Str `json:"body"`
	Text      Str `json:"text"`
	// Rating and Feedback are the other names a rating or feedback
	// callback may give rate and feedback_message (guessed).
	Rating   Str `json:"rating"`
	Feedback Str `json:"feedback"`
}

// MessageText is the text of a live message event: message, body or text.
func (e *AddonEvent) MessageText() string { return FirstOf(e.Message, e.Body, e.Text) }

// LiveMessageID is the id a live message event gives its message:
// message_id, else id where another field names the session (id then
// names the message), else "".
func (e *AddonEvent) LiveMessageID() string {
	if e.MessageID != "" {
		return string(e.MessageID)
	}
	if e.ID != "" && string(e.ID) != e.SessionKey() {
		return string(e.ID)
	}
	return ""
}

// RateValue is the rating the callback carries: rate, else rating.
func (e *AddonEvent) RateValue() string { return FirstOf(e.Rate, e.Rating) }

// FeedbackText is the contact's feedback: feedback_message, else feedback.
func (e *AddonEvent) FeedbackText() string { return FirstOf(e.FeedbackMessage, e.Feedback) }

// HasRating reports whether the callback carries any of a rating, a
// feedback text or a survey answer.
func (e *AddonEvent) HasRating() bool {
	return e.RateValue() != "" || e.FeedbackText() != "" || e.PostSurveyOption != ""
}

// Operator is a Userlike operator as an add-on payload names it.
type Operator struct {
	ID        Str `json:"id"`
	Name      Str `json:"name"`
	FirstName Str `json:"first_name"`
	LastName  Str `json:"last_name"`
	Email     Str `json:"email"`
	// Username is not in the known payloads, read where one has it.
	Username      Str            `json:"username"`
	OperatorGroup *OperatorGroup `json:"operator_group"`
}

// OperatorGroup is the group an operator belongs to.
type OperatorGroup struct {
	ID   Str `json:"id"`
	Name Str `json:"name"`
}

// DisplayName is the operator's name, else first and last name joined.
func (op *Operator) DisplayName() string {
	if op.Name != "" {
		return string(op.Name)
	}
	return strings.TrimSpace(string(op.FirstName) + " " + string(op.LastName))
}

// AddonMessage is one message of a session transcript.
type AddonMessage struct {
	Message Str `json:"message"`
	Person  Str `json:"person"`
	SentAt  Str `json:"sent_at"`
	// Type tells the direction: a two-letter code whose first letter 'c'
	// means from the contact.
	Type Str `json:"type"`
}

// FromContact reports whether the transcript message came from the contact.
func (m *AddonMessage) FromContact() bool {
	return strings.HasPrefix(strings.ToLower(string(m.Type)), "c")
}

// DecodeAddonEvent reads an add-on callback tolerantly; only a payload that
// is not a JSON object is an error.
func DecodeAddonEvent(data []byte) (*AddonEvent, error) {
	e := new(AddonEvent)
	err := decodeLenient(data, e)
	return e, err
}

// Kind is the Observation kind of the callback: "<_type>.<_event>", or
// just the one of them that is present.
func (e *AddonEvent) Kind() string {
	t, ev := SubjectToken(string(e.Type)), SubjectToken(string(e.Event))
	switch {
	case e.Type == "" && e.Event == "":
		return "unknown"
	case e.Event == "":
		return t
	case e.Type == "":
		return ev
	}
	return t + "." + ev
}

// IsSession reports whether the callback is about a chat session (either
// format) rather than an operator, a widget or an offline message.
func (e *AddonEvent) IsSession() bool {
	return e.Type == "chat_meta" || e.Type == "chat_session" || e.Type == "conversation"
}

// SessionKey is the session the callback is about: session_id,
// chat_meta_id or conversation_id where a message event names its session,
// else id.
func (e *AddonEvent) SessionKey() string {
	for _, s := range []Str{e.SessionID, e.ChatMetaID, e.ConversationID, e.ID} {
		if s != "" {
			return string(s)
		}
	}
	return ""
}

// Conversation is the conversation id chattap gives an add-on callback:
// "userlike::<session>" for session callbacks, "" for the others.
func (e *AddonEvent) Conversation() string {
	if !e.IsSession() {
		return ""
	}
	if k := e.SessionKey(); k != "" {
		return "userlike::" + k
	}
	return ""
}

// ParseLocalTime reads Userlike's zone-less "YYYY-MM-DD HH:MM:SS" (an ISO
// 8601 time with a zone is accepted too) in loc.
func ParseLocalTime(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04:05.999999"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("time %q is not YYYY-MM-DD HH:MM:SS", s)
}

// ParseDuration reads Userlike's "HH:MM:SS" (hours may exceed 24; a plain
// number of seconds is accepted too).
func ParseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second)), nil
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("duration %q is not HH:MM:SS", s)
	}
	var total int64
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 || (i > 0 && n > 59) {
			return 0, fmt.Errorf("duration %q is not HH:MM:SS", s)
		}
		total = total*60 + n
	}
	return time.Duration(total) * time.Second, nil
}
