package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// DLQEntry is one dead letter, as ListDLQ prints it (one JSON object per
// line).
type DLQEntry struct {
	// Sequence is the entry's own sequence on CHATTAP_DLQ: what
	// DLQFilter.Sequences selects.
	Sequence uint64    `json:"seq"`
	Sink     string    `json:"sink"`
	Reason   string    `json:"reason"`
	Attempts int       `json:"attempts"`
	Time     time.Time `json:"time"`
	// ID is the event's messageId.
	ID    string `json:"id"`
	Type  string `json:"type,omitempty"`
	Event string `json:"event,omitempty"`
	// Subject and EventSequence say where the event was on CHATTAP_EVENTS.
	Subject       string          `json:"subject"`
	EventSequence uint64          `json:"event_seq"`
	Message       json.RawMessage `json:"message"`
}

// DLQFilter selects dead letters. Its fields narrow the selection; a
// zero filter selects every entry.
type DLQFilter struct {
	// Sink keeps the entries of this sink only.
	Sink string
	// Sequences keeps these CHATTAP_DLQ sequences only.
	Sequences []uint64
	// IDs keeps the entries of these messageIds only.
	IDs []string
	// All must be set for ReplayDLQ and DropDLQ to act on everything
	// Sink selects, so that a forgotten --id never drops the whole DLQ.
	All bool
}

func (f DLQFilter) narrowed() bool { return len(f.Sequences) > 0 || len(f.IDs) > 0 }

func (f DLQFilter) matches(e DLQEntry) bool {
	if f.Sink != "" && e.Sink != f.Sink {
		return false
	}
	if len(f.Sequences) > 0 && !slices.Contains(f.Sequences, e.Sequence) {
		return false
	}
	if len(f.IDs) > 0 && !slices.Contains(f.IDs, e.ID) {
		return false
	}
	return true
}

// ErrNoSelection is returned by ReplayDLQ and DropDLQ for a filter with
// neither sequences, ids nor All.
var ErrNoSelection = errors.New("say which dead letters: by sequence, by id, or all")

func dlqEntry(msg jetstream.Msg) DLQEntry {
	h := msg.Headers()
	e := DLQEntry{
		Sink:    h.Get(spec.HeaderDLQSink),
		Reason:  h.Get(spec.HeaderDLQReason),
		Subject: h.Get(spec.HeaderDLQSubject),
		ID:      h.Get(HeaderDLQMessageID),
		Message: json.RawMessage(msg.Data()),
	}
	if md, err := msg.Metadata(); err == nil {
		e.Sequence = md.Sequence.Stream
	}
	e.Attempts, _ = strconv.Atoi(h.Get(spec.HeaderDLQAttempts))
	e.EventSequence, _ = strconv.ParseUint(h.Get(spec.HeaderDLQSequence), 10, 64)
	e.Time, _ = time.Parse(time.RFC3339Nano, h.Get(spec.HeaderDLQTime))
	var head struct {
		Type      string `json:"type"`
		Event     string `json:"event"`
		MessageID string `json:"messageId"`
	}
	if json.Unmarshal(msg.Data(), &head) == nil {
		e.Type, e.Event = head.Type, head.Event
		if e.ID == "" {
			e.ID = head.MessageID
		}
	}
	if e.Sink == "" {
		e.Sink = msg.Subject()[len(spec.SubjectDLQPrefix):]
	}
	if !json.Valid(e.Message) {
		e.Message, _ = json.Marshal(string(msg.Data()))
	}
	return e
}

// ScanDLQ calls fn with every dead letter f selects, oldest first. It only
// reads; it does not block past what is stored.
func ScanDLQ(ctx context.Context, js jetstream.JetStream, f DLQFilter, fn func(DLQEntry) error) error {
	subject := spec.SubjectDLQPrefix + ">"
	if f.Sink != "" {
		subject = spec.DLQSubject(f.Sink)
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if len(f.Sequences) > 0 && len(f.IDs) == 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, slices.Min(f.Sequences)
	}
	return scan(ctx, js, spec.StreamDLQ, subject, cfg, func(msg jetstream.Msg) (bool, error) {
		if e := dlqEntry(msg); f.matches(e) {
			return true, fn(e)
		}
		return true, nil
	})
}

// ListDLQ writes every dead letter f selects to w as JSON lines (see
// DLQEntry) and returns how many.
func ListDLQ(ctx context.Context, js jetstream.JetStream, f DLQFilter, w io.Writer) (int, error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n := 0
	err := ScanDLQ(ctx, js, f, func(e DLQEntry) error {
		n++
		return enc.Encode(e)
	})
	return n, err
}

// DropDLQ deletes the dead letters f selects (f must name sequences or
// ids, or say All) and returns how many it deleted.
func DropDLQ(ctx context.Context, js jetstream.JetStream, f DLQFilter) (int, error) {
	if !f.narrowed() && !f.All {
		return 0, ErrNoSelection
	}
	var seqs []uint64
	if err := ScanDLQ(ctx, js, f, func(e DLQEntry) error { seqs = append(seqs, e.Sequence); return nil }); err != nil {
		return 0, err
	}
	st, err := js.Stream(ctx, spec.StreamDLQ)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", spec.StreamDLQ, err)
	}
	for i, seq := range seqs {
		if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return i, fmt.Errorf("drop dead letter %d: %w", seq, err)
		}
	}
	return len(seqs), nil
}

// ReplayDLQ delivers the dead letters f selects (f must name sequences or
// ids, or say All) straight through the sink of each entry's name, among
// sinks, and waits for the outcomes. A delivered entry is deleted from the
// DLQ; one that fails again stays, and is counted and described in the
// result. Entries of a sink not among sinks are skipped. The sinks stay
// open: the caller closes them.
func ReplayDLQ(ctx context.Context, js jetstream.JetStream, sinks []Sink, f DLQFilter, o ReplayOptions) (ReplayResult, error) {
	var res ReplayResult
	if !f.narrowed() && !f.All {
		return res, ErrNoSelection
	}
	o = o.withDefaults()
	byName := map[string]Sink{}
	for _, s := range sinks {
		byName[s.Name()] = s
	}
	var entries []DLQEntry
	if err := ScanDLQ(ctx, js, f, func(e DLQEntry) error { entries = append(entries, e); return nil }); err != nil {
		return res, err
	}
	st, err := js.Stream(ctx, spec.StreamDLQ)
	if err != nil {
		return res, fmt.Errorf("stream %s: %w", spec.StreamDLQ, err)
	}
	for name, group := range groupBySink(entries) {
		s := byName[name]
		if s == nil {
			res.Skipped += len(group)
			for _, e := range group {
				res.fail(e.Sequence, e.ID, name, fmt.Errorf("sink %q is not configured here", name))
			}
			continue
		}
		ds := make([]Delivery, 0, len(group))
		keep := group[:0:0]
		for _, e := range group {
			d, err := NewDelivery(e.Subject, e.EventSequence, e.Attempts+1, e.Message)
			if err != nil {
				res.Failed++
				res.fail(e.Sequence, e.ID, name, err)
				continue
			}
			ds, keep = append(ds, d), append(keep, e)
		}
		for i, err := range deliverAll(ctx, s, ds, o) {
			if err != nil {
				res.Failed++
				res.fail(keep[i].Sequence, keep[i].ID, name, err)
				continue
			}
			res.Delivered++
			if err := st.DeleteMsg(ctx, keep[i].Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				return res, fmt.Errorf("remove replayed dead letter %d: %w", keep[i].Sequence, err)
			}
		}
	}
	return res, ctx.Err()
}

func groupBySink(entries []DLQEntry) map[string][]DLQEntry {
	g := map[string][]DLQEntry{}
	for _, e := range entries {
		g[e.Sink] = append(g[e.Sink], e)
	}
	return g
}
