package sinks

import (
	"context"
	"errors"
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
