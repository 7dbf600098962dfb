package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors a Publisher reports through a record's done callback.
var (
	// ErrBufferFull: the record was dropped because the publisher already
	// held as many as its buffer allows.
	ErrBufferFull = errors.New("publish buffer full: record dropped")
	// ErrStopped: the publisher stopped before JetStream stored it.
	ErrStopped = errors.New("publisher stopped: record not stored")
	// ErrTooLarge: the record is larger than the broker accepts in one
	// message (its max_payload).
	ErrTooLarge = errors.New("record larger than the broker's max_payload")
)

// Publisher publishes the records of exchanges to JetStream in the
// background, in the order they were enqueued, which is the order their
// exchanges were answered. Enqueue never blocks: it hands the record to
// one sender that publishes asynchronously, with a bounded window of
// publishes awaiting their ack.
//
// Order holds on every failure path. When a publish fails (broker away,
// timeout, refused), the sender stops sending, waits until every publish
// in the window has its answer, and keeps those that failed, in their
// order. It then waits for the connection to be up again (and a pause
// that grows with each failed round), and sends them again, in that
// order, with the same Nats-Msg-Id, before anything newer: JetStream
// drops those it had stored after all. One gate for the whole window,
// instead of a timer per record, is what keeps a conversation's records
// in order: a record retried on its own timer would be stored behind a
// later one. The connection refuses publishes while it reconnects (see
// broker.Connect), so nothing newer slips through in the meantime.
//
// A Publisher is safe for concurrent use.
type Publisher struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	metrics *metrics.Ingest

	queue  chan *pending
	window int
	held   atomic.Int64
	bound  int64

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
	// maxData is the largest encoded record the broker takes.
	maxData int
}

type pending struct {
	source  string
	subject string
	id      string
	data    []byte
	done    func(error)
	future  jetstream.PubAckFuture
	err     error
}

// Pauses between two rounds of sending the failed window again: the first
// soon, then growing to a ceiling.
const (
	retryPause    = 50 * time.Millisecond
	maxRetryPause = 2 * time.Second
)

// NewPublisher returns a started Publisher on nc. buffer bounds the
// records held (queued, in flight and waiting to be sent again); window
// bounds the publishes awaiting an ack; ackTimeout is how long one waits.
func NewPublisher(nc *nats.Conn, buffer, window int, ackTimeout time.Duration, log *slog.Logger, m *metrics.Ingest) (*Publisher, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(window), jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	p := &Publisher{
		nc: nc, js: js, log: log, metrics: m,
		queue:    make(chan *pending, buffer),
		window:   window,
		bound:    int64(buffer),
		stopping: make(chan struct{}),
		maxData:  maxData(nc),
	}
	p.done.Add(1)
	go p.run()
	return p, nil
}

// Enqueue hands rec to the publisher and returns at once. done, if not
// nil, is called exactly once from another goroutine: with nil when
// JetStream stored rec, with ErrStopped when it never will. Enqueue
// returns ErrBufferFull or ErrStopped itself (and does not call done) when
// it does not take rec.
func (p *Publisher) Enqueue(rec *spec.Record, done func(error)) error {
	data := p.encode(rec)
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
		p.warn("record dropped: publish buffer full", "exchange", rec.ID, "subject", rec.Subject())
		return ErrBufferFull
	}
	p.metrics.Buffered(p.held.Load())
	p.queue <- &pending{source: string(rec.Source), subject: rec.Subject(), id: rec.ID, data: data, done: done}
	return nil
}

// encode is rec as stored. One too large for the broker would be refused
// for ever, so its largest payloads are left out, one after the other,
// until it fits; each such event is stored as undecodable with the
// reason: the event is known to have happened, and nothing blocks.
func (p *Publisher) encode(rec *spec.Record) []byte {
	data := rec.AppendJSON(make([]byte, 0, rec.Size()))
	if len(data) <= p.maxData {
		return data
	}
	p.metrics.TooLarge()
	p.warn("record larger than the broker's max_payload: stored without its largest payloads", "exchange", rec.ID, "bytes", len(data), "max", p.maxData)
	stub := *rec
	stub.Events = slices.Clone(rec.Events)
	bySize := make([]int, len(stub.Events))
	for i := range bySize {
		bySize[i] = i
	}
	size := func(e *spec.RecordEvent) int { return len(e.Payload) + len(e.PayloadRaw) }
	slices.SortStableFunc(bySize, func(a, b int) int { return cmp.Compare(size(&stub.Events[b]), size(&stub.Events[a])) })
	for _, i := range bySize {
		e := &stub.Events[i]
		e.Error = fmt.Sprintf("%s (record of %d bytes, max %d): payload of %d bytes not recorded", ErrTooLarge, len(data), p.maxData, size(e))
		e.Kind, e.Payload, e.PayloadRaw = spec.KindUndecodable, nil, nil
		if out := stub.AppendJSON(nil); len(out) <= p.maxData {
			return out
		}
	}
	return stub.AppendJSON(nil)
}

// Publish stores rec and waits for JetStream's ack, or for ctx to end. It
// does not go through the buffer: the caller learns the outcome directly.
// A record larger than the broker accepts is ErrTooLarge.
func (p *Publisher) Publish(ctx context.Context, rec *spec.Record) error {
	data := rec.AppendJSON(make([]byte, 0, rec.Size()))
	if len(data) > p.maxData {
		p.metrics.TooLarge()
		return fmt.Errorf("%w: %d bytes, max %d", ErrTooLarge, len(data), p.maxData)
	}
	_, err := p.js.Publish(ctx, rec.Subject(), data, jetstream.WithMsgID(rec.ID))
	if err != nil {
		p.metrics.PublishFailed()
		return fmt.Errorf("publish record: %w", err)
	}
	p.metrics.Published(string(rec.Source))
	return nil
}

// maxData leaves room under the server's max_payload for the headers.
func maxData(nc *nats.Conn) int {
	const headerRoom = 1 << 10
	return int(nc.MaxPayload()) - headerRoom
}

// Held is the number of records not yet stored.
func (p *Publisher) Held() int64 { return p.held.Load() }

// run is the one sender. flight holds what was sent and awaits its ack,
// in order; redo what failed, in order, to go again before anything newer.
func (p *Publisher) run() {
	defer p.done.Done()
	var flight, redo []*pending
	rounds := 0
	for {
		if len(redo) > 0 && len(flight) == 0 && !p.await(rounds) {
			p.abandon(nil, redo)
			return
		}
		for len(redo) > 0 && len(flight) < p.window {
			it := redo[0]
			redo = redo[1:]
			flight = append(flight, it)
			if !p.send(it) {
				redo, flight = append(p.settle(flight), redo...), nil
				rounds++
				break
			}
		}
		if len(redo) > 0 && len(flight) == 0 {
			continue
		}
		var queue chan *pending
		if len(redo) == 0 && len(flight) < p.window {
			queue = p.queue
		}
		var head *pending
		var ok <-chan *jetstream.PubAck
		var fail <-chan error
		if len(flight) > 0 {
			head = flight[0]
			ok, fail = head.future.Ok(), head.future.Err()
		}
		select {
		case it := <-queue:
			flight = append(flight, it)
			if !p.send(it) {
				redo, flight = p.settle(flight), nil
				rounds++
			}
		case <-ok:
			p.finish(head, nil)
			flight = flight[1:]
			if len(flight) == 0 && len(redo) == 0 {
				rounds = 0
			}
		case err := <-fail:
			head.err = err
			redo, flight = append(p.settle(flight), redo...), nil
			rounds++
		case <-p.stopping:
			p.abandon(flight, redo)
			return
		}
	}
}

// send publishes it asynchronously. It refuses to while the connection is
// not up: a record sent into a reconnect could be stored before an older
// one that was lost with the old connection.
func (p *Publisher) send(it *pending) bool {
	it.future, it.err = nil, nil
	if !p.nc.IsConnected() {
		it.err = nats.ErrConnectionReconnecting
		return false
	}
	msg := &nats.Msg{Subject: it.subject, Data: it.data, Header: nats.Header{jetstream.MsgIDHeader: []string{it.id}}}
	f, err := p.js.PublishMsgAsync(msg)
	if err != nil {
		it.err = err
		return false
	}
	it.future = f
	return true
}

// settle waits until every publish of flight has its answer (each is
// bounded by the ack timeout, and all fail at once when the connection
// drops), finishes those that were stored and returns the others, in
// their order.
func (p *Publisher) settle(flight []*pending) []*pending {
	var failed []*pending
	for _, it := range flight {
		if it.future != nil && it.err == nil {
			select {
			case <-it.future.Ok():
				p.finish(it, nil)
				continue
			case err := <-it.future.Err():
				it.err = err
			}
		}
		failed = append(failed, it)
	}
	if len(failed) > 0 {
		p.metrics.PublishFailed()
		p.warn("publishing records failed; pausing, then sending them again in order", "exchange", failed[0].id, "records", len(failed), "err", failed[0].err)
	}
	return failed
}

// await pauses before round+1 of sending the failed window again, until
// the connection is up; it returns false when the publisher stops first.
func (p *Publisher) await(round int) bool {
	pause := min(retryPause<<min(round, 8), maxRetryPause)
	if round == 0 {
		pause = 0
	}
	timer := time.NewTimer(pause)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-p.stopping:
		return false
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !p.nc.IsConnected() {
		select {
		case <-tick.C:
		case <-p.stopping:
			return false
		}
	}
	return true
}

// abandon ends the sender: what was sent gets its answer (bounded by the
// ack timeout), what never was is reported as not stored.
func (p *Publisher) abandon(flight, redo []*pending) {
	for _, it := range flight {
		if it.future == nil || it.err != nil {
			p.finish(it, ErrStopped)
			continue
		}
		select {
		case <-it.future.Ok():
			p.finish(it, nil)
		case <-it.future.Err():
			p.finish(it, ErrStopped)
		}
	}
	for _, it := range redo {
		p.finish(it, ErrStopped)
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

// warn logs at most once a second, so a broker outage does not flood the log.
func (p *Publisher) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := p.lastWarn.Load()
	if now-last < int64(time.Second) || !p.lastWarn.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn(msg, append(args, "held", p.held.Load())...)
}

// Stop waits until every held record is stored or ctx ends, then stops
// the publisher; what it still held then is reported through done with
// ErrStopped, counted in chattap_records_lost_total and logged, and Stop
// returns an error saying how many. Enqueue refuses new records once Stop
// gave up waiting. Stop is idempotent: a second call returns the first
// one's result.
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
			p.stopErr = fmt.Errorf("stopped with %d records not stored", n)
			p.log.Error("publisher stopped before the broker stored every record", "lost", n)
		}
	})
	return p.stopErr
}
