package sinks

import (
	"context"
	"sync"
	"time"

	"github.com/chattap/chattap/spec"
)

// item is one Delivery waiting in a batcher with its outcome callback.
type item struct {
	d    Delivery
	done func(error)
}

// batcher gathers Deliveries into batches of at most size events (fewer
// for an event being isolated: a batch holds at most the smallest
// isolationCap among its events) and spec.MaxBatchBytes, waits at most linger for a batch to fill, and hands
// each batch to send on one of at most workers goroutines. send must call
// every item's done. It is what the webhook and file sinks share;
// analytics-go does its own batching for Segment.
type batcher struct {
	size   int
	linger time.Duration
	send   func([]item)

	mu     sync.RWMutex // held for reading while sending on in, for writing to close it
	closed bool
	in     chan item
	// quit is closed first by close, so an add blocked on a full queue
	// gives up at once instead of holding mu until a send returns.
	quit     chan struct{}
	quitOnce sync.Once

	slots   chan struct{} // one per running send
	sending sync.WaitGroup
	loopEnd chan struct{}
}

func newBatcher(size int, linger time.Duration, workers int, send func([]item)) *batcher {
	b := &batcher{
		size:    max(1, min(size, spec.MaxBatchMessages)),
		linger:  linger,
		send:    send,
		in:      make(chan item, max(1, size)),
		quit:    make(chan struct{}),
		slots:   make(chan struct{}, max(1, workers)),
		loopEnd: make(chan struct{}),
	}
	go b.loop()
	return b
}

// add queues it; it blocks while the queue is full. Once close began it
// reports ErrClosed.
func (b *batcher) add(it item) {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		it.done(ErrClosed)
		return
	}
	select {
	case b.in <- it:
		b.mu.RUnlock()
	case <-b.quit:
		b.mu.RUnlock()
		it.done(ErrClosed)
	}
}

func (b *batcher) loop() {
	defer close(b.loopEnd)
	var (
		batch []item
		bytes int
		limit = b.size // the smallest isolationCap in batch
		timer = time.NewTimer(time.Hour)
	)
	timer.Stop()
	flush := func() {
		timer.Stop()
		if len(batch) == 0 {
			return
		}
		out := batch
		batch, bytes, limit = nil, 0, b.size
		b.slots <- struct{}{}
		b.sending.Add(1)
		go func() {
			defer func() { <-b.slots; b.sending.Done() }()
			b.send(out)
		}()
	}
	for {
		select {
		case it, ok := <-b.in:
			if !ok {
				flush()
				return
			}
			// +1 for the comma; the envelope's own bytes are allowed for.
			// An event being isolated goes in a batch of at most its cap:
			// a separate request, sent alongside the others, rather than
			// one more request in a row within the same send.
			c := isolationCap(b.size, it.d.Isolation)
			if len(batch) > 0 && (bytes+len(it.d.Raw)+1 > spec.MaxBatchBytes-1024 || len(batch) >= c) {
				flush()
			}
			limit = min(limit, c)
			batch = append(batch, it)
			bytes += len(it.d.Raw) + 1
			if len(batch) == 1 {
				timer.Reset(b.linger)
			}
			if len(batch) >= limit {
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// close stops intake, sends what is queued and waits until every send has
// returned or ctx ends.
func (b *batcher) close(ctx context.Context) error {
	b.quitOnce.Do(func() { close(b.quit) })
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.in)
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		<-b.loopEnd
		b.sending.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
