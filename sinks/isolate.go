package sinks

import "encoding/json"

// sendIsolating sends msgs as one batch with post. When a batch of more
// than one event is refused in a way that may concern one event only (a
// 400, 413 or 422 for one bad event refuses all of them; see
// ClassifyStatus), it is split in halves and each half is sent on its own,
// down to single events, so that a permanent failure lands on exactly the
// events that cause it and the others are delivered. Any other failure
// (retryable, a misconfigured destination, a refusal of the request as a
// whole) applies to the whole (sub-)batch: splitting would only multiply
// requests that fail alike. It returns one outcome per event.
//
// A retryable failure says nothing about which event caused it, so msgs
// are first cut, in order, into requests of at most the smallest of their
// members' caps (caps[i] is msgs[i]'s isolationCap; nil: no cap): an
// event that keeps failing while others are accepted gets an ever smaller
// cap, so a destination that answers 500 to any request holding one
// poison event ends up refusing that event alone.
func sendIsolating(msgs []json.RawMessage, caps []int, post func([]json.RawMessage) error) []error {
	out := make([]error, len(msgs))
	var send func(lo, hi int)
	send = func(lo, hi int) {
		err := post(msgs[lo:hi])
		if hi-lo > 1 && splitsBatch(err) {
			mid := (lo + hi) / 2
			send(lo, mid)
			send(mid, hi)
			return
		}
		for i := lo; i < hi; i++ {
			out[i] = err
		}
	}
	for lo := 0; lo < len(msgs); {
		hi, limit := lo, len(msgs)
		for hi < len(msgs) {
			if caps != nil {
				limit = min(limit, caps[hi])
			}
			if hi-lo >= limit {
				break
			}
			hi++
		}
		hi = max(hi, lo+1)
		send(lo, hi)
		lo = hi
	}
	return out
}

// isolationCap is the most events a request holding an event at
// isolation level (Delivery.Isolation) may carry: the batch size halved
// per level, at least 1. With the default 100 events per batch the cap is
// 1 from level 6 on, far below the 20 failed deliveries (the default
// MaxDeliveries) that dead-letter an event: the events sent alongside a
// poison event fail a few times at most and are then delivered.
func isolationCap(batchSize, level int) int {
	if level >= 31 {
		return 1
	}
	return max(1, batchSize>>level)
}
