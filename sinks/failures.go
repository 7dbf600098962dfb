package sinks

import "sync"

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
type failures struct {
	mu sync.Mutex
	n  map[uint64]int
}

// add counts one more failed delivery of the event at seq and returns its
// count so far.
func (f *failures) add(seq uint64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = make(map[uint64]int)
	}
	if _, ok := f.n[seq]; !ok && len(f.n) >= maxCountedEvents {
		// Forget any one: that event is merely retried longer.
		for k := range f.n {
			delete(f.n, k)
			break
		}
	}
	f.n[seq]++
	return f.n[seq]
}

// forget drops the count of an event that is settled for good.
func (f *failures) forget(seq uint64) {
	f.mu.Lock()
	delete(f.n, seq)
	f.mu.Unlock()
}
