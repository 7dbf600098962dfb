package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chattap/chattap/spec"
	analytics "github.com/segmentio/analytics-go/v3"
)

// SegmentOptions configure the Segment sink.
type SegmentOptions struct {
	WriteKey string        `env:"CHATTAP_SEGMENT_WRITE_KEY" secret:"true" help:"Segment source write key; when set, the Segment sink is on"`
	Endpoint string        `env:"CHATTAP_SEGMENT_ENDPOINT" secret:"url" envDefault:"https://api.segment.io" help:"any Segment-compatible receiver of /v1/batch (Segment, RudderStack, Jitsu, …)"`
	Timeout  time.Duration `env:"CHATTAP_SEGMENT_TIMEOUT" envDefault:"10s" help:"time limit of one request to the Segment endpoint"`
}

// Enabled reports whether the Segment sink is on.
func (o SegmentOptions) Enabled() bool { return o.WriteKey != "" }

// Validate reports every bad value with its variable's name (never the
// write key's value).
func (o SegmentOptions) Validate() error {
	var errs []error
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("CHATTAP_SEGMENT_ENDPOINT: must be an http:// or https:// URL"))
		}
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_SEGMENT_TIMEOUT=%v: must be positive", o.Timeout))
	}
	return errors.Join(errs...)
}

// Segment is the Segment sink, on analytics-go v3.3.0. analytics-go batches
// and sends; its transport is wrapped so that chattap sees every answer,
// so that each event is settled from the Success callback with what the
// endpoint really said, and so that analytics-go never retries on its own
// (it would retry a 400 ten times and ignore Retry-After): the retries are
// JetStream redeliveries, which survive a restart.
type Segment struct {
	client analytics.Client
	log    *slog.Logger
	linger time.Duration
	tout   time.Duration
	tr     tracker
	closed atomic.Bool

	mu sync.Mutex
	// pending holds the outcome callbacks of enqueued events by messageId,
	// oldest first (the same event may be in flight twice, when JetStream
	// redelivers it before the first outcome is known).
	pending map[string][]func(error)
	// failed holds what the transport saw for an event that is about to be
	// reported to Success (the transport answers analytics-go with 200
	// whatever happened, so it does not retry).
	failed map[string][]error
	// isolation holds the highest Delivery.Isolation of each pending
	// event, for the transport's isolationCap.
	isolation map[string]int
	size      int

	closeOnce sync.Once
	closeErr  error
}

var _ Sink = (*Segment)(nil)

// NewSegment makes the Segment sink and starts analytics-go's client.
func NewSegment(o SegmentOptions, d DeliveryOptions, deps Deps) (*Segment, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if !o.Enabled() {
		return nil, errors.New("segment sink: CHATTAP_SEGMENT_WRITE_KEY is not set")
	}
	d = d.withDefaults()
	if o.Endpoint == "" {
		o.Endpoint = analytics.DefaultEndpoint
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultRequestTimeout
	}
	s := &Segment{
		log:     deps.logger().With("sink", "segment"),
		linger:  d.FlushInterval,
		tout:    o.Timeout,
		pending: make(map[string][]func(error)),
		failed:  make(map[string][]error),
		// analytics-go batches by its own rules; the transport cuts its
		// batches by isolationCap.
		isolation: make(map[string]int),
		size:      d.BatchSize,
	}
	client, err := analytics.NewWithConfig(o.WriteKey, analytics.Config{
		Endpoint:  o.Endpoint,
		Interval:  d.FlushInterval,
		BatchSize: d.BatchSize,
		Transport: &segmentTransport{base: deps.transport(), timeout: o.Timeout, record: s.recordFailure, capOf: s.isolationCap},
		Logger:    analyticsLogger{s.log},
		Callback:  segmentCallback{s},
		// Never reached while the transport answers every request, but if
		// analytics-go does retry, it must not sit on a batch for minutes.
		RetryAfter: func(int) time.Duration { return 10 * time.Millisecond },
	})
	if err != nil {
		return nil, fmt.Errorf("segment sink: %w", err)
	}
	s.client = client
	return s, nil
}

// Name is "segment".
func (s *Segment) Name() string { return "segment" }

// MaxLatency is the longest a delivery can take before its outcome is
// known: a full interval and a few requests (a refused batch is split).
func (s *Segment) MaxLatency() time.Duration { return s.linger + 3*s.tout }

// Deliver enqueues d on analytics-go; done is called from its Success or
// Failure callback, never on Enqueue. See Sink.
func (s *Segment) Deliver(_ context.Context, d Delivery, done func(error)) {
	done = s.tr.track(done)
	if s.closed.Load() {
		done(ErrClosed)
		return
	}
	msg, err := toAnalytics(d.Message)
	if err != nil {
		done(Permanent(err))
		return
	}
	id := d.ID()
	s.mu.Lock()
	s.pending[id] = append(s.pending[id], done)
	s.isolation[id] = max(s.isolation[id], d.Isolation)
	s.mu.Unlock()
	if err := s.client.Enqueue(msg); err != nil {
		if errors.Is(err, analytics.ErrClosed) {
			err = ErrClosed
		} else {
			err = Permanent(fmt.Errorf("%w: %v", spec.ErrInvalidMessage, err))
		}
		s.settle(id, err)
	}
}

// Close sends what analytics-go has queued and waits for the answers until
// ctx ends; events without an outcome by then are reported ErrClosed and
// redelivered by JetStream later.
func (s *Segment) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = s.tr.closeWith(ctx, func(ctx context.Context) error {
			ch := make(chan error, 1)
			go func() { ch <- s.client.Close() }()
			select {
			case err := <-ch:
				if err != nil {
					return fmt.Errorf("segment sink: close: %w", err)
				}
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	return s.closeErr
}

// recordFailure is called by the transport, before analytics-go reports
// the event to Success.
func (s *Segment) recordFailure(id string, err error) {
	s.mu.Lock()
	s.failed[id] = append(s.failed[id], err)
	s.mu.Unlock()
}

// settle calls the oldest outcome callback of id with err, or, when err is
// nil, with what the transport recorded for id.
func (s *Segment) settle(id string, err error) {
	s.mu.Lock()
	if err == nil {
		if fs := s.failed[id]; len(fs) > 0 {
			err = fs[0]
			s.failed[id] = fs[1:]
			if len(s.failed[id]) == 0 {
				delete(s.failed, id)
			}
		}
	}
	var done func(error)
	if ps := s.pending[id]; len(ps) > 0 {
		done = ps[0]
		s.pending[id] = ps[1:]
		if len(s.pending[id]) == 0 {
			delete(s.pending, id)
			delete(s.isolation, id)
		}
	}
	s.mu.Unlock()
	if done != nil {
		done(err)
	}
}

// isolationCap is the most events a request holding the event id may
// carry (see isolationCap).
func (s *Segment) isolationCap(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return isolationCap(s.size, s.isolation[id])
}

type segmentCallback struct{ s *Segment }

func (c segmentCallback) Success(m analytics.Message) { c.s.settle(messageIDOf(m), nil) }

func (c segmentCallback) Failure(m analytics.Message, err error) {
	switch {
	case errors.Is(err, analytics.ErrMessageTooBig):
		err = Permanent(fmt.Errorf("%w: over analytics-go's limit: %v", ErrMessageTooBig, err))
	case errors.Is(err, analytics.ErrTooManyRequests):
		err = Retryable(fmt.Errorf("segment sink: %w", err), 0)
	case errors.Is(err, analytics.ErrClosed):
		err = ErrClosed
	default:
		// Marshalling failed, or analytics-go gave up retrying (which the
		// transport prevents): let JetStream try again.
		err = Retryable(fmt.Errorf("segment sink: %w", err), 0)
	}
	c.s.settle(messageIDOf(m), err)
}

func messageIDOf(m analytics.Message) string {
	switch m := m.(type) {
	case analytics.Track:
		return m.MessageId
	case analytics.Identify:
		return m.MessageId
	}
	return ""
}

// toAnalytics converts a Segment message to analytics-go's own type, field
// for field, so that analytics-go sends what chattap stored.
func toAnalytics(m *spec.Message) (analytics.Message, error) {
	var ctx *analytics.Context
	if m.Context != nil {
		ctx = &analytics.Context{Traits: analytics.Traits(m.Context.Traits)}
		if m.Context.Library != nil {
			ctx.Library = analytics.LibraryInfo{Name: m.Context.Library.Name, Version: m.Context.Library.Version}
		}
	}
	var integrations analytics.Integrations
	if len(m.Integrations) > 0 {
		integrations = make(analytics.Integrations, len(m.Integrations))
		for k, v := range m.Integrations {
			integrations[k] = v
		}
	}
	switch m.Type {
	case spec.TypeTrack:
		return analytics.Track{
			MessageId: m.MessageID, AnonymousId: m.AnonymousID, UserId: m.UserID,
			Event: m.Event, Timestamp: m.Timestamp, Context: ctx,
			Properties: analytics.Properties(m.Properties), Integrations: integrations,
		}, nil
	case spec.TypeIdentify:
		return analytics.Identify{
			MessageId: m.MessageID, AnonymousId: m.AnonymousID, UserId: m.UserID,
			Timestamp: m.Timestamp, Context: ctx,
			Traits: analytics.Traits(m.Traits), Integrations: integrations,
		}, nil
	}
	return nil, fmt.Errorf("%w: segment sink cannot send type %q", spec.ErrInvalidMessage, m.Type)
}

// analyticsLogger keeps analytics-go's messages at debug level: they may
// quote whole events (personal data), and every failure it could report is
// reported, classified, by chattap itself.
type analyticsLogger struct{ log *slog.Logger }

func (l analyticsLogger) Logf(format string, args ...any) {
	l.log.Debug("analytics-go: " + fmt.Sprintf(format, args...))
}

func (l analyticsLogger) Errorf(format string, args ...any) {
	l.log.Debug("analytics-go: " + fmt.Sprintf(format, args...))
}
