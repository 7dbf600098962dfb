package mapper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// maxConflicts bounds how often one Observation is mapped again after
// losing a compare-and-set race before it is naked and tried later.
const maxConflicts = 16

// Nak delays: the first retry soon, then doubling up to a ceiling that
// still lets a broken CHATTAP_EVENTS recover without a flood of retries.
const (
	nakBase = 250 * time.Millisecond
	nakMax  = 30 * time.Second
)

func decodeObservation(data []byte) (*spec.Observation, error) {
	var obs spec.Observation
	if err := json.Unmarshal(data, &obs); err != nil {
		return nil, fmt.Errorf("decode observation: %w", err)
	}
	return &obs, nil
}

// handle maps one Observation and settles it: ack when it is done with
// (mapped, empty, duplicate, unmappable, recording off), nak with a delay
// when publishing or the bucket failed.
func (r *Runner) handle(j job) {
	ctx, cancel := context.WithTimeout(r.work, r.o.PublishTimeout)
	defer cancel()
	result, err := r.process(ctx, j.obs)
	settle := r.ack
	switch {
	case err == nil:
	case errors.Is(err, ErrUnmappable):
		r.log.Warn("mapper: observation is unmappable, acked", "observation", j.obs.ID, "source", j.obs.Source, "kind", j.obs.Kind, "err", err)
		result = metrics.MapperUnmappable
	default:
		delay := nakDelay(j.msg)
		r.log.Warn("mapper: observation naked", "observation", j.obs.ID, "source", j.obs.Source, "kind", j.obs.Kind, "retry_in", delay, "err", err)
		result = metrics.MapperRetry
		settle = func(msg jetstream.Msg) { _ = msg.NakWithDelay(delay) }
	}
	// Counted before it is settled, so whoever sees the ack sees the count.
	r.metrics.Observation(sourceLabel(j.obs.Source), result, time.Since(j.taken))
	settle(j.msg)
}

// process maps obs against its conversation's State until the State is
// written without a conflict, publishing the messages first: a crash
// between publish and write redelivers obs, which maps to the same
// messages with the same messageIds, and JetStream drops them as
// duplicates. It returns the metrics result.
func (r *Runner) process(ctx context.Context, obs *spec.Observation) (string, error) {
	set := r.settings()
	if !set.RecordLiveChatEvents {
		return metrics.MapperRecordOff, nil
	}
	if obs.ConversationID == "" {
		// Nothing to remember: operator status, widget config, or a
		// payload that names no conversation (which Map reports).
		out, _, _, err := r.m.apply(obs, State{}, set)
		if err != nil {
			return "", err
		}
		if err := r.publish(ctx, out); err != nil {
			return "", err
		}
		return resultOf(out), nil
	}
	for attempt := 1; ; attempt++ {
		st, rev, err := r.store.get(ctx, obs.ConversationID)
		if errors.Is(err, errBadState) {
			r.log.Error("mapper: conversation state unreadable, mapping from scratch", "conversation_key", StateKey(obs.ConversationID), "err", err)
		} else if err != nil {
			return "", err
		}
		if st.HasApplied(obs.ID) {
			return metrics.MapperDuplicate, nil
		}
		out, next, changed, err := r.m.apply(obs, st, set)
		if err != nil {
			return "", err
		}
		if err := r.publish(ctx, out); err != nil {
			r.metrics.PublishFailed()
			return "", err
		}
		if !changed {
			return resultOf(out), nil
		}
		err = r.store.put(ctx, obs.ConversationID, next, rev)
		if errors.Is(err, errConflict) && attempt < maxConflicts {
			// Another replica moved the conversation on: what it wrote may
			// make some of these messages unnecessary, never different.
			r.metrics.StateConflict()
			continue
		}
		if err != nil {
			return "", err
		}
		return resultOf(out), nil
	}
}

func resultOf(out []spec.Message) string {
	if len(out) == 0 {
		return metrics.MapperEmpty
	}
	return metrics.MapperMapped
}

// publish stores every message on CHATTAP_EVENTS, with its messageId as
// Nats-Msg-Id, and returns once all are acknowledged. The publishes are
// asynchronous so that an Observation's messages travel together.
func (r *Runner) publish(ctx context.Context, out []spec.Message) error {
	if len(out) == 0 {
		return nil
	}
	futures := make([]jetstream.PubAckFuture, 0, len(out))
	for i := range out {
		m := &out[i]
		if err := m.Validate(); err != nil {
			return &UnmappableError{Reason: fmt.Sprintf("mapping made an invalid message: %v", err)}
		}
		data, err := json.Marshal(m)
		if err != nil {
			return &UnmappableError{Reason: fmt.Sprintf("encode message: %v", err)}
		}
		f, err := r.js.PublishAsync(spec.EventSubject(m), data, jetstream.WithMsgID(m.MessageID))
		if err != nil {
			return fmt.Errorf("publish %s: %w", m.MessageID, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if !ack.Duplicate {
				r.metrics.Published(eventLabel(&out[i]))
			}
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", out[i].MessageID, err)
		case <-ctx.Done():
			return fmt.Errorf("publish %s: %w", out[i].MessageID, ctx.Err())
		}
	}
	return nil
}

func (r *Runner) ack(msg jetstream.Msg) {
	if err := msg.Ack(); err != nil {
		// The Observation comes again after the ack wait; its id is in the
		// State by then, so it maps to nothing.
		r.log.Warn("mapper: ack failed", "err", err)
	}
}

// nakDelay grows with the deliveries so far: 250ms, 500ms, 1s … 30s.
func nakDelay(msg jetstream.Msg) time.Duration {
	n := uint64(1)
	if md, err := msg.Metadata(); err == nil && md.NumDelivered > 0 {
		n = md.NumDelivered
	}
	if n > 8 {
		return nakMax
	}
	return min(nakBase<<(n-1), nakMax)
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
