package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestBatcherCloseKeepsItsDeadline: a send stuck on a slow destination and
// an add blocked on the full queue must not hold close past its deadline.
func TestBatcherCloseKeepsItsDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	b := newBatcher(1, time.Millisecond, 1, func(items []item) {
		<-release
		for _, it := range items {
			it.done(nil)
		}
	})
	outcomes := make(chan error, 8)
	add := func() { b.add(item{done: func(err error) { outcomes <- err }}) }
	add()    // taken by the one send, which is stuck
	add()    // waits in the loop for a send slot
	add()    // fills the queue
	go add() // blocks on the full queue, holding the read lock
	time.Sleep(50 * time.Millisecond)

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		closed <- b.close(ctx)
	}()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("close = %v, want the deadline's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("close did not return while a send was stuck")
	}
	select {
	case err := <-outcomes:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("the blocked add got %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked add never got an outcome")
	}
}

// TestBatcherGivesAnIsolatedEventASmallBatch: an event at isolation level
// 2 of a batch size of 8 goes in a batch of at most 2, apart from the
// batch before it, and the batches after it are full size again.
func TestBatcherGivesAnIsolatedEventASmallBatch(t *testing.T) {
	var sizes []int
	sent := make(chan int, 16)
	b := newBatcher(8, time.Hour, 1, func(items []item) {
		sent <- len(items)
		for _, it := range items {
			it.done(nil)
		}
	})
	add := func(level int) { b.add(item{d: Delivery{Isolation: level}, done: func(error) {}}) }
	for range 7 {
		add(0)
	}
	add(2)
	for range 10 {
		add(0)
	}
	if err := b.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(sent)
	for n := range sent {
		sizes = append(sizes, n)
	}
	if want := []int{7, 2, 8, 1}; !slices.Equal(sizes, want) {
		t.Errorf("batches of %v events, want %v", sizes, want)
	}
}

// TestSendIsolatingCutsByCap: a request holds at most the smallest cap
// among its events, in order.
func TestSendIsolatingCutsByCap(t *testing.T) {
	msgs := make([]json.RawMessage, 6)
	var lens []int
	sendIsolating(msgs, []int{4, 4, 1, 4, 4, 4}, func(m []json.RawMessage) error {
		lens = append(lens, len(m))
		return nil
	})
	if want := []int{2, 1, 3}; !slices.Equal(lens, want) {
		t.Errorf("requests of %v events, want %v", lens, want)
	}
	if c := isolationCap(100, 6); c != 1 {
		t.Errorf("isolationCap(100, 6) = %d, want 1", c)
	}
}
