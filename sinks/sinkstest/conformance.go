package sinkstest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/spec"
)

// Harness is one sink under test and a view of its destination.
type Harness struct {
	Sink sinks.Sink
	// Received returns what the destination holds, by messageId.
	Received func() map[string]json.RawMessage
}

// Conformance checks the promises of the Sink interface that every sink
// must keep. newSink makes a fresh sink, with a healthy destination, for
// each subtest; the subtests close it.
func Conformance(t *testing.T, newSink func(t *testing.T) Harness) {
	t.Run("Name", func(t *testing.T) {
		h := newSink(t)
		defer closeSink(t, h.Sink)
		name := h.Sink.Name()
		if name == "" || spec.SubjectToken(name) != name || h.Sink.Name() != name {
			t.Errorf("Name() = %q: want a stable, non-empty subject token", name)
		}
	})

	t.Run("DeliversEveryEventOnce", func(t *testing.T) {
		h := newSink(t)
		defer closeSink(t, h.Sink)
		events := Events("conf", 60)
		calls := make([]atomic.Int32, len(events))
		errs := make([]error, len(events))
		var wg sync.WaitGroup
		var all sync.WaitGroup
		all.Add(len(events))
		for g := range 4 { // concurrent callers
			wg.Go(func() {
				for i := g; i < len(events); i += 4 {
					h.Sink.Deliver(t.Context(), Delivery(t, events[i], uint64(i+1)), func(err error) {
						if calls[i].Add(1) == 1 {
							errs[i] = err
							all.Done()
						}
					})
				}
			})
		}
		wg.Wait()
		waitGroup(t, &all, 10*time.Second)
		time.Sleep(20 * time.Millisecond) // a second call would come now
		got := h.Received()
		for i, m := range events {
			if n := calls[i].Load(); n != 1 {
				t.Errorf("%s: done called %d times, want 1", m.MessageID, n)
			}
			if errs[i] != nil {
				t.Errorf("%s: outcome %v, want nil", m.MessageID, errs[i])
				continue
			}
			want, _ := json.Marshal(m)
			if !SameJSON(got[m.MessageID], want) {
				t.Errorf("%s: destination has\n%s\nwant\n%s", m.MessageID, got[m.MessageID], want)
			}
		}
	})

	t.Run("CloseFlushesAndSettlesEverything", func(t *testing.T) {
		h := newSink(t)
		events := Events("flush", 7)
		var settled atomic.Int32
		var mu sync.Mutex
		ok := map[string]bool{}
		for i, m := range events {
			h.Sink.Deliver(t.Context(), Delivery(t, m, uint64(i+1)), func(err error) {
				settled.Add(1)
				if err == nil {
					mu.Lock()
					ok[m.MessageID] = true
					mu.Unlock()
				} else if sinks.IsPermanent(err) {
					t.Errorf("%s: permanent failure on close: %v", m.MessageID, err)
				}
			})
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := h.Sink.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if n := settled.Load(); int(n) != len(events) {
			t.Fatalf("after Close, %d of %d outcomes known", n, len(events))
		}
		got := h.Received()
		mu.Lock()
		defer mu.Unlock()
		for id := range ok {
			if got[id] == nil {
				t.Errorf("%s reported delivered but the destination lacks it", id)
			}
		}
		if len(ok) != len(events) {
			t.Errorf("Close flushed %d of %d events", len(ok), len(events))
		}
	})

	t.Run("ClosedSinkRefusesRetryably", func(t *testing.T) {
		h := newSink(t)
		if err := h.Sink.Close(t.Context()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := h.Sink.Close(t.Context()); err != nil {
			t.Errorf("second Close: %v", err)
		}
		ch := make(chan error, 1)
		h.Sink.Deliver(t.Context(), Delivery(t, Events("late", 1)[0], 1), func(err error) { ch <- err })
		select {
		case err := <-ch:
			if !errors.Is(err, sinks.ErrClosed) || sinks.IsPermanent(err) {
				t.Errorf("Deliver after Close: %v, want ErrClosed (retryable)", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Deliver after Close never called done")
		}
	})
}

func closeSink(t *testing.T, s sinks.Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func waitGroup(t *testing.T, wg *sync.WaitGroup, timeout time.Duration) {
	t.Helper()
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("outcomes still unknown after %v", timeout)
	}
}
