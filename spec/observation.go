package spec

import (
	"encoding/json"
	"time"
)

// ObservationVersion is the schema version written in Observation.V.
const ObservationVersion = 1

// Source says which flow an Observation was seen on.
type Source string

// The flows chattap taps, so a raw subject reads
// chattap.raw.chatbot.webhook.message.
const (
	// SourceChatbotWebhook is an event Userlike sent to the bot's webhook.
	SourceChatbotWebhook Source = "chatbot.webhook"
	// SourceChatbotReply is one event of the bot's answer to a webhook.
	SourceChatbotReply Source = "chatbot.reply"
	// SourceChatbotAPI is an event the bot sent, on its own, to the Userlike API URL.
	SourceChatbotAPI Source = "chatbot.api"
	// SourceChannelInbound is a contact's message, channel server → Userlike.
	SourceChannelInbound Source = "channel.inbound"
	// SourceChannelOutbound is an operator's message, Userlike → channel server.
	SourceChannelOutbound Source = "channel.outbound"
	// SourceAddon is an API add-on callback (session, operator, widget
	// events). It has no dot: its subjects read chattap.raw.addon.<kind>.
	SourceAddon Source = "addon"
)

// Sources lists every Source, in flow order.
var Sources = []Source{SourceChatbotWebhook, SourceChatbotReply, SourceChatbotAPI, SourceChannelInbound, SourceChannelOutbound, SourceAddon}

// KindUndecodable is the kind of an Observation whose body was not JSON, or
// not the JSON its route expects. Its bytes are kept in PayloadRaw.
const KindUndecodable = "undecodable"

// Observation is one conversation event as a tap saw it. It is what
// chattap publishes on StreamRaw, and it keeps the original event verbatim
// so that history can be mapped again later.
type Observation struct {
	// V is the schema version, ObservationVersion.
	V int `json:"v"`
	// ID is unique per Observation. A version 1 Observation is stored on
	// its own, with ID as its Nats-Msg-Id; one read from a version 2
	// Record has ObservationID(record id, Index).
	ID string `json:"id"`
	// Record is the id of the message on StreamRaw this Observation was
	// read from (ReadRaw sets it): the exchange id of a version 2 Record,
	// ID itself for a version 1 Observation. The mapper puts it in
	// HeaderRecord. It is not part of the version 1 JSON.
	Record string `json:"-"`
	// Source is the flow; Kind the event as the wire named it
	// ("message", "start", "chat_session.end"), or KindUndecodable.
	Source Source `json:"source"`
	Kind   string `json:"kind"`
	// ReceivedAt is when the tap saw the request, in UTC.
	ReceivedAt time.Time `json:"received_at"`
	// ConversationID is the conversation the event belongs to, when the
	// payload names one (chatbot cid, add-on session id, channel contact).
	ConversationID string `json:"conversation_id,omitempty"`
	// Exchange is shared by all Observations of one HTTP exchange, and
	// Index is this one's position among them (0 for the caller's request,
	// 1… for the events of the upstream's answer).
	Exchange string `json:"exchange,omitempty"`
	Index    int    `json:"index,omitempty"`
	// Status is the HTTP status the exchange ended with, as the caller got
	// it: the upstream's, 200 where chattap answered itself, 502 where the
	// upstream could not be reached.
	Status int `json:"status"`
	// Error says why the payload could not be decoded, for KindUndecodable.
	Error string `json:"error,omitempty"`
	// Payload is the event, verbatim, when it is JSON.
	Payload json.RawMessage `json:"payload,omitempty"`
	// PayloadRaw holds the original bytes when they are not JSON.
	PayloadRaw []byte `json:"payload_raw,omitempty"`
}

// Subject is the raw subject this Observation is published on.
func (o *Observation) Subject() string { return RawSubject(o.Source, o.Kind) }

// Delivered reports whether the exchange's upstream accepted it (a 2xx),
// which is when a bot's reply counts as delivered to the contact.
func (o *Observation) Delivered() bool { return o.Status >= 200 && o.Status < 300 }
