package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// worker runs one sink's consumer: it pulls events, hands them to the sink
// with at most MaxInFlight outstanding, and settles each by its outcome.
type worker struct {
	r    *Runner
	sink Sink
	name string
	log  *slog.Logger
	cons jetstream.Consumer

	sem         chan struct{}
	outstanding sync.WaitGroup
	ctx         context.Context // handed to Deliver; ends when the worker is gone
	cancel      context.CancelFunc

	// misconf is set while the destination refuses chattap itself.
	misconf atomic.Pointer[misconfiguration]
	// failures counts the failed deliveries that count towards
	// MaxDeliveries.
	failures failures
	// accepts counts the events the destination accepted.
	accepts atomic.Uint64
	// lastAccept and lastFailure are when (Unix nanoseconds) the
	// destination last accepted an event and last failed one with a
	// retryable answer: /readyz's lag (Runner.Health).
	lastAccept, lastFailure atomic.Int64

	mu       sync.Mutex
	stopping bool
	stopCh   chan struct{}
	it       jetstream.MessagesContext
	loopDone chan struct{}
}

func newWorker(ctx context.Context, r *Runner, s Sink) (*worker, error) {
	cfg, err := r.consumerConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	cons, err := r.js.CreateOrUpdateConsumer(ctx, spec.StreamEvents, cfg)
	if err != nil {
		return nil, fmt.Errorf("declare consumer %s: %w", cfg.Durable, err)
	}
	w := &worker{
		r: r, sink: s, name: s.Name(), cons: cons,
		log:      r.log.With("sink", s.Name()),
		sem:      make(chan struct{}, r.o.MaxInFlight),
		stopCh:   make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.lastAccept.Store(time.Now().UnixNano())
	return w, nil
}

// stopIntake makes the iterator hand out what it has buffered and end.
func (w *worker) stopIntake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping {
		return
	}
	w.stopping = true
	close(w.stopCh)
	if w.it != nil {
		w.it.Drain()
	}
}

func (w *worker) open() (jetstream.MessagesContext, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping {
		return nil, jetstream.ErrMsgIteratorClosed
	}
	it, err := w.cons.Messages(jetstream.PullMaxMessages(max(1, min(w.r.o.MaxInFlight, 2*w.r.o.BatchSize, 500))))
	if err != nil {
		return nil, err
	}
	w.it = it
	return it, nil
}

func (w *worker) loop() {
	defer close(w.loopDone)
	defer w.cancel()
	for {
		it, err := w.open()
		if err == nil {
			err = w.consume(it)
		}
		select {
		case <-w.stopCh:
			return
		default:
		}
		w.log.Warn("consumer interrupted; resuming", "err", err)
		select {
		case <-w.stopCh:
			return
		case <-time.After(time.Second):
		}
		// The consumer may have gone with its server; declare it again.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if cfg, err := w.r.consumerConfig(ctx, w.sink); err == nil {
			if c, err := w.r.js.CreateOrUpdateConsumer(ctx, spec.StreamEvents, cfg); err == nil {
				w.cons = c
			}
		}
		cancel()
	}
}

func (w *worker) consume(it jetstream.MessagesContext) error {
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return err
			}
			select {
			case <-w.stopCh:
				return err
			default:
			}
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				return err
			}
			w.log.Debug("pull", "err", err)
			continue
		}
		// Draining: an event not handed over yet goes back at once rather
		// than after AckWait.
		select {
		case w.sem <- struct{}{}:
		case <-w.stopCh:
			_ = msg.Nak()
			continue
		}
		select {
		case <-w.stopCh:
			<-w.sem
			_ = msg.Nak()
			continue
		default:
		}
		w.handle(msg)
	}
}

func (w *worker) handle(msg jetstream.Msg) {
	var seq uint64
	attempt := 1
	if md, err := msg.Metadata(); err == nil {
		seq, attempt = md.Sequence.Stream, int(md.NumDelivered)
	}
	d, err := NewDelivery(msg.Subject(), seq, attempt, msg.Data())
	if err != nil {
		w.settle(msg, d, err)
		<-w.sem
		return
	}
	d.Isolation = w.failures.level(seq)
	w.outstanding.Add(1)
	w.r.m.InFlight(w.name, 1)
	start := time.Now()
	var once sync.Once
	var watchdog atomic.Pointer[time.Timer]
	done := func(err error) {
		once.Do(func() {
			if t := watchdog.Load(); t != nil {
				t.Stop()
			}
			w.settle(msg, d, err)
			w.r.m.InFlight(w.name, -1)
			w.r.m.Observe(w.name, time.Since(start))
			<-w.sem
			w.outstanding.Done()
		})
	}
	// A sink that never calls back must not hold its slot until JetStream
	// redelivers behind its back: the watchdog settles the delivery as a
	// retryable timeout before the ack wait ends, and the sink's late
	// answer, if it ever comes, is ignored.
	limit := w.r.watchdog(w.sink)
	watchdog.Store(time.AfterFunc(limit, func() {
		done(Retryable(fmt.Errorf("%w within %v", errNoOutcome, limit), 0))
	}))
	w.sink.Deliver(w.ctx, d, done)
}
