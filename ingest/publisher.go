package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors a Publisher reports through an Observation's done callback.
var (
	// ErrBufferFull: the Observation was dropped because the publisher
	// already held as many as its buffer allows.
	ErrBufferFull = errors.New("publish buffer full: observation dropped")
	// ErrStopped: the publisher stopped before JetStream stored it.
	ErrStopped = errors.New("publisher stopped: observation not stored")
	// ErrTooLarge: the Observation is larger than the broker accepts in
	// one message (its max_payload).
	ErrTooLarge = errors.New("observation larger than the broker's max_payload")
)

// Publisher publishes Observations to JetStream in the background. Enqueue
// never blocks: it hands the Observation to one dispatcher that publishes
// asynchronously (so order on the stream follows enqueue order), with a
// bounded window of publishes awaiting their ack. What JetStream did not
// acknowledge (broker away, timeout) is published again, with the same
// Nats-Msg-Id so JetStream stores it once, until it is stored, the buffer
// bound is reached, or Stop gives up. A Publisher is safe for concurrent use.
type Publisher struct {
	js      jetstream.JetStream
	log     *slog.Logger
	metrics *metrics.Ingest

	queue   chan *pending
	window  chan *pending
	held    atomic.Int64
	bound   int64
	retries sync.WaitGroup

	// mu orders Enqueue against Stop: once stopped is set under the write
	// lock, no Enqueue can put anything on the queue that nobody reads.
	mu       sync.RWMutex
	stopped  bool
	stopping chan struct{}
	stopOnce sync.Once
	stopErr  error
	done     sync.WaitGroup
	lastWarn atomic.Int64
	lost     atomic.Int64
	// maxData is the largest encoded Observation the broker takes.
	maxData int
}

type pending struct {
	source   string
	subject  string
	id       string
	data     []byte
	done     func(error)
	future   jetstream.PubAckFuture
	attempts int
}

// maxRetryDelay caps the pause between two attempts at one Observation.
const maxRetryDelay = 2 * time.Second

// NewPublisher returns a started Publisher on nc. buffer bounds the
// Observations held (queued, in flight and waiting to be retried); window
// bounds the publishes awaiting an ack; ackTimeout is how long one waits.
func NewPublisher(nc *nats.Conn, buffer, window int, ackTimeout time.Duration, log *slog.Logger, m *metrics.Ingest) (*Publisher, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(window), jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	p := &Publisher{
		js: js, log: log, metrics: m,
		queue:    make(chan *pending, buffer),
		window:   make(chan *pending, window),
		bound:    int64(buffer),
		stopping: make(chan struct{}),
		maxData:  maxData(nc),
	}
	p.done.Add(2)
	go p.dispatch()
	go p.confirm()
	return p, nil
}

// Enqueue hands obs to the publisher and returns at once. done, if not
// nil, is called exactly once from another goroutine: with nil when
// JetStream stored obs, with ErrBufferFull or ErrStopped when it never
// will. Enqueue returns ErrBufferFull itself (and does not call done) when
// the buffer is full.
func (p *Publisher) Enqueue(obs *spec.Observation, done func(error)) error {
	data := p.encode(obs)
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.stopped {
		p.lost.Add(1)
		p.metrics.Lost(1)
		return ErrStopped
	}
	if p.held.Add(1) > p.bound {
		p.held.Add(-1)
		p.metrics.Dropped()
		p.warn("observation dropped: publish buffer full", "id", obs.ID, "subject", obs.Subject())
		return ErrBufferFull
	}
	p.metrics.Buffered(p.held.Load())
	p.queue <- &pending{source: string(obs.Source), subject: obs.Subject(), id: obs.ID, data: data, done: done}
	return nil
}

// encode is obs as stored. One too large for the broker would be refused
// for ever, so it is stored without its payload, as undecodable, with the
// reason: the event is known to have happened, and nothing blocks.
func (p *Publisher) encode(obs *spec.Observation) []byte {
	data := obs.AppendJSON(make([]byte, 0, 256+len(obs.Payload)+len(obs.PayloadRaw)*4/3))
	if len(data) <= p.maxData {
		return data
	}
	p.metrics.TooLarge()
	p.warn("observation larger than the broker's max_payload: stored without its payload", "id", obs.ID, "bytes", len(data), "max", p.maxData)
	stub := *obs
	stub.Kind, stub.Payload, stub.PayloadRaw = spec.KindUndecodable, nil, nil
	stub.Error = fmt.Sprintf("%s (%d bytes, max %d): payload not recorded", ErrTooLarge, len(data), p.maxData)
	return stub.AppendJSON(nil)
}

// Publish stores obs and waits for JetStream's ack, or for ctx to end. It
// does not go through the buffer: the caller learns the outcome directly.
// An Observation larger than the broker accepts is ErrTooLarge.
func (p *Publisher) Publish(ctx context.Context, obs *spec.Observation) error {
	data := obs.AppendJSON(nil)
	if len(data) > p.maxData {
		p.metrics.TooLarge()
		return fmt.Errorf("%w: %d bytes, max %d", ErrTooLarge, len(data), p.maxData)
	}
	_, err := p.js.Publish(ctx, obs.Subject(), data, jetstream.WithMsgID(obs.ID))
	if err != nil {
		p.metrics.PublishFailed()
		return fmt.Errorf("publish observation: %w", err)
	}
	p.metrics.Published(string(obs.Source))
	return nil
}

// maxData leaves room under the server's max_payload for the headers.
func maxData(nc *nats.Conn) int {
	const headerRoom = 1 << 10
	return int(nc.MaxPayload()) - headerRoom
}

// Held is the number of Observations not yet stored.
func (p *Publisher) Held() int64 { return p.held.Load() }

func (p *Publisher) dispatch() {
	defer p.done.Done()
	defer close(p.window)
	for {
		select {
		case it := <-p.queue:
			p.send(it)
		case <-p.stopping:
			return
		}
	}
}

func (p *Publisher) send(it *pending) {
	it.attempts++
	msg := &nats.Msg{Subject: it.subject, Data: it.data, Header: nats.Header{jetstream.MsgIDHeader: []string{it.id}}}
	f, err := p.js.PublishMsgAsync(msg)
	if err != nil {
		p.retry(it, err)
		return
	}
	it.future = f
	p.window <- it
}

func (p *Publisher) confirm() {
	defer p.done.Done()
	for it := range p.window {
		select {
		case <-it.future.Ok():
			p.finish(it, nil)
		case err := <-it.future.Err():
			p.retry(it, err)
		}
	}
}

func (p *Publisher) finish(it *pending, err error) {
	switch {
	case err == nil:
		p.metrics.Published(it.source)
	case errors.Is(err, ErrStopped):
		p.lost.Add(1)
		p.metrics.Lost(1)
	}
	p.metrics.Buffered(p.held.Add(-1))
	if it.done != nil {
		it.done(err)
	}
}

// retry puts it back on the queue after a pause that grows with its
// attempts. The queue always has room: it holds at most bound items and
// it is one of them.
func (p *Publisher) retry(it *pending, err error) {
	p.metrics.PublishFailed()
	p.warn("publish observation failed; will retry", "id", it.id, "attempt", it.attempts, "err", err)
	delay := min(time.Duration(it.attempts)*50*time.Millisecond, maxRetryDelay)
	p.retries.Add(1)
	time.AfterFunc(delay, func() {
		defer p.retries.Done()
		select {
		case <-p.stopping:
			p.finish(it, ErrStopped)
		default:
			p.queue <- it
		}
	})
}

// warn logs at most once a second, so a broker outage does not flood the log.
func (p *Publisher) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := p.lastWarn.Load()
	if now-last < int64(time.Second) || !p.lastWarn.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn(msg, append(args, "held", p.held.Load())...)
}

// Stop waits until every held Observation is stored or ctx ends, then stops
// the publisher; what it still held then is reported through done with
// ErrStopped, counted in chattap_observations_lost_total and logged, and
// Stop returns an error saying how many. Enqueue refuses new Observations
// once Stop gave up waiting. Stop is idempotent: a second call returns
// the first one's result.
func (p *Publisher) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
	wait:
		for p.held.Load() > 0 {
			select {
			case <-ctx.Done():
				break wait
			case <-tick.C:
			}
		}
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
		close(p.stopping)
		p.done.Wait()
		p.retries.Wait()
		for {
			select {
			case it := <-p.queue:
				p.finish(it, ErrStopped)
				continue
			default:
			}
			break
		}
		if n := p.lost.Load(); n > 0 {
			p.stopErr = fmt.Errorf("stopped with %d observations not stored", n)
			p.log.Error("publisher stopped before the broker stored every observation", "lost", n)
		}
	})
	return p.stopErr
}
