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
// later one (so nats.go's own retry of "no responders" is off, see send).
// The connection refuses publishes while it reconnects (see
// broker.Connect), so nothing newer slips through in the meantime.
//
// After a failure the window opens again only once the broker has stored
// something: the first record of a resend goes alone (the probe), and
// the rest follow once it is acknowledged. A broker that fails a round
// often fails it for a while and then comes back in the middle of one
// (JetStream restarted on a store that takes writes again, a stream
// leader elected): a whole window resent then would have its first
// records answered "no responders" or lost with the old stream, and the
// later ones stored, ahead of them. With the probe, nothing later is in
// flight while the broker may still drop a record. Case 9 of the fault
// suite (RELIABILITY.md) stored held records behind newer ones across a
// JetStream restart until the probe; it costs one round trip per failed
// round.
//
// One case still leaves a record behind a later one, and no resend can
// undo it: a publish of a full window (the broker answered the probe)
// fails while a later one of the same window, already sent, is stored.
// JetStream stores in the order it receives on one connection, so this
// takes an answer that refuses the earlier record but not the later: "no
// responders" or a JetStream error while a stream's leader changes (a
// cluster), or a timed-out publish the old leader never stored. Sending
// the later one again would not help: JetStream drops it as a duplicate,
// where it stands. The earlier record is stored right after the window, so
// it is late by less than one window; the mapper maps it when it comes, as
// the conversation's latest Observation: its events keep their own
// received_at timestamps and messageIds, while what the mapper derives
// from order (which message opened the conversation, which state a later
// event sees) follows the stream. A dropped connection fails the whole
// window at once and JetStream has stored a prefix of it, so order holds
// there.
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
// JetStream stored rec, with ErrStopped when it never will, with
// ErrTooLarge when the broker refused it for its size (it is dropped,
// counted as lost and logged, not sent again). Enqueue
// returns ErrBufferFull or ErrStopped itself (and does not call done) when
// it does not take rec.
func (p *Publisher) Enqueue(rec *spec.Record, done func(error)) error {
	data := p.encode(rec)
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.stopped {
		// Stop already counted what it held; this one came later (an
		// exchange still served after intake stopped), and nothing but
		// this says so in async mode, where the tap ignores the error.
		p.lost.Add(1)
		p.metrics.Lost(1)
		p.log.Error("record arrived after the publisher stopped: not stored", "exchange", rec.ID, "subject", rec.Subject())
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
// reason: the event is known to have happened, and nothing blocks. When
// even every payload left out is too large (thousands of tiny events in
// one answer), the answer's events are one undecodable event that says
// how many there were, so the record always fits.
//
// Enqueue calls it on the request path, so its cost is linear: the
// record is sized arithmetically, as its length without events plus each
// event's, and encoded once more at the end, instead of once per payload
// left out.
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
	// total is len(stub.AppendJSON(nil)), kept up to date as events change.
	total := len(data)
	scratch := make([]byte, 0, 512)
	for _, i := range bySize {
		e := &stub.Events[i]
		if size(e) == 0 {
			break // the rest have no payload either: leaving it out saves nothing
		}
		before := len(e.AppendJSON(scratch[:0]))
		*e = strippedEvent(e, len(data), p.maxData)
		total += len(e.AppendJSON(scratch[:0])) - before
		if total <= p.maxData {
			return stub.AppendJSON(make([]byte, 0, total))
		}
	}
	if len(rec.Events) == 1 {
		return stub.AppendJSON(nil) // the broker refuses it; run drops it, counted and logged
	}
	stub.Events = []spec.RecordEvent{rec.Events[0], collapsed(rec, len(data), p.maxData)}
	if out := stub.AppendJSON(nil); len(out) <= p.maxData {
		return out
	}
	stub.Events[0] = strippedEvent(&rec.Events[0], len(data), p.maxData)
	return stub.AppendJSON(nil)
}

// strippedEvent is e without its payload, undecodable, with the reason.
func strippedEvent(e *spec.RecordEvent, recordBytes, max int) spec.RecordEvent {
	return spec.RecordEvent{Source: e.Source, Kind: spec.KindUndecodable, ConversationID: e.ConversationID,
		Error: fmt.Sprintf("%s (record of %d bytes, max %d): payload of %d bytes not recorded", ErrTooLarge, recordBytes, max, len(e.Payload)+len(e.PayloadRaw))}
}

// collapsed is the one event that stands for all of the answer's events
// of rec (rec.Events[1:]) when even their stubs do not fit.
func collapsed(rec *spec.Record, recordBytes, max int) spec.RecordEvent {
	src := rec.Source
	if len(rec.Events) > 1 {
		src = rec.Events[1].Source
	}
	payload := 0
	for i := 1; i < len(rec.Events); i++ {
		payload += len(rec.Events[i].Payload) + len(rec.Events[i].PayloadRaw)
	}
	return spec.RecordEvent{Source: src, Kind: spec.KindUndecodable,
		Error: fmt.Sprintf("%s (record of %d bytes, max %d): %d events of the answer, %d bytes of payload, not recorded", ErrTooLarge, recordBytes, max, len(rec.Events)-1, payload)}
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
	// probing: a round failed and nothing has been stored since; the
	// window is one record (the probe) until something is.
	probing := false
	for {
		if len(redo) > 0 && len(flight) == 0 && !p.await(rounds) {
			p.abandon(nil, redo)
			return
		}
		window := p.window
		if probing {
			window = 1
		}
		for len(redo) > 0 && len(flight) < window {
			it := redo[0]
			redo = redo[1:]
			flight = append(flight, it)
			if !p.send(it) {
				redo, flight = append(p.settle(flight), redo...), nil
				rounds, probing = rounds+1, true
				break
			}
		}
		if len(redo) > 0 && len(flight) == 0 {
			continue
		}
		var queue chan *pending
		if len(redo) == 0 && len(flight) < window {
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
				rounds, probing = rounds+1, true
			}
		case <-ok:
			p.finish(head, nil)
			flight = flight[1:]
			probing = false // stored: the broker takes writes again
			if len(flight) == 0 && len(redo) == 0 {
				rounds = 0
			}
		case err := <-fail:
			head.err = err
			redo, flight = append(p.settle(flight), redo...), nil
			rounds, probing = rounds+1, true
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
	// No retries by nats.go: it would send a publish answered "no
	// responders" again on a timer of its own, behind this gate, and a
	// later record sent meanwhile would be stored first. The failure
	// comes back here, and the window is sent again in order.
	f, err := p.js.PublishMsgAsync(msg, jetstream.WithRetryAttempts(0))
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
// their order. Order holds when the failed are a suffix of flight; see
// Publisher for the one case where they are not.
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
		if refusedForSize(it.err) {
			// Sent again it would be refused again, for ever, holding back
			// every later record. encode makes every record fit the
			// connection's max_payload, so this is a stream whose
			// max_msg_size is smaller, or a record whose caller's event alone
			// is too large: dropped, counted and logged with its id.
			p.log.Error("record refused by the broker as too large: dropped", "exchange", it.id, "subject", it.subject, "bytes", len(it.data), "err", it.err)
			p.finish(it, fmt.Errorf("%w: %w", ErrTooLarge, it.err))
			continue
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

// refusedForSize is a refusal that no resend can cure: the message is
// larger than the connection's max_payload or the stream's max_msg_size.
func refusedForSize(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum)
}

func (p *Publisher) finish(it *pending, err error) {
	switch {
	case err == nil:
		p.metrics.Published(it.source)
	case errors.Is(err, ErrStopped), errors.Is(err, ErrTooLarge):
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
