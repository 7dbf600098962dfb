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
func sendIsolating(msgs []json.RawMessage, post func([]json.RawMessage) error) []error {
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
	if len(msgs) > 0 {
		send(0, len(msgs))
	}
	return out
}
