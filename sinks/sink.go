package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/chattap/chattap/spec"
)

// Sink is a destination of Live Chat events, as the Runner, ReplayDLQ and
// Replay use it.
type Sink interface {
	// Name is the sink's short, stable name ("segment", "webhook",
	// "file"): it names the durable consumer (sink-<name>) and the DLQ
	// subject (chattap.dlq.<name>).
	Name() string
	// Deliver hands d to the sink and returns without waiting for the
	// destination; it may block briefly while the sink's queue is full.
	// The sink calls done exactly once, from any goroutine, possibly
	// before Deliver returns, when d's outcome is known: nil when the
	// destination accepted d, an error wrapping *PermanentError when it
	// never will, any other error (ideally *RetryableError) when it may
	// later. Deliver is safe for concurrent use. After Close it calls done
	// with ErrClosed.
	Deliver(ctx context.Context, d Delivery, done func(error))
	// Close stops accepting, flushes what is queued and waits, until ctx
	// ends, for the outcome of everything handed over; what has none by
	// then gets done(ErrClosed). It is idempotent.
	Close(ctx context.Context) error
}

// Delivery is one event handed to a Sink.
type Delivery struct {
	// Message is the decoded event; Sinks must not modify it.
	Message *spec.Message
	// Raw is the event's JSON exactly as stored, compacted to one line.
	Raw json.RawMessage
	// Subject and Sequence say where the event is on CHATTAP_EVENTS.
	Subject  string
	Sequence uint64
	// Attempt counts deliveries of this event to this sink, from 1.
	Attempt int
	// Isolation is 0 for an event that never failed; a sink that batches
	// sends the event in a request of at most max(1, BatchSize >> Isolation)
	// events (see isolationCap), so that an event the destination always
	// refuses ends up alone and the others are delivered.
	Isolation int
}

// ID is the event's messageId.
func (d Delivery) ID() string {
	if d.Message == nil {
		return ""
	}
	return d.Message.MessageID
}

// NewDelivery decodes the stored event data into a Delivery. Data that is
// not a valid Segment message, or is larger than spec.MaxMessageBytes, is
// a permanent error: no destination would ever take it.
func NewDelivery(subject string, seq uint64, attempt int, data []byte) (Delivery, error) {
	d := Delivery{Subject: subject, Sequence: seq, Attempt: attempt}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return d, Permanent(fmt.Errorf("%w: not JSON: %v", spec.ErrInvalidMessage, err))
	}
	d.Raw = compact.Bytes()
	if len(d.Raw) > spec.MaxMessageBytes {
		return d, Permanent(fmt.Errorf("%w: %d bytes, over Segment's limit of %d", ErrMessageTooBig, len(d.Raw), spec.MaxMessageBytes))
	}
	dec := json.NewDecoder(bytes.NewReader(d.Raw))
	// Numbers stay as written: an id of 2^60 must not come out as a float.
	dec.UseNumber()
	var m spec.Message
	if err := dec.Decode(&m); err != nil {
		return d, Permanent(fmt.Errorf("%w: %v", spec.ErrInvalidMessage, err))
	}
	d.Message = &m
	if err := m.Validate(); err != nil {
		return d, Permanent(err)
	}
	return d, nil
}
