package sinks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxRetryAfter bounds a destination's Retry-After: an absurd value must
// not park an event for days.
const maxRetryAfter = time.Hour

// settle turns a delivery's outcome into an ack, a NAK with a delay, or a
// dead letter followed by Term. Only failures that say something about
// the event count towards MaxDeliveries (see failures).
func (w *worker) settle(msg jetstream.Msg, d Delivery, err error) {
	switch {
	case err == nil:
		if aerr := msg.Ack(); aerr != nil {
			w.log.Debug("ack failed; the event will be delivered again", "id", d.ID(), "err", aerr)
		}
		w.failures.forget(d.Sequence)
		w.accepts.Add(1)
		w.lastAccept.Store(time.Now().UnixNano())
		w.r.m.Delivered(w.name)
		w.accepted()
	case errors.Is(err, ErrClosed):
		// Not the event's fault: hand it back for another replica or the
		// next start, at once.
		_ = msg.Nak()
	case IsMisconfigured(err):
		// Not the event's fault either, and every other event fails
		// alike: wait long, never dead-letter, and say so loudly. Nor
		// does it count towards MaxDeliveries: once the operator fixes
		// the key, the first ordinary blip must not dead-letter the
		// whole backlog.
		w.misconfigured(err)
		w.r.m.Retried(w.name, failureClass(err))
		_ = msg.NakWithDelay(backoff(w.r.o, math.MaxInt32, RetryAfterOf(err)))
	case errors.Is(err, errNoOutcome):
		// The sink never answered: the destination may have accepted the
		// event, so this is no failed attempt and can never be the one
		// that dead-letters it. It is retried; the destination drops the
		// duplicate by messageId.
		delay := backoff(w.r.o, d.Attempt, 0)
		w.r.m.Retried(w.name, failureClass(err))
		w.log.Warn("no outcome from the sink; retrying", "id", d.ID(), "seq", d.Sequence, "attempt", d.Attempt, "retry_in", delay, "err", err)
		_ = msg.NakWithDelay(delay)
	case IsPermanent(err):
		w.deadLetter(msg, d, err)
	default:
		if n := w.countFailure(d); n >= w.r.o.MaxDeliveries {
			w.deadLetter(msg, d, fmt.Errorf("still failing after %d failed deliveries: %w", n, err))
			return
		}
		delay := backoff(w.r.o, d.Attempt, RetryAfterOf(err))
		w.r.m.Retried(w.name, failureClass(err))
		w.log.Info("delivery failed; retrying", "id", d.ID(), "seq", d.Sequence, "attempt", d.Attempt, "retry_in", delay, "err", err)
		_ = msg.NakWithDelay(delay)
	}
}

// countFailure counts a failed delivery of d towards MaxDeliveries and
// returns the count so far. An event without a stream sequence (its
// metadata unreadable) falls back on JetStream's count of deliveries.
func (w *worker) countFailure(d Delivery) int {
	if d.Sequence == 0 {
		w.lastFailure.Store(time.Now().UnixNano())
		return d.Attempt
	}
	w.lastFailure.Store(time.Now().UnixNano())
	return w.failures.add(d.Sequence, w.accepts.Load())
}

// deadLetter publishes the event to chattap.dlq.<sink>, then terminates
// it. If the publish fails the event is NAKed instead: it is never
// terminated before the DLQ has it.
func (w *worker) deadLetter(msg jetstream.Msg, d Delivery, reason error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data := []byte(d.Raw)
	if data == nil {
		data = msg.Data()
	}
	// The id is the event's own on this sink, not the attempt's: a
	// dead-lettering retried after its publish timed out (but was
	// stored) is stored once. One dropped since is stored again
	// (publishDLQ).
	id := dlqMsgID(w.name, d.Sequence)
	if err := publishDLQ(ctx, w.r.js, w.name, d, data, reason, id); err != nil {
		w.r.m.DLQPublishFailed(w.name)
		w.log.Error("dead-letter failed; retrying", "id", d.ID(), "seq", d.Sequence, "err", err)
		_ = msg.NakWithDelay(backoff(w.r.o, d.Attempt, 0))
		return
	}
	w.r.m.DeadLettered(w.name, failureClass(reason))
	w.log.Warn("event dead-lettered", "id", d.ID(), "seq", d.Sequence, "attempt", d.Attempt, "reason", reason)
	if err := msg.Term(); err != nil {
		w.log.Warn("term failed; the event may be dead-lettered twice", "id", d.ID(), "err", err)
	}
	w.failures.forget(d.Sequence)
}

// publishDLQ stores one dead letter: the event as it was, with headers
// saying why, for which sink, after how many attempts, when, and where it
// was on CHATTAP_EVENTS.
func publishDLQ(ctx context.Context, js jetstream.JetStream, sink string, d Delivery, data []byte, reason error, msgID string) error {
	m := nats.NewMsg(spec.DLQSubject(sink))
	m.Data = data
	m.Header.Set(spec.HeaderDLQReason, truncate(reason.Error(), 1024))
	m.Header.Set(spec.HeaderDLQSink, sink)
	m.Header.Set(spec.HeaderDLQAttempts, strconv.Itoa(d.Attempt))
	m.Header.Set(spec.HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	m.Header.Set(spec.HeaderDLQSubject, d.Subject)
	m.Header.Set(spec.HeaderDLQSequence, strconv.FormatUint(d.Sequence, 10))
	if id := d.ID(); id != "" {
		m.Header.Set(HeaderDLQMessageID, id)
	}
	// A duplicate is either this dead letter stored before (a retried
	// dead-lettering: stored once, done) or one that was since dropped or
	// replayed and deleted, whose id the duplicate window still holds:
	// then it is stored again under an id derived from the deleted one,
	// so that a retry of this publish is still stored once.
	for range maxDLQGenerations {
		ack, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID))
		if err != nil {
			return fmt.Errorf("publish to %s: %w", m.Subject, err)
		}
		if !ack.Duplicate {
			return nil
		}
		gone, err := dlqDeleted(ctx, js, ack.Sequence)
		if err != nil || !gone {
			return err
		}
		msgID = fmt.Sprintf("%s:after:%d", msgID, ack.Sequence)
	}
	return fmt.Errorf("publish to %s: dead letter dropped %d times within the duplicate window", m.Subject, maxDLQGenerations)
}

// maxDLQGenerations bounds how often one dead-lettering finds its earlier
// dead letters deleted within CHATTAP_DLQ's duplicate window.
const maxDLQGenerations = 8

// dlqDeleted reports whether the dead letter at seq on CHATTAP_DLQ is
// gone. An unknown sequence (0) counts as present: nothing to go on.
func dlqDeleted(ctx context.Context, js jetstream.JetStream, seq uint64) (bool, error) {
	if seq == 0 {
		return false, nil
	}
	st, err := js.Stream(ctx, spec.StreamDLQ)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", spec.StreamDLQ, err)
	}
	if _, err := st.GetMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return true, nil
		}
		return false, fmt.Errorf("look up dead letter %d: %w", seq, err)
	}
	return false, nil
}

// dlqMsgID is the Nats-Msg-Id of the dead letter of the event at seq on
// CHATTAP_EVENTS for sink.
func dlqMsgID(sink string, seq uint64) string { return fmt.Sprintf("dlq:%s:%d", sink, seq) }

// HeaderDLQMessageID carries the dead event's messageId, so that it can
// be found without decoding the body.
const HeaderDLQMessageID = "Chattap-Dlq-Message-Id"

// backoff is the delay before redelivery number attempt+1: BackoffMin
// doubled per attempt up to BackoffMax, ±10% so that retries spread out,
// and never less than what the destination asked for.
func backoff(o DeliveryOptions, attempt int, retryAfter time.Duration) time.Duration {
	d := o.BackoffMin
	for i := 1; i < attempt && d < o.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, o.BackoffMax)
	d += time.Duration((rand.Float64()*0.2 - 0.1) * float64(d))
	return max(d, min(retryAfter, maxRetryAfter))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
