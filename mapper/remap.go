package mapper

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RemapRange selects the records on CHATTAP_RAW whose events a remap
// publishes: by when they were stored (Since, or From and To), by stream
// sequence (FromSeq and ToSeq), by Conversation, or by a range and a
// conversation together. At least one of Since, From, FromSeq and
// Conversation is set, and at most one of the first three.
type RemapRange struct {
	// Since selects the records stored in this last stretch of time.
	Since time.Duration
	// From and To select the records stored between them, both included
	// (a zero To: up to now).
	From, To time.Time
	// FromSeq and ToSeq select stream sequences, both included (a zero
	// ToSeq: to the end).
	FromSeq, ToSeq uint64
	// Conversation narrows to the records of this conversation; alone, it
	// selects all of them.
	Conversation string
}

// Validate says whether r selects something, and unambiguously.
func (r RemapRange) Validate() error {
	n := 0
	for _, set := range []bool{r.Since > 0, !r.From.IsZero(), r.FromSeq > 0} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return errors.New("remap: choose one of since, from a time, or from a sequence")
	case n == 0 && r.Conversation == "":
		return errors.New("remap: say what to map again: since, from a time, from a sequence, or a conversation")
	case r.Since < 0:
		return errors.New("remap: since must be positive")
	case !r.To.IsZero() && r.From.IsZero():
		return errors.New("remap: to needs from")
	case r.ToSeq > 0 && r.FromSeq == 0:
		return errors.New("remap: to-seq needs from-seq")
	case r.ToSeq > 0 && r.ToSeq < r.FromSeq:
		return errors.New("remap: to-seq is before from-seq")
	case !r.To.IsZero() && r.To.Before(r.From):
		return errors.New("remap: to is before from")
	}
	return nil
}

// RemapOptions tune Remap.
type RemapOptions struct {
	// DryRun publishes nothing: RemapResult.Events are what would be.
	DryRun bool
	// Now is the clock Since counts back from; nil: time.Now.
	Now func() time.Time
	// ClockSkew widens the look for events already on CHATTAP_EVENTS
	// before the first record of the conversations mapped, for stream
	// leaders on different machines whose clocks differ (default 1m).
	ClockSkew time.Duration
}

// RemapResult says what a remap did. Events are the events that were new
// to CHATTAP_EVENTS, as published (in a dry run: as they would be), in
// the order of their records.
type RemapResult struct {
	// RecordsInRange were selected; RecordsRead were read to map the
	// conversations they belong to from their first record on.
	RecordsInRange int `json:"records_in_range"`
	RecordsRead    int `json:"records_read"`
	// Conversations were found with records to map.
	Conversations int `json:"conversations"`
	// Unmappable Observations of the selected records yield nothing.
	Unmappable int `json:"unmappable"`
	// Produced events came of the selected records; AlreadyOnEvents of
	// them were found on CHATTAP_EVENTS (among EventsScanned) and are not
	// published again; Published were stored now (0 in a dry run), and
	// Duplicates were dropped by CHATTAP_EVENTS itself, the live mapper
	// having published them meanwhile.
	Produced        int `json:"events_produced"`
	EventsScanned   int `json:"events_scanned"`
	AlreadyOnEvents int `json:"already_on_events"`
	Published       int `json:"published"`
	Duplicates      int `json:"duplicates,omitempty"`
	// LeftToLiveMapper records of the range were not selected: the live
	// mapper has not mapped them yet, and will, with today's settings.
	LeftToLiveMapper int               `json:"left_to_live_mapper,omitempty"`
	DryRun           bool              `json:"dry_run,omitempty"`
	Events           []json.RawMessage `json:"-"`
}

// remapped is one event a selected record yields.
type remapped struct {
	msg    spec.Message
	data   []byte
	record string
}

// Remap maps the records r selects on CHATTAP_RAW again, with m and set
// (today's options and settings), and publishes to CHATTAP_EVENTS the
// events they yield that CHATTAP_EVENTS does not hold yet. An event the
// live mapper already published keeps its messageId, so it is found and
// skipped; one it never made (recording was off, the event was disabled,
// the mapping has been fixed since) is published, with its messageId as
// Nats-Msg-Id, and reaches every sink like a live one.
//
// A conversation's events depend on everything before them, so each
// conversation the range touches is mapped from its own first record on
// CHATTAP_RAW, in stream order, on a State that starts empty and lives
// only in this call; only the events of selected records are published.
// Records the live mapper has not acked yet are not selected: it maps
// them itself, with the same settings.
//
// Remap never reads or writes the chattap_conversations bucket, and
// takes no handle to it: the live mapper's State of a conversation is its
// record of what it has applied and emitted, and it writes it with
// compare-and-set. A remapped State written there would make the live
// mapper skip records it never mapped or lose its writes to conflicts, and
// a live conversation's next events would then follow history that was
// never delivered live. It reads the streams through ephemeral ordered
// consumers, so no durable consumer (the mapper's, the sinks') moves.
//
// Cost: it reads CHATTAP_RAW from its first record to the end of the range
// (a conversation's first record may be anywhere in the retention), once
// more when a selected conversation's contact has others (see
// mapSelection), and the headers of every event on CHATTAP_EVENTS stored
// since the first record of the conversations mapped. It holds the
// selected records' events in memory, and the conversations' States and
// contacts while it reads.
func Remap(ctx context.Context, js jetstream.JetStream, m *Mapper, set spec.Settings, r RemapRange, o RemapOptions) (RemapResult, error) {
	res := RemapResult{DryRun: o.DryRun}
	if err := r.Validate(); err != nil {
		return res, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClockSkew <= 0 {
		o.ClockSkew = time.Minute
	}
	if r.Since > 0 {
		r.From = o.Now().Add(-r.Since)
	}
	raw, err := streamBounds(ctx, js, spec.StreamRaw)
	if err != nil || raw.Msgs == 0 {
		return res, err
	}
	sel := selection{r: r, last: raw.LastSeq}
	if r.ToSeq > 0 {
		sel.last = min(sel.last, r.ToSeq)
	}
	if sel.live, err = readLiveMapper(ctx, js); err != nil {
		return res, err
	}
	if err := sel.resolve(ctx, js, &res); err != nil {
		return res, err
	}
	if len(sel.conversations) == 0 && !sel.anonymous {
		return res, nil
	}
	h, err := mapSelection(ctx, js, m, set, &sel, raw.FirstSeq, &res)
	if err != nil {
		return res, err
	}
	produced, earliest := h.events, h.earliest
	res.Produced = len(produced)
	if len(produced) == 0 {
		return res, nil
	}
	fresh, err := notOnEvents(ctx, js, produced, earliest.Add(-o.ClockSkew), &res)
	if err != nil {
		return res, err
	}
	for _, e := range fresh {
		res.Events = append(res.Events, e.data)
	}
	if o.DryRun {
		return res, nil
	}
	return res, publishRemapped(ctx, js, fresh, &res)
}

// selection is what a range selects: the records, and the conversations
// they belong to.
type selection struct {
	r RemapRange
	// last is the last sequence that can be selected: the range's end, or
	// the stream's last when the remap began.
	last uint64
	// conversations are those with a selected record; anonymous says a
	// selected record has an Observation that names none.
	conversations map[string]bool
	anonymous     bool
	live          liveMapper
}

// inRange reports whether the record at md is in the range (its
// Observations may still belong to another conversation than asked for).
func (s *selection) inRange(md *jetstream.MsgMetadata) bool {
	seq, ts := md.Sequence.Stream, md.Timestamp
	return seq <= s.last && seq >= s.r.FromSeq &&
		(s.r.From.IsZero() || !ts.Before(s.r.From)) &&
		(s.r.To.IsZero() || !ts.After(s.r.To))
}

// selects reports whether the record is in the range and the live mapper
// is past it.
func (s *selection) selects(msg jetstream.Msg, md *jetstream.MsgMetadata) bool {
	return s.inRange(md) && s.live.past(msg.Subject(), md.Sequence.Stream)
}

// resolve finds the conversations of the selected records. A range with a
// conversation needs no reading: it is the only one.
func (s *selection) resolve(ctx context.Context, js jetstream.JetStream, res *RemapResult) error {
	s.conversations = map[string]bool{}
	if s.r.Conversation != "" {
		s.conversations[s.r.Conversation] = true
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case !s.r.From.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &s.r.From
	case s.r.FromSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, s.r.FromSeq
	}
	return readStream(ctx, js, spec.StreamRaw, cfg, s.last, func(msg jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		if !s.r.To.IsZero() && md.Timestamp.After(s.r.To) {
			return false, nil
		}
		if !s.inRange(md) {
			return true, nil
		}
		if !s.selects(msg, md) {
			res.LeftToLiveMapper++
			return true, nil
		}
		_, obs, err := recordObservations(msg.Data())
		if err != nil {
			return true, nil
		}
		for _, o := range obs {
			if o.ConversationID == "" {
				s.anonymous = true
			} else {
				s.conversations[o.ConversationID] = true
			}
		}
		return true, nil
	})
}

// history is what mapHistory found.
type history struct {
	// events are those of the selected records, in order; earliest is
	// when the first record mapped was stored.
	events   []remapped
	earliest time.Time
	// contacts are the contact keys of the conversations mapped; others
	// those of the conversations not mapped, when asked for.
	contacts map[string]string
	others   map[string]string
}

// mapHistory maps every record of the conversations in maps from the
// first record on CHATTAP_RAW to the end of the range, in stream order,
// each conversation on its own in-memory State and each contact on its
// own in-memory Contact, and keeps the events of the selected records of
// the selected conversations. With others set, it also finds the contact
// key of every conversation it does not map.
func mapHistory(ctx context.Context, js jetstream.JetStream, m *Mapper, set spec.Settings, s *selection, maps map[string]bool, others bool, first uint64, res *RemapResult) (history, error) {
	var (
		h        = history{contacts: map[string]string{}}
		states   = make(map[string]State, len(maps))
		seenIDs  = map[string]bool{}
		found    = map[string]bool{}
		contacts = remapContacts{known: map[string]Contact{}}
	)
	if others {
		h.others = map[string]string{}
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first}
	err := readStream(ctx, js, spec.StreamRaw, cfg, s.last, func(msg jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		if !s.r.To.IsZero() && md.Timestamp.After(s.r.To) {
			return false, nil
		}
		record, obs, err := recordObservations(msg.Data())
		if err != nil {
			// The live mapper acks such a record and maps nothing of it.
			if s.selects(msg, md) && s.r.Conversation == "" {
				res.RecordsInRange++
				res.Unmappable++
			}
			return true, nil
		}
		selected, read, counted := s.selects(msg, md), false, false
		// Counted here only for a conversation, whose range resolve does
		// not read.
		waiting := !selected && s.inRange(md) && s.r.Conversation != ""
		for _, o := range obs {
			cid := o.ConversationID
			mine := cid != "" && maps[cid]
			wanted := cid != "" && s.conversations[cid]
			// An Observation naming no conversation is mapped on the zero
			// State, as the live mapper does, and only when selected.
			loose := cid == "" && s.anonymous && selected
			if !mine && !loose {
				if others && cid != "" && h.others[cid] == "" {
					h.others[cid] = m.ContactKey(o, State{})
				}
				continue
			}
			if wanted && !found[cid] {
				found[cid] = true
				res.Conversations++
			}
			if !read {
				read = true
				res.RecordsRead++
				if h.earliest.IsZero() {
					h.earliest = md.Timestamp
				}
			}
			if (wanted || loose) && !counted {
				counted = true
				if selected {
					res.RecordsInRange++
				}
				if waiting {
					res.LeftToLiveMapper++
				}
			}
			msgs, next, err := contacts.apply(m, o, states[cid], set)
			var data [][]byte
			if err == nil {
				data, err = encodeMessages(msgs)
			}
			if err != nil {
				// Its State is not kept, as the live mapper keeps none.
				if selected && (wanted || loose) && errors.Is(err, ErrUnmappable) {
					res.Unmappable++
				}
				continue
			}
			contacts.keep()
			if cid != "" {
				states[cid] = next
			}
			if !selected || (!wanted && !loose) {
				continue
			}
			for i := range msgs {
				if seenIDs[msgs[i].MessageID] {
					continue
				}
				seenIDs[msgs[i].MessageID] = true
				h.events = append(h.events, remapped{msg: msgs[i], data: data[i], record: record})
			}
		}
		return true, nil
	})
	for cid, st := range states {
		if st.AnonymousID != "" {
			h.contacts[cid] = st.AnonymousID
		}
	}
	return h, err
}

// mapSelection maps the selected conversations, and maps them again
// together with the other conversations of their contacts if they have
// any: a contact's Contact says what its earlier conversations announced,
// so an identify is sent only for news, as the live mapper sends it.
// Usually no other conversation shares a contact, and one read of
// CHATTAP_RAW does.
func mapSelection(ctx context.Context, js jetstream.JetStream, m *Mapper, set spec.Settings, s *selection, first uint64, res *RemapResult) (history, error) {
	base := *res
	h, err := mapHistory(ctx, js, m, set, s, s.conversations, true, first, res)
	if err != nil {
		return h, err
	}
	keys := map[string]bool{}
	for _, k := range h.contacts {
		keys[k] = true
	}
	wide := maps.Clone(s.conversations)
	for cid, k := range h.others {
		if k != "" && keys[k] {
			wide[cid] = true
		}
	}
	if len(wide) == len(s.conversations) {
		return h, nil
	}
	*res = base
	return mapHistory(ctx, js, m, set, s, wide, false, first, res)
}

// remapContacts keeps each contact's Contact across the conversations a
// remap maps, in memory, as the live mapper keeps it in the bucket
// (contactBatch), so that two of them announce a contact's news once.
type remapContacts struct {
	known map[string]Contact
	// pending is the Contact the last apply made, kept once its messages
	// are known to be good.
	pendingKey string
	pending    Contact
}

// apply is contactBatch.apply without the bucket.
func (c *remapContacts) apply(m *Mapper, o *spec.Observation, st State, set spec.Settings) ([]spec.Message, State, error) {
	c.pendingKey = ""
	if !set.RecordLiveChatEvents || o.ConversationID == "" {
		return m.Map(o, st, set)
	}
	key := m.ContactKey(o, st)
	if key == "" {
		return m.Map(o, st, set)
	}
	out, next, nextCt, changed, err := m.MapContact(o, st, c.known[key], set)
	if err == nil && changed {
		c.pendingKey, c.pending = key, nextCt
	}
	return out, next, err
}

func (c *remapContacts) keep() {
	if c.pendingKey != "" {
		c.known[c.pendingKey] = c.pending
	}
}

// notOnEvents returns those of produced whose messageId no event on
// CHATTAP_EVENTS stored since from carries as its Nats-Msg-Id. It reads
// only the headers of those events, and keeps in memory only the ids it
// looks for.
//
// Publishing with Nats-Msg-Id alone would not do: the stream drops a
// repeated id only within its duplicate window (minutes), so without this
// a second remap would publish everything again. The live mapper
// publishes an event only after its record was stored, and after the
// conversation's first record, so nothing older than from can hold one.
func notOnEvents(ctx context.Context, js jetstream.JetStream, produced []remapped, from time.Time, res *RemapResult) ([]remapped, error) {
	want := make(map[string]bool, len(produced))
	for _, p := range produced {
		want[p.msg.MessageID] = false
	}
	ev, err := streamBounds(ctx, js, spec.StreamEvents)
	if err != nil {
		return nil, err
	}
	if ev.Msgs > 0 && !ev.LastTime.Before(from) {
		cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from, HeadersOnly: true}
		err = readStream(ctx, js, spec.StreamEvents, cfg, ev.LastSeq, func(msg jetstream.Msg, _ *jetstream.MsgMetadata) (bool, error) {
			res.EventsScanned++
			if _, ok := want[msg.Headers().Get(jetstream.MsgIDHeader)]; ok {
				want[msg.Headers().Get(jetstream.MsgIDHeader)] = true
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	fresh := make([]remapped, 0, len(produced))
	for _, p := range produced {
		if want[p.msg.MessageID] {
			res.AlreadyOnEvents++
			continue
		}
		fresh = append(fresh, p)
	}
	return fresh, nil
}

// publishWindow bounds the remapped events awaiting JetStream's ack.
const publishWindow = 256

// publishRemapped stores events on CHATTAP_EVENTS in order, as the live
// mapper does: on the event's subject, with its messageId as Nats-Msg-Id
// and its record in Chattap-Record.
func publishRemapped(ctx context.Context, js jetstream.JetStream, events []remapped, res *RemapResult) error {
	for len(events) > 0 {
		chunk := events[:min(len(events), publishWindow)]
		events = events[len(chunk):]
		futures := make([]jetstream.PubAckFuture, 0, len(chunk))
		for i := range chunk {
			e := &chunk[i]
			msg := &nats.Msg{Subject: spec.EventSubject(&e.msg), Data: e.data, Header: nats.Header{}}
			msg.Header.Set(jetstream.MsgIDHeader, e.msg.MessageID)
			msg.Header.Set(spec.HeaderRecord, e.record)
			f, err := js.PublishMsgAsync(msg)
			if err != nil {
				return fmt.Errorf("publish %s: %w", e.msg.MessageID, err)
			}
			futures = append(futures, f)
		}
		for i, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					res.Duplicates++
				} else {
					res.Published++
				}
			case err := <-f.Err():
				return fmt.Errorf("publish %s: %w", chunk[i].msg.MessageID, err)
			case <-ctx.Done():
				return fmt.Errorf("publish %s: %w", chunk[i].msg.MessageID, ctx.Err())
			}
		}
	}
	return nil
}

// bounds is what a stream holds when a remap begins.
type bounds struct {
	Msgs, FirstSeq, LastSeq uint64
	LastTime                time.Time
}

func streamBounds(ctx context.Context, js jetstream.JetStream, name string) (bounds, error) {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return bounds{}, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return bounds{}, fmt.Errorf("stream %s: %w", name, err)
	}
	s := info.State
	return bounds{Msgs: s.Msgs, FirstSeq: s.FirstSeq, LastSeq: s.LastSeq, LastTime: s.LastTime}, nil
}

// recordObservations reads one stored CHATTAP_RAW message, of either
// version, into the id of its record and the Observations the mapper maps,
// with spec.ReadRaw as the live mapper does, so both give them the same
// ids and so the same messageIds.
func recordObservations(data []byte) (string, []*spec.Observation, error) {
	obs, err := spec.ReadRaw(data)
	if err != nil {
		return "", nil, err
	}
	out := make([]*spec.Observation, len(obs))
	for i := range obs {
		out[i] = &obs[i]
	}
	return cmp.Or(obs[0].Record, obs[0].ID), out, nil
}
