package spec

import (
	"errors"
	"fmt"
	"time"
)

// Segment's Live Chat event names.
const (
	EventConversationStarted = "Live Chat Conversation Started"
	EventMessageSent         = "Live Chat Message Sent"     // customer → agent
	EventMessageReceived     = "Live Chat Message Received" // agent → customer
	EventConversationEnded   = "Live Chat Conversation Ended"
)

// Extended events beyond Segment's spec, for what it has no name for. They
// are opt-in.
const (
	EventConversationForwarded = "Live Chat Conversation Forwarded"
	EventOptionSelected        = "Live Chat Option Selected"
	EventConversationRated     = "Live Chat Conversation Rated"
)

// LiveChatEvents are the four events of Segment's Live Chat spec, in the
// order a conversation has them.
var LiveChatEvents = []string{EventConversationStarted, EventMessageSent, EventMessageReceived, EventConversationEnded}

// ExtendedEvents are chattap's own events beyond the spec.
var ExtendedEvents = []string{EventConversationForwarded, EventOptionSelected, EventConversationRated}

// KnownEvent reports whether name is a Live Chat or an extended event.
func KnownEvent(name string) bool {
	for _, e := range LiveChatEvents {
		if e == name {
			return true
		}
	}
	for _, e := range ExtendedEvents {
		if e == name {
			return true
		}
	}
	return false
}

// Property keys of the Live Chat spec, and chattap's widget keys.
const (
	PropConversationID       = "conversation_id"
	PropMessageID            = "message_id"
	PropMessageBody          = "message_body"
	PropAgentID              = "agent_id"
	PropAgentName            = "agent_name"
	PropAgentUsername        = "agent_username"
	PropConversationDuration = "conversation_duration"
	PropWidgetID             = "widget_id"
	PropWidgetName           = "widget_name"
)

// Contact trait keys, as Segment's identify spec names them.
const (
	TraitName    = "name"
	TraitEmail   = "email"
	TraitPhone   = "phone"
	TraitCompany = "company"
	TraitLocale  = "locale"
)

// Segment message types chattap emits.
const (
	TypeTrack    = "track"
	TypeIdentify = "identify"
)

// Limits of Segment's HTTP Tracking API.
const (
	MaxMessageIDLen  = 100
	MaxMessageBytes  = 32 << 10
	MaxBatchBytes    = 500 << 10
	MaxBatchMessages = 2500
	LibraryName      = "chattap"
)

// Message is one Segment message, exactly as Segment's HTTP Tracking API
// accepts it in a batch. It is what chattap publishes on StreamEvents and
// what every sink delivers. Maps marshal with sorted keys, so the same
// Message always encodes to the same bytes.
type Message struct {
	Type        string         `json:"type"`
	Event       string         `json:"event,omitempty"`
	MessageID   string         `json:"messageId"`
	AnonymousID string         `json:"anonymousId,omitempty"`
	UserID      string         `json:"userId,omitempty"`
	Timestamp   time.Time      `json:"timestamp"`
	Properties  map[string]any `json:"properties,omitempty"`
	// Traits are an identify's traits; a track carries the contact's in
	// Context.Traits.
	Traits       map[string]any  `json:"traits,omitempty"`
	Context      *Context        `json:"context,omitempty"`
	Integrations map[string]bool `json:"integrations,omitempty"`
}

// Context is the part of a Segment message's context that chattap fills.
type Context struct {
	Library *Library       `json:"library,omitempty"`
	Traits  map[string]any `json:"traits,omitempty"`
}

// Library names the software that produced a message.
type Library struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ErrInvalidMessage is wrapped by every error Validate returns.
var ErrInvalidMessage = errors.New("invalid segment message")

// Validate reports whether m is a message Segment would accept: a known
// type, an event name from the spec on a track, a messageId of at most 100
// characters, an identity, and a timestamp.
func (m *Message) Validate() error {
	switch m.Type {
	case TypeTrack:
		if !KnownEvent(m.Event) {
			return fmt.Errorf("%w: unknown event %q", ErrInvalidMessage, m.Event)
		}
	case TypeIdentify:
	default:
		return fmt.Errorf("%w: unknown type %q", ErrInvalidMessage, m.Type)
	}
	if m.MessageID == "" || len(m.MessageID) > MaxMessageIDLen {
		return fmt.Errorf("%w: messageId must have 1 to %d characters, has %d", ErrInvalidMessage, MaxMessageIDLen, len(m.MessageID))
	}
	if m.UserID == "" && m.AnonymousID == "" {
		return fmt.Errorf("%w: neither userId nor anonymousId", ErrInvalidMessage)
	}
	if m.Timestamp.IsZero() {
		return fmt.Errorf("%w: no timestamp", ErrInvalidMessage)
	}
	return nil
}
