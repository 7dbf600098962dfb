package sinks

import (
	"sync"
	"time"
)

// maxCountedEvents bounds the events a worker keeps a failure count for.
// An event's count costs a few dozen bytes; 65,536 of them is a backlog of
// failing events far beyond MaxInFlight.
const maxCountedEvents = 1 << 16

// failures counts, per event (its stream sequence on CHATTAP_EVENTS), the
// deliveries that failed in a way that counts towards MaxDeliveries.
//
// JetStream's NumDelivered cannot be that count: it also counts the
// deliveries the sink never answered (a watchdog timeout: the destination
// may well have accepted the event) and the refusals of a misconfigured
// destination (401, 403, 404: chattap's key or URL is wrong, not the
// event). A header or a KV entry per event cannot follow a redelivery
// either. So the count lives in the worker, and what it forgets (a
// restart, an eviction when full, another replica sharing the consumer)
// is forgotten on the side of more retries, never of an early dead
// letter: with R replicas and no restart an event gets up to
// R × MaxDeliveries counted failures. Safe for concurrent use.
//
// It also keeps each event's isolation level (see isolationCap): how small
// a request the event is sent in. The level rises with a counted failure
// only when the sink accepted some other event since the event's previous
// failure (or at its first failure): then the destination is up and
// refuses something in the event's request, so halving the request
// bisects down to the event that always fails, well before MaxDeliveries.
// In a plain outage nothing is accepted, so the backlog stays at level 1
// (half a batch) however long the outage lasts, and goes out in requests
// of BatchSize/2 for one round after it; new events go out in full
// batches at once.
type failures struct {
	mu sync.Mutex
	n  map[uint64]counted
}

type counted struct {
	first time.Time // the first counted failure
	n     int       // counted failures
	level int       // isolation level
	epoch uint64    // the sink's count of accepted events at the last failure
}

// add counts one more failed delivery of the event at seq, epoch being
// the sink's count of accepted events so far, and returns its count.
func (f *failures) add(seq, epoch uint64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = make(map[uint64]counted)
	}
	if _, ok := f.n[seq]; !ok && len(f.n) >= maxCountedEvents {
		// Forget any one: that event is merely retried longer.
		for k := range f.n {
			delete(f.n, k)
			break
		}
	}
	c := f.n[seq]
	if c.n == 0 {
		c.first = time.Now()
	}
	if c.n == 0 || c.epoch != epoch {
		c.level++
	}
	c.n++
	c.epoch = epoch
	f.n[seq] = c
	return c.n
}

// level is the isolation level of the event at seq: 0 for one that never
// failed.
func (f *failures) level(seq uint64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[seq].level
}

// forget drops the count of an event that is settled for good.
func (f *failures) forget(seq uint64) {
	f.mu.Lock()
	delete(f.n, seq)
	f.mu.Unlock()
}

// backlog is how many events have failed and are not settled yet, and
// when the oldest of them first failed. An event another replica
// delivered stays counted here until evicted: the figure is a hint for an
// operator, never a decision.
func (f *failures) backlog() (n int, oldest time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.n {
		if oldest.IsZero() || c.first.Before(oldest) {
			oldest = c.first
		}
	}
	return len(f.n), oldest
}
