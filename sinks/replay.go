package sinks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// ReplayOptions tune ReplayDLQ and Replay.
type ReplayOptions struct {
	// Attempts per event while its failure is retryable (default 5).
	Attempts int
	// Backoff before the second attempt, doubled after (default 1s); a
	// Retry-After is honoured.
	Backoff time.Duration
	// MaxInFlight bounds events handed to the sink at once (default 500).
	MaxInFlight int
}

func (o ReplayOptions) withDefaults() ReplayOptions {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 500
	}
	return o
}

// ReplayResult counts what a replay did.
type ReplayResult struct {
	// Delivered events reached the destination.
	Delivered int `json:"delivered"`
	// Failed events did not; for ReplayDLQ they stay in the DLQ.
	Failed int `json:"failed"`
	// DeadLettered events (Replay only) were refused for good and went to
	// the DLQ.
	DeadLettered int `json:"dead_lettered"`
	// Skipped dead letters belong to a sink that is not configured.
	Skipped  int             `json:"skipped"`
	Failures []ReplayFailure `json:"failures,omitempty"`
}

// ReplayFailure says why one event was not delivered.
type ReplayFailure struct {
	Sequence uint64 `json:"seq"`
	ID       string `json:"id"`
	Sink     string `json:"sink"`
	Error    string `json:"error"`
}

func (r *ReplayResult) fail(seq uint64, id, sink string, err error) {
	if len(r.Failures) < 1000 {
		r.Failures = append(r.Failures, ReplayFailure{Sequence: seq, ID: id, Sink: sink, Error: err.Error()})
	}
}

// Range selects events on CHATTAP_EVENTS by the time they were stored or
// by stream sequence. Set one of Since, From or FromSeq.
type Range struct {
	// Since selects the events stored in this last stretch of time ("2h").
	Since time.Duration
	// From and To select the events stored between them (a zero To: up to
	// now).
	From, To time.Time
	// FromSeq and ToSeq select stream sequences, both included (a zero
	// ToSeq: to the end).
	FromSeq, ToSeq uint64
	// Subject narrows to one subject (chattap.events.identify); empty:
	// every event.
	Subject string
}

func (r Range) consumerConfig(now time.Time) (jetstream.OrderedConsumerConfig, error) {
	switch {
	case r.Since > 0:
		return jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: ptr(now.Add(-r.Since))}, nil
	case !r.From.IsZero():
		return jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: ptr(r.From)}, nil
	case r.FromSeq > 0:
		return jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: r.FromSeq}, nil
	}
	return jetstream.OrderedConsumerConfig{}, errors.New("replay: say where to start: since, from a time, or from a sequence")
}

func ptr[T any](v T) *T { return &v }

// Replay delivers again the events of r on CHATTAP_EVENTS straight through
// sink, in order, in chunks of ReplayOptions.MaxInFlight, and waits for
// every outcome. It does not touch the sinks' consumers: a running chattap
// goes on undisturbed, and destinations drop the duplicates by messageId.
// An event refused for good is dead-lettered as the Runner would; one
// still failing after ReplayOptions.Attempts is counted as failed. The sink
// stays open: the caller closes it.
func Replay(ctx context.Context, js jetstream.JetStream, sink Sink, r Range, o ReplayOptions) (ReplayResult, error) {
	var res ReplayResult
	o = o.withDefaults()
	cfg, err := r.consumerConfig(time.Now())
	if err != nil {
		return res, err
	}
	subject := r.Subject
	if subject == "" {
		subject = spec.SubjectEventsPrefix + ">"
	}
	var chunk []Delivery
	flush := func() error {
		for i, err := range deliverAll(ctx, sink, chunk, o) {
			d := chunk[i]
			switch {
			case err == nil:
				res.Delivered++
			case IsPermanent(err):
				if perr := publishDLQ(ctx, js, sink.Name(), d, d.Raw, err, dlqMsgID(sink.Name(), d.Sequence)); perr != nil {
					return perr
				}
				res.DeadLettered++
				res.fail(d.Sequence, d.ID(), sink.Name(), err)
			default:
				res.Failed++
				res.fail(d.Sequence, d.ID(), sink.Name(), err)
			}
		}
		chunk = chunk[:0]
		return nil
	}
	err = scan(ctx, js, spec.StreamEvents, subject, cfg, func(msg jetstream.Msg) (bool, error) {
		md, err := msg.Metadata()
		if err != nil {
			return false, fmt.Errorf("replay: %w", err)
		}
		if (r.ToSeq > 0 && md.Sequence.Stream > r.ToSeq) || (!r.To.IsZero() && md.Timestamp.After(r.To)) {
			return false, nil
		}
		d, err := NewDelivery(msg.Subject(), md.Sequence.Stream, 1, msg.Data())
		if err != nil {
			if d.Raw == nil {
				d.Raw = msg.Data()
			}
			if perr := publishDLQ(ctx, js, sink.Name(), d, d.Raw, err, dlqMsgID(sink.Name(), d.Sequence)); perr != nil {
				return false, perr
			}
			res.DeadLettered++
			return true, nil
		}
		chunk = append(chunk, d)
		if len(chunk) >= o.MaxInFlight {
			return true, flush()
		}
		return true, nil
	})
	if err == nil {
		err = flush()
	}
	return res, err
}

// deliverAll hands the deliveries to sink in order, up to MaxInFlight at
// once so that the sink can batch them, waits for every outcome, retries
// the retryable failures in rounds with a growing delay (honouring
// Retry-After), and returns one outcome per delivery.
func deliverAll(ctx context.Context, sink Sink, ds []Delivery, o ReplayOptions) []error {
	out := make([]error, len(ds))
	todo := make([]int, len(ds))
	for i := range todo {
		todo[i] = i
	}
	delay := o.Backoff
	for attempt := 1; ; attempt++ {
		deliverRound(ctx, sink, ds, todo, out, o.MaxInFlight)
		var again []int
		var wait time.Duration
		for _, i := range todo {
			if out[i] != nil && !IsPermanent(out[i]) {
				again = append(again, i)
				wait = max(wait, min(RetryAfterOf(out[i]), maxRetryAfter))
			}
		}
		if len(again) == 0 || attempt >= o.Attempts || ctx.Err() != nil {
			return out
		}
		select {
		case <-time.After(max(delay, wait)):
		case <-ctx.Done():
			return out
		}
		delay *= 2
		for _, i := range again {
			ds[i].Attempt++
		}
		todo = again
	}
}

func deliverRound(ctx context.Context, sink Sink, ds []Delivery, todo []int, out []error, inFlight int) {
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for _, i := range todo {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			out[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		sink.Deliver(ctx, ds[i], func(err error) {
			out[i] = err
			<-sem
			wg.Done()
		})
	}
	// Every sink settles what it was handed, at the latest on Close.
	wg.Wait()
}
