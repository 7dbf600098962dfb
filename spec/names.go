package spec

import "strings"

// Streams, subjects, consumers and buckets. They are part of the external
// contract: other processes in an analytics stack subscribe to them.
const (
	StreamRaw    = "CHATTAP_RAW"
	StreamEvents = "CHATTAP_EVENTS"
	StreamDLQ    = "CHATTAP_DLQ"

	SubjectRawPrefix    = "chattap.raw."
	SubjectEventsPrefix = "chattap.events."
	SubjectDLQPrefix    = "chattap.dlq."

	// ConsumerMapper is the durable consumer on StreamRaw that mapper
	// replicas shared before CHATTAP_RAW was partitioned. A mapper that
	// finds it starts its partition consumers where it had got to; it is
	// not read any more.
	ConsumerMapper = "mapper"
	// ConsumerMapperLegacy is the durable consumer of the version 1
	// Observations stored before partitioning (RawLegacyFilters).
	ConsumerMapperLegacy = "mapper-legacy"
	// MapperPriorityGroup is the priority group every mapper consumer
	// pins one replica to.
	MapperPriorityGroup = "mapper"

	BucketConversations = "chattap_conversations"
	BucketSettings      = "chattap_settings"
)

// ConsumerMapperPartition is the durable consumer of partition p of
// StreamRaw (RawPartitionFilter(p)): mapper-00 … mapper-15.
func ConsumerMapperPartition(p int) string {
	return "mapper-" + string(rune('0'+p/10)) + string(rune('0'+p%10))
}

// HeaderRecord is set on every message the mapper publishes to
// StreamEvents: the id of the CHATTAP_RAW record it was mapped from (the
// exchange id of a version 2 record, the Observation id of a version 1
// one), so a reader such as the debugger can show each record beside the
// events it became. It is a NATS header, never part of the Segment message.
const HeaderRecord = "Chattap-Record"

// Headers that chattap sets on the messages it publishes to the DLQ.
const (
	HeaderDLQReason   = "Chattap-Dlq-Reason"
	HeaderDLQSink     = "Chattap-Dlq-Sink"
	HeaderDLQAttempts = "Chattap-Dlq-Attempts"
	HeaderDLQTime     = "Chattap-Dlq-Time"
	// HeaderDLQSubject and HeaderDLQSequence name where the original was on
	// StreamEvents, so that a replay can find it again.
	HeaderDLQSubject  = "Chattap-Dlq-Subject"
	HeaderDLQSequence = "Chattap-Dlq-Sequence"
)

// RawSubject is the subject an Observation of source and kind is published
// on: chattap.raw.<source>.<kind>. Source is one of the Source constants;
// kind comes from the wire, and each of its dot-separated parts
// ("chat_session.start") is reduced to a safe subject token.
func RawSubject(source Source, kind string) string {
	if strings.IndexByte(kind, '.') < 0 {
		return SubjectRawPrefix + string(source) + "." + SubjectToken(kind)
	}
	subject := SubjectRawPrefix + string(source) + "."
	for {
		part, rest, more := strings.Cut(kind, ".")
		subject += SubjectToken(part)
		if !more {
			return subject
		}
		subject += "."
		kind = rest
	}
}

// EventSubject is the subject a Segment message is published on:
// chattap.events.<slug>, where slug is the snake_case event name for a
// track ("live_chat_message_sent") and the type for anything else
// ("identify").
func EventSubject(m *Message) string {
	if m.Type == TypeTrack && m.Event != "" {
		return SubjectEventsPrefix + Slug(m.Event)
	}
	return SubjectEventsPrefix + SubjectToken(m.Type)
}

// DLQSubject is the subject a dead-lettered message of sink is published on.
func DLQSubject(sink string) string { return SubjectDLQPrefix + SubjectToken(sink) }

// Slug turns an event name into its subject token: lower case, runs of
// anything but letters and digits folded to one underscore.
func Slug(name string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if under && b.Len() > 0 {
				b.WriteByte('_')
			}
			under = false
			b.WriteRune(r)
			continue
		}
		under = true
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// maxTokenLen bounds a subject token taken from the wire.
const maxTokenLen = 64

// SubjectToken makes s safe as one NATS subject token: letters, digits, '_'
// and '-' are kept, anything else (dots, wildcards, spaces) becomes '_',
// the result is at most 64 bytes, and an empty s becomes "unknown".
func SubjectToken(s string) string {
	if s == "" {
		return "unknown"
	}
	if len(s) > maxTokenLen {
		s = s[:maxTokenLen]
	}
	safe := true
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	b := []byte(s)
	for i := range b {
		if !tokenByte(b[i]) {
			b[i] = '_'
		}
	}
	return string(b)
}

func tokenByte(c byte) bool {
	return c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
