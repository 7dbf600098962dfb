package sinks

import (
	"context"
	"sync"
)

// tracker remembers the outcome callbacks a sink has not called yet, so
// that each is called exactly once and Close can settle the ones left
// with ErrClosed.
type tracker struct {
	mu   sync.Mutex
	next uint64
	open map[uint64]func(error)
}

// track registers done and returns the callback to use instead: it calls
// done at most once, whoever calls it first.
func (t *tracker) track(done func(error)) func(error) {
	t.mu.Lock()
	if t.open == nil {
		t.open = make(map[uint64]func(error))
	}
	id := t.next
	t.next++
	t.open[id] = done
	t.mu.Unlock()
	return func(err error) {
		t.mu.Lock()
		f, ok := t.open[id]
		delete(t.open, id)
		t.mu.Unlock()
		if ok {
			f(err)
		}
	}
}

// abandon calls every open callback with err.
func (t *tracker) abandon(err error) {
	t.mu.Lock()
	open := t.open
	t.open = nil
	t.mu.Unlock()
	for _, f := range open {
		f(err)
	}
}

// closeWith runs wait (which flushes a sink) until ctx ends; then every
// outcome still unknown is settled with ErrClosed.
func (t *tracker) closeWith(ctx context.Context, wait func(context.Context) error) error {
	err := wait(ctx)
	t.abandon(ErrClosed)
	return err
}

// closedContext is a context that has already ended, for closing a sink
// without waiting.
func closedContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
