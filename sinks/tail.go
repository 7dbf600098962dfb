package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// TailOptions say what Tail reads, where it starts and whether it waits.
type TailOptions struct {
	// Raw reads the recorded exchanges on CHATTAP_RAW instead of the
	// events on CHATTAP_EVENTS; a Subject under chattap.raw. implies it.
	Raw bool
	// Subject narrows to one subject or wildcard (chattap.events.identify,
	// chattap.raw.addon.>); empty: the whole stream.
	Subject string
	// Conversation keeps only the messages of this conversation: records
	// whose conversation_id, and events whose properties.conversation_id,
	// is this one.
	Conversation string
	// Since starts this far back; zero with All unset: only new messages
	// when following, every stored one when not.
	Since time.Duration
	// All starts from the first message stored.
	All bool
	// Follow waits for new messages until ctx ends; otherwise Tail
	// returns once it has written what was stored when it began.
	Follow bool
}

func (o TailOptions) stream() (name, subject string) {
	name, subject = spec.StreamEvents, spec.SubjectEventsPrefix+">"
	if o.Raw || strings.HasPrefix(o.Subject, spec.SubjectRawPrefix) {
		name, subject = spec.StreamRaw, spec.SubjectRawPrefix+">"
	}
	if o.Subject != "" {
		subject = o.Subject
	}
	return name, subject
}

// Tail writes messages of CHATTAP_EVENTS (or CHATTAP_RAW) to w, each
// message's JSON as stored, one compact line each, and returns how many it
// wrote. Following, it returns nil when ctx ends. It reads through an
// ephemeral ordered consumer, acks nothing and disturbs no sink or mapper.
func Tail(ctx context.Context, js jetstream.JetStream, w io.Writer, o TailOptions) (int, error) {
	stream, subject := o.stream()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy}
	switch {
	case o.All, o.Since == 0 && !o.Follow:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case o.Since > 0:
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, ptr(time.Now().Add(-o.Since))
	}
	n := 0
	write := func(msg jetstream.Msg) (bool, error) {
		if o.Conversation != "" && conversationOf(msg.Data()) != o.Conversation {
			return true, nil
		}
		if _, err := w.Write(compactLine(msg.Data())); err != nil {
			return false, fmt.Errorf("tail: %w", err)
		}
		n++
		return true, nil
	}
	if !o.Follow {
		err := scan(ctx, js, stream, subject, cfg, write)
		return n, err
	}
	c, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return 0, fmt.Errorf("tail: %w", err)
	}
	it, err := c.Messages()
	if err != nil {
		return 0, fmt.Errorf("tail: %w", err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return n, nil
			}
			return n, fmt.Errorf("tail: %w", err)
		}
		if _, err := write(msg); err != nil {
			return n, err
		}
	}
}

// conversationOf reads the conversation a record (conversation_id) or a
// Segment message (properties.conversation_id) belongs to, whatever the
// record's version.
func conversationOf(data []byte) string {
	var probe struct {
		ConversationID string `json:"conversation_id"`
		Properties     struct {
			ConversationID string `json:"conversation_id"`
		} `json:"properties"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return ""
	}
	if probe.ConversationID != "" {
		return probe.ConversationID
	}
	return probe.Properties.ConversationID
}

// compactLine is data as one JSON line; data that is not JSON is written as
// a JSON string, so every line still parses.
func compactLine(data []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, data) == nil {
		buf.WriteByte('\n')
		return buf.Bytes()
	}
	b, _ := json.Marshal(string(data))
	return append(b, '\n')
}
