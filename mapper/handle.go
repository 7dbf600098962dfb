package mapper

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxConflicts bounds how often one conversation's Observations are
// mapped again after losing a compare-and-set race before they are naked
// and tried later.
const maxConflicts = 16

// Retry delays: the first retry soon, then doubling up to a ceiling that
// still lets a broken CHATTAP_EVENTS recover without a flood of retries.
const (
	retryBase = 250 * time.Millisecond
	retryMax  = 30 * time.Second
)

// task is one Observation of a batch and what became of it.
type task struct {
	job
	// out and data are the messages it yields and their JSON.
	out  []spec.Message
	data [][]byte
	// result is the metrics result when it is acked.
	result string
	// err is set when this Observation alone failed: unmappable (acked)
	// or anything else (naked).
	err error
}

// ordered reports whether the task's stream sequence orders it among its
// conversation's records: those of a partition are applied in stream
// order; the legacy subjects' are not, nor an event of a record filed
// under another conversation's partition (a reply that names another
// conversation). The Observations of one record share its sequence.
func (t *task) ordered() bool {
	return t.lane != nil && t.lane.partition >= 0 && t.seq > 0 && spec.Partition(t.obs.ConversationID) == t.lane.partition
}

// group is the Observations of one conversation taken in one batch, in
// stream order. They share one state read and one state write.
type group struct {
	// conversation is "" for an Observation that names none: it is mapped
	// against the zero State and nothing is stored.
	conversation string
	tasks        []*task
	st           State
	rev          uint64
	next         State
	changed      bool
	// err holds the whole group for a retry: reading state, publishing or
	// writing state failed, so nothing of it may be acked.
	err           error
	publishFailed bool
}

// handleBatch maps a worker's batch of Observations and settles each: ack
// when it is done with (mapped, empty, duplicate, unmappable, recording
// off). A conversation whose publish or State failed is retried in place,
// with a growing delay, holding this worker (and so every later
// Observation of that conversation) until it succeeds, the partition is
// taken over by another replica, or the runner stops; a nak would let the
// conversation's later records be mapped first.
//
// The Observations of one conversation in the batch are mapped one after
// the other on one State read; every message of the batch is published at
// once and waited for; then each changed State is written with
// compare-and-set, all at once; only then is anything acked.
func (r *Runner) handleBatch(jobs []job, cache *stateCache) {
	tasks := make([]task, 0, len(jobs))
	for i := range jobs {
		// A job taken before its partition changed hands is the new
		// owner's: it replays it.
		if jobs[i].lane.owns(jobs[i].epoch) {
			tasks = append(tasks, task{job: jobs[i]})
		}
	}
	groups := groupByConversation(tasks)
	for attempt := 1; len(groups) > 0; attempt++ {
		ctx, cancel := context.WithTimeout(r.work, r.o.PublishTimeout)
		if set := r.settings(); set.RecordLiveChatEvents {
			// Contacts hook (contactstore.go): the batch's contacts are
			// read as its Observations are mapped and written after them.
			contacts := newContactBatch(ctx, r.store.kv)
			r.process(ctx, groups, set, cache, contacts)
		} else {
			for _, g := range groups {
				g.err = nil
				for _, t := range g.tasks {
					t.result = metrics.MapperRecordOff
				}
			}
		}
		cancel()
		var failed []*group
		for _, g := range groups {
			if g.err != nil && r.work.Err() == nil {
				failed = append(failed, g)
				continue
			}
			for _, t := range g.tasks {
				r.settle(g, t)
			}
		}
		groups = r.hold(failed, attempt)
	}
}

// hold waits before a failed attempt is retried, keeping its
// Observations' ack deadlines alive, and returns the groups still this
// replica's to retry: none once the runner stops; without the tasks of a
// partition another replica has taken over meanwhile.
func (r *Runner) hold(failed []*group, attempt int) []*group {
	if len(failed) == 0 {
		return nil
	}
	delay := backoff(attempt)
	for _, g := range failed {
		if g.publishFailed {
			r.metrics.PublishFailed()
		}
		for _, t := range g.tasks {
			r.metrics.Observation(sourceLabel(t.obs.Source), metrics.MapperRetry, time.Since(t.taken))
		}
		r.log.Warn("mapper: conversation held, retrying in place", "conversation_key", StateKey(g.conversation), "observations", len(g.tasks), "attempt", attempt, "retry_in", delay, "err", g.err)
	}
	keepAlive := func() {
		for _, g := range failed {
			for _, t := range g.tasks {
				if !t.replay {
					_ = t.msg.InProgress()
				}
			}
		}
	}
	keepAlive()
	wake := time.NewTimer(delay)
	defer wake.Stop()
	tick := time.NewTicker(max(r.o.AckWait/3, time.Second))
	defer tick.Stop()
wait:
	for {
		select {
		case <-wake.C:
			break wait
		case <-tick.C:
			keepAlive()
		case <-r.work.Done():
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(r.work, r.o.PublishTimeout)
	defer cancel()
	owned := map[*lane]bool{}
	var out []*group
	for _, g := range failed {
		kept := g.tasks[:0]
		for _, t := range g.tasks {
			own, known := owned[t.lane]
			if !known {
				own = r.stillOwns(ctx, t.lane, t.epoch)
				owned[t.lane] = own
			}
			if own {
				kept = append(kept, t)
			}
		}
		if len(kept) == 0 {
			continue
		}
		g.tasks, g.err, g.publishFailed = kept, nil, false
		out = append(out, g)
	}
	return out
}

func groupByConversation(tasks []task) []*group {
	groups := make([]*group, 0, len(tasks))
	index := make(map[string]*group, len(tasks))
	for i := range tasks {
		t := &tasks[i]
		cid := t.obs.ConversationID
		if cid == "" {
			groups = append(groups, &group{tasks: []*task{t}})
			continue
		}
		g := index[cid]
		if g == nil {
			g = &group{conversation: cid}
			index[cid] = g
			groups = append(groups, g)
		}
		g.tasks = append(g.tasks, t)
	}
	return groups
}

// process maps groups against their conversations' States until every
// State is written without a conflict (or a group failed), publishing the
// messages before the State: a crash between publish and write
// redelivers the Observations, which map to the same messages with the
// same messageIds, and JetStream drops them as duplicates.
func (r *Runner) process(ctx context.Context, groups []*group, set spec.Settings, cache *stateCache, contacts *contactBatch) {
	pending := groups
	for attempt := 1; len(pending) > 0; attempt++ {
		r.load(ctx, pending, cache)
		for _, g := range pending {
			r.mapGroup(g, set, contacts)
		}
		r.publish(ctx, pending)
		// Contacts before conversations: once a conversation's State is
		// written its records are never mapped again, so a Contact still
		// unwritten then would make the next record repeat the identify
		// (a crash between the two did, in TestKilledMidBacklogAndRestarted).
		// Written first, a crash before the State makes the replay map the
		// record on a Contact that already knows what its identify said,
		// and the identify it published stays the only one.
		if err := contacts.commit(ctx); err != nil {
			r.log.Warn("mapper: contact state not written; a later identify may repeat it", "err", err)
		}
		conflicted := r.write(ctx, pending, attempt, cache)
		if len(conflicted) > 0 && attempt >= maxConflicts {
			for _, g := range conflicted {
				g.err = fmt.Errorf("write conversation state: %w, %d times", errConflict, attempt)
			}
			return
		}
		// Another replica moved these conversations on: what it wrote may
		// make some of the messages already published unnecessary; those
		// the new mapping yields again carry the same messageIds.
		pending = conflicted
	}
}

// load reads the State of every group that has a conversation, all at
// once.
func (r *Runner) load(ctx context.Context, groups []*group, cache *stateCache) {
	var wg sync.WaitGroup
	for _, g := range groups {
		if g.conversation == "" {
			continue
		}
		read := func() {
			st, rev, err := r.store.get(ctx, g.conversation, cache)
			if errors.Is(err, errBadState) {
				r.log.Error("mapper: conversation state unreadable, mapping from scratch", "conversation_key", StateKey(g.conversation), "err", err)
				err = nil
			}
			g.st, g.rev, g.err = st, rev, err
		}
		if len(groups) == 1 {
			read()
		} else {
			wg.Go(read)
		}
	}
	wg.Wait()
}

// mapGroup maps the group's Observations in order, each on the State the
// one before it left, and encodes their messages.
func (r *Runner) mapGroup(g *group, set spec.Settings, contacts *contactBatch) {
	cur := g.st
	g.changed = false
	for _, t := range g.tasks {
		t.out, t.data, t.result, t.err = nil, nil, "", nil
		if g.err != nil {
			continue
		}
		if g.conversation != "" && (cur.HasApplied(t.obs.ID) || t.ordered() && t.seq < cur.Seq) {
			t.result = metrics.MapperDuplicate
			continue
		}
		out, next, changed, err := contacts.apply(r.m, g, t.obs, cur, set)
		if err == nil {
			t.data, err = encodeMessages(out)
		}
		if err != nil {
			// Its State is not kept: the next Observation maps as if
			// this one had not come.
			t.err = err
			continue
		}
		t.out, t.result = out, resultOf(out)
		if changed {
			if t.ordered() {
				next.Seq = t.seq
			}
			cur, g.changed = next, true
		}
	}
	g.next = cur
}

func encodeMessages(out []spec.Message) ([][]byte, error) {
	if len(out) == 0 {
		return nil, nil
	}
	data := make([][]byte, len(out))
	for i := range out {
		m := &out[i]
		if err := m.Validate(); err != nil {
			return nil, &UnmappableError{Reason: fmt.Sprintf("mapping made an invalid message: %v", err)}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, &UnmappableError{Reason: fmt.Sprintf("encode message: %v", err)}
		}
		data[i] = b
	}
	return data, nil
}

func resultOf(out []spec.Message) string {
	if len(out) == 0 {
		return metrics.MapperEmpty
	}
	return metrics.MapperMapped
}

// publish stores every message of the groups on CHATTAP_EVENTS, with its
// messageId as Nats-Msg-Id and the id of the record it came from (the
// exchange id of a version 2 record, the Observation's own of a version 1
// one) as spec.HeaderRecord, and returns once each is acknowledged or
// failed; a group with a failed message gets its err. A conversation's
// messages go in waves: its next message is published only once the one
// before it is stored, so a failure never leaves a later event of a
// conversation on the stream ahead of an earlier one. The messages of
// different conversations travel together in each wave, and most groups
// of a batch are a message or two.
func (r *Runner) publish(ctx context.Context, groups []*group) {
	type out struct {
		msg    *spec.Message
		data   []byte
		record string
	}
	type sent struct {
		g   *group
		msg *spec.Message
		f   jetstream.PubAckFuture
	}
	queued := make([][]out, len(groups))
	waves := 0
	for gi, g := range groups {
		if g.err != nil {
			continue
		}
		for _, t := range g.tasks {
			for i := range t.out {
				queued[gi] = append(queued[gi], out{msg: &t.out[i], data: t.data[i], record: cmp.Or(t.obs.Record, t.obs.ID)})
			}
		}
		waves = max(waves, len(queued[gi]))
	}
	fail := func(g *group, m *spec.Message, err error) {
		if g.err == nil {
			g.err, g.publishFailed = fmt.Errorf("publish %s: %w", m.MessageID, err), true
		}
	}
	futures := make([]sent, 0, len(groups))
	for wave := range waves {
		futures = futures[:0]
		for gi, g := range groups {
			if g.err != nil || wave >= len(queued[gi]) {
				continue
			}
			o := queued[gi][wave]
			msg := &nats.Msg{Subject: spec.EventSubject(o.msg), Data: o.data, Header: nats.Header{spec.HeaderRecord: []string{o.record}}}
			f, err := r.pub.PublishMsgAsync(msg, jetstream.WithMsgID(o.msg.MessageID))
			if err != nil {
				fail(g, o.msg, err)
				continue
			}
			futures = append(futures, sent{g: g, msg: o.msg, f: f})
		}
		for _, s := range futures {
			select {
			case ack := <-s.f.Ok():
				if !ack.Duplicate {
					r.metrics.Published(eventLabel(s.msg))
				}
			case err := <-s.f.Err():
				fail(s.g, s.msg, err)
			case <-ctx.Done():
				fail(s.g, s.msg, ctx.Err())
			}
		}
	}
}

// write stores the next State of every changed group with compare-and-set
// on the revision it was mapped on, and returns the groups that lost the
// race. The first attempt writes all at once; later ones, rare, one by one
// through the bucket's own Create and Update.
func (r *Runner) write(ctx context.Context, groups []*group, attempt int, cache *stateCache) (conflicted []*group) {
	type written struct {
		g *group
		f jetstream.PubAckFuture
	}
	var futures []written
	for _, g := range groups {
		if g.err != nil || g.conversation == "" || !g.changed {
			continue
		}
		if attempt > 1 {
			rev, err := r.store.put(ctx, g.conversation, g.next, g.rev)
			switch {
			case errors.Is(err, errConflict):
				r.metrics.StateConflict()
				conflicted = append(conflicted, g)
			case err != nil:
				g.err = err
			default:
				cache.put(g.conversation, g.next, rev)
			}
			continue
		}
		f, err := r.store.putAsync(g.conversation, g.next, g.rev)
		if err != nil {
			g.err = err
			continue
		}
		futures = append(futures, written{g: g, f: f})
	}
	for _, w := range futures {
		select {
		case ack := <-w.f.Ok():
			cache.put(w.g.conversation, w.g.next, ack.Sequence)
		case err := <-w.f.Err():
			if isWrongLastSequence(err) && w.g.rev == 0 {
				// A deleted or purged key holds a marker that a write at
				// 0 trips over; Create writes over it, and fails only if
				// another replica really created the key meanwhile.
				rev, err := r.store.put(ctx, w.g.conversation, w.g.next, 0)
				switch {
				case errors.Is(err, errConflict):
					r.metrics.StateConflict()
					conflicted = append(conflicted, w.g)
				case err != nil:
					w.g.err = err
				default:
					cache.put(w.g.conversation, w.g.next, rev)
				}
				continue
			}
			if isWrongLastSequence(err) {
				r.metrics.StateConflict()
				conflicted = append(conflicted, w.g)
			} else {
				w.g.err = fmt.Errorf("write conversation state: %w", err)
			}
		case <-ctx.Done():
			w.g.err = fmt.Errorf("write conversation state: %w", ctx.Err())
		}
	}
	return conflicted
}

// settle acks one Observation, after counting it, so whoever sees the ack
// sees the count. A replayed copy has nothing to ack: the original is
// acked, as a duplicate, when it is delivered again. An Observation whose
// group failed is left unacked (the runner is stopping): the partition's
// next owner replays it.
func (r *Runner) settle(g *group, t *task) {
	obs := t.obs
	switch {
	case errors.Is(t.err, ErrUnmappable):
		r.log.Warn("mapper: observation is unmappable, acked", "observation", obs.ID, "source", obs.Source, "kind", obs.Kind, "err", t.err)
		r.metrics.Observation(sourceLabel(obs.Source), metrics.MapperUnmappable, time.Since(t.taken))
	case g.err != nil || t.err != nil:
		r.log.Info("mapper: stopping, observation left unacked for the next owner", "observation", obs.ID, "err", cmp.Or(g.err, t.err))
		return
	default:
		r.metrics.Observation(sourceLabel(obs.Source), t.result, time.Since(t.taken))
	}
	if !t.replay {
		r.ack(t.msg)
	}
}

func (r *Runner) ack(msg acker) {
	if err := msg.Ack(); err != nil {
		// The Observation comes again after the ack wait; its id is in the
		// State by then, so it maps to nothing.
		r.log.Warn("mapper: ack failed", "err", err)
	}
}

// backoff is the delay before retry attempt+1: 250ms, 500ms, 1s … 30s.
func backoff(attempt int) time.Duration {
	if attempt > 8 {
		return retryMax
	}
	return min(retryBase<<(attempt-1), retryMax)
}

// sourceLabel keeps the metric's label set small whatever the wire says.
func sourceLabel(s spec.Source) string {
	if slices.Contains(spec.Sources, s) {
		return string(s)
	}
	return "unknown"
}

func eventLabel(m *spec.Message) string {
	if m.Type == spec.TypeTrack {
		return m.Event
	}
	return m.Type
}
