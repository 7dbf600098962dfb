package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// RecordVersion is the schema version written in Record.V: one record per
// HTTP exchange. Version 1 (ObservationVersion) was one record per event.
const RecordVersion = 2

// Record is what passed through a tap in one HTTP exchange: the caller's
// event and every event of the upstream's answer, with the status the
// caller got. It is one JetStream message on StreamRaw, published on
// Subject() with ID as its Nats-Msg-Id; the mapper splits it into
// Observations with Observations.
//
// One message per exchange instead of one per event is what makes the
// tap cheap: the benchmark's webhooks carry ~6.5 events each, and every
// JetStream message is stored, deduplicated, consumed and acked on its own.
type Record struct {
	// V is the schema version, RecordVersion.
	V int `json:"v"`
	// ID is the exchange id, unique per exchange, and the Nats-Msg-Id.
	ID string `json:"id"`
	// Source and Kind are the caller's event's: its flow and name. They
	// make the subject.
	Source Source `json:"source"`
	Kind   string `json:"kind"`
	// ReceivedAt is when the tap saw the request, in UTC.
	ReceivedAt time.Time `json:"received_at"`
	// ConversationID is the conversation of the exchange: the caller's
	// event's, else the first event's that names one.
	ConversationID string `json:"conversation_id,omitempty"`
	// Partition is Partition(ConversationID), or Partition(ID) for a
	// record without a conversation. It is in the subject, and stored so
	// that a reader need not compute it.
	Partition int `json:"partition"`
	// Status is the HTTP status the caller got: the upstream's, 200 where
	// chattap answered itself, 502 where the upstream could not be reached.
	Status int `json:"status"`
	// Events are the exchange's events in the order they passed: the
	// caller's first, then those of the upstream's answer. Never empty.
	Events []RecordEvent `json:"events"`
}

// RecordEvent is one event of a Record, its payload verbatim.
type RecordEvent struct {
	// Source is the flow this event was seen on (a bot's reply is
	// SourceChatbotReply in a SourceChatbotWebhook record).
	Source Source `json:"source"`
	// Kind is the event as the wire named it, or KindUndecodable.
	Kind string `json:"kind"`
	// ConversationID is set only where the event names another
	// conversation than the record's.
	ConversationID string `json:"conversation_id,omitempty"`
	// Error says why the payload could not be decoded, for KindUndecodable.
	Error string `json:"error,omitempty"`
	// Payload is the event, verbatim, when it is JSON.
	Payload json.RawMessage `json:"payload,omitempty"`
	// PayloadRaw holds the original bytes when they are not JSON.
	PayloadRaw []byte `json:"payload_raw,omitempty"`
}

// Subject is the raw subject the record is published on: the partition,
// then the caller's event's source and kind.
func (r *Record) Subject() string { return RawPartitionSubject(r.Partition, r.Source, r.Kind) }

// NewRecord makes the record of one exchange from its Observations, as a
// tap decodes them (obs[0] is the caller's event; ids, indexes and the
// exchange are ignored: a record's Observations get them back from ID and
// their position). obs must not be empty. The payloads are shared, not
// copied.
func NewRecord(id string, receivedAt time.Time, status int, obs []*Observation) *Record {
	r := &Record{V: RecordVersion, ID: id, Source: obs[0].Source, Kind: obs[0].Kind, ReceivedAt: receivedAt.UTC(), Status: status,
		Events: make([]RecordEvent, len(obs))}
	for _, o := range obs {
		if o.ConversationID != "" {
			r.ConversationID = o.ConversationID
			break
		}
	}
	for i, o := range obs {
		e := &r.Events[i]
		e.Source, e.Kind, e.Error, e.Payload, e.PayloadRaw = o.Source, o.Kind, o.Error, o.Payload, o.PayloadRaw
		if o.ConversationID != r.ConversationID {
			e.ConversationID = o.ConversationID
		}
	}
	r.Partition = Partition(r.ConversationID)
	if r.ConversationID == "" {
		r.Partition = Partition(id)
	}
	return r
}

// ObservationID is the id of the i-th Observation of the record with this
// id: the record's id for the caller's event, "<id>-<i>" for the events of
// the answer, as version 1 named them. It is deterministic, so a replayed
// record yields the same Observation ids and so the same messageIds.
func ObservationID(recordID string, i int) string {
	if i == 0 {
		return recordID
	}
	return recordID + "-" + strconv.Itoa(i)
}

// Observations splits the record into one Observation per event, in
// order, each with the id ObservationID gives it and Record set to the
// record's id.
func (r *Record) Observations() []Observation {
	out := make([]Observation, len(r.Events))
	for i := range r.Events {
		e := &r.Events[i]
		cid := e.ConversationID
		if cid == "" {
			cid = r.ConversationID
		}
		out[i] = Observation{V: r.V, ID: ObservationID(r.ID, i), Record: r.ID, Source: e.Source, Kind: e.Kind, ReceivedAt: r.ReceivedAt,
			ConversationID: cid, Exchange: r.ID, Index: i, Status: r.Status, Error: e.Error, Payload: e.Payload, PayloadRaw: e.PayloadRaw}
	}
	return out
}

// ReadRaw reads a message stored on StreamRaw, of either version, into the
// Observations the mapper maps: a version 1 message is one Observation, a
// version 2 record one per event. Every Observation's Record is the id of
// the message it came from. A message that is not one of the two, has no
// id, or is a record with no events, is an error.
func ReadRaw(data []byte) ([]Observation, error) {
	// Both versions share most field names, so one pass reads either.
	var u struct {
		Record
		Exchange   string          `json:"exchange"`
		Index      int             `json:"index"`
		Error      string          `json:"error"`
		Payload    json.RawMessage `json:"payload"`
		PayloadRaw []byte          `json:"payload_raw"`
	}
	if err := json.Unmarshal(data, &u); err != nil {
		return nil, fmt.Errorf("read raw record: %w", err)
	}
	r := &u.Record
	if r.ID == "" {
		return nil, errors.New("read raw record: no id")
	}
	switch r.V {
	case ObservationVersion:
		return []Observation{{V: r.V, ID: r.ID, Record: r.ID, Source: r.Source, Kind: r.Kind, ReceivedAt: r.ReceivedAt,
			ConversationID: r.ConversationID, Exchange: u.Exchange, Index: u.Index, Status: r.Status, Error: u.Error,
			Payload: u.Payload, PayloadRaw: u.PayloadRaw}}, nil
	case RecordVersion:
		if len(r.Events) == 0 {
			return nil, fmt.Errorf("read record %s: no events", r.ID)
		}
		return r.Observations(), nil
	default:
		return nil, fmt.Errorf("read raw record: unknown version %d", r.V)
	}
}
