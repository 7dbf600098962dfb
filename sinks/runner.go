package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// Runner delivers CHATTAP_EVENTS to its sinks: each sink has its own
// durable pull consumer (ConsumerName) and its own bound of in-flight
// events, so one slow or dead sink never holds back another. The Runner
// owns its sinks: Stop closes them.
type Runner struct {
	js    jetstream.JetStream
	o     DeliveryOptions
	log   *slog.Logger
	m     *metrics.Sinks
	sinks []Sink

	mu      sync.Mutex
	started bool
	workers []*worker

	stopOnce sync.Once
	stopErr  error
}

// ConsumerName is the durable consumer of sink on CHATTAP_EVENTS.
func ConsumerName(sink string) string { return "sink-" + spec.SubjectToken(sink) }

// NewRunner makes a Runner for sinks; nothing happens until Start.
func NewRunner(js jetstream.JetStream, o DeliveryOptions, deps Deps, sinks ...Sink) (*Runner, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, s := range sinks {
		if seen[s.Name()] {
			return nil, fmt.Errorf("two sinks named %q", s.Name())
		}
		seen[s.Name()] = true
	}
	return &Runner{js: js, o: o.withDefaults(), log: deps.logger(), m: deps.Metrics, sinks: sinks}, nil
}

// Start creates or updates every sink's consumer and starts consuming. It
// does not block beyond those requests; it fails if a consumer cannot be
// declared, and may be called once.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("sinks runner: already started")
	}
	r.started = true
	for _, s := range r.sinks {
		w, err := newWorker(ctx, r, s)
		if err != nil {
			for _, w := range r.workers {
				w.stopIntake()
			}
			return err
		}
		r.workers = append(r.workers, w)
	}
	for _, w := range r.workers {
		go w.loop()
	}
	return nil
}

// Stop stops taking events from every consumer (events pulled but not
// handed over are NAKed at once), closes every sink, which flushes them,
// and waits for the outcome of what they had, until ctx ends. What has no
// outcome by then is not acked and JetStream redelivers it after AckWait:
// nothing is lost. Stop is idempotent: later calls return the first one's
// result.
func (r *Runner) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() { r.stopErr = r.stop(ctx) })
	return r.stopErr
}

func (r *Runner) stop(ctx context.Context) error {
	r.mu.Lock()
	workers := r.workers
	r.started = true // a Start after Stop must not run
	r.mu.Unlock()
	for _, w := range workers {
		w.stopIntake()
	}
	var errs []error
	for _, w := range workers {
		if err := wait(ctx, w.loopDone); err != nil {
			errs = append(errs, fmt.Errorf("stop %s consumer: %w", w.name, err))
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range r.sinks {
		wg.Go(func() {
			if err := s.Close(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("close %s sink: %w", s.Name(), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, w := range workers {
		ch := make(chan struct{})
		go func() { w.outstanding.Wait(); close(ch) }()
		if err := wait(ctx, ch); err != nil {
			errs = append(errs, fmt.Errorf("settle %s events: %w", w.name, err))
		}
	}
	return errors.Join(errs...)
}

func wait(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ackWait sizes how long JetStream waits for a sink's outcome: several
// times the longest a delivery can take, so that a healthy but slow
// destination is not sent the same events twice.
func (r *Runner) ackWait(s Sink) time.Duration {
	if r.o.AckWait > 0 {
		return r.o.AckWait
	}
	if b, ok := s.(interface{ MaxLatency() time.Duration }); ok {
		return max(30*time.Second, 3*b.MaxLatency())
	}
	return 30 * time.Second
}

// watchdog is how long a delivery may wait for its sink's outcome before
// the worker settles it as a retryable timeout: nine tenths of the ack
// wait, so that the NAK reaches JetStream before it would redeliver.
func (r *Runner) watchdog(s Sink) time.Duration { return r.ackWait(s) * 9 / 10 }

// consumerConfig uses only fields nats-server 2.9 knows.
func (r *Runner) consumerConfig(ctx context.Context, s Sink) (jetstream.ConsumerConfig, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       ConsumerName(s.Name()),
		Description:   "chattap: deliveries to the " + s.Name() + " sink",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.ackWait(s),
		// The runner counts deliveries itself and dead-letters past
		// MaxDeliveries; the server must never drop an event silently.
		MaxDeliver:    -1,
		FilterSubject: spec.SubjectEventsPrefix + ">",
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
		MaxAckPending: r.o.MaxInFlight,
	}
	if r.o.Start == "new" {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	// Where an existing consumer started cannot change.
	c, err := r.js.Consumer(ctx, spec.StreamEvents, cfg.Durable)
	switch {
	case err == nil:
		old := c.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return cfg, fmt.Errorf("look up consumer %s: %w", cfg.Durable, err)
	}
	return cfg, nil
}
