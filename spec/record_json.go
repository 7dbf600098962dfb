package spec

import (
	"strconv"
	"time"
)

// AppendJSON appends r as JSON to dst, each event's Payload byte for byte
// (it must be valid JSON; decoders only set it when it is), like
// Observation.AppendJSON. It allocates nothing beyond dst.
func (r *Record) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(r.V), 10)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, r.ID)
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, string(r.Source))
	dst = append(dst, `,"kind":`...)
	dst = appendString(dst, r.Kind)
	dst = append(dst, `,"received_at":"`...)
	dst = r.ReceivedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	if r.ConversationID != "" {
		dst = append(dst, `,"conversation_id":`...)
		dst = appendString(dst, r.ConversationID)
	}
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(r.Partition), 10)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, `,"events":[`...)
	for i := range r.Events {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = r.Events[i].AppendJSON(dst)
	}
	return append(dst, "]}"...)
}

// AppendJSON appends e as JSON to dst, as Record.AppendJSON writes it
// inside the record's events: a record's length is its length without
// events, plus each event's, plus a comma between two.
func (e *RecordEvent) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"source":`...)
	dst = appendString(dst, string(e.Source))
	dst = append(dst, `,"kind":`...)
	dst = appendString(dst, e.Kind)
	if e.ConversationID != "" {
		dst = append(dst, `,"conversation_id":`...)
		dst = appendString(dst, e.ConversationID)
	}
	if e.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, e.Error)
	}
	if len(e.Payload) > 0 {
		dst = append(dst, `,"payload":`...)
		dst = append(dst, e.Payload...)
	}
	if len(e.PayloadRaw) > 0 {
		dst = append(dst, `,"payload_raw":"`...)
		dst = appendBase64(dst, e.PayloadRaw)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// Size estimates the length of r's JSON, for sizing the buffer it is
// appended to.
func (r *Record) Size() int {
	n := 256 + len(r.ID) + len(r.ConversationID)
	for i := range r.Events {
		e := &r.Events[i]
		n += 96 + len(e.Kind) + len(e.ConversationID) + 6*len(e.Error) + len(e.Payload) + (len(e.PayloadRaw)+2)/3*4
	}
	return n
}
