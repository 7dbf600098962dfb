// Package sinkstest holds what tests of sinks share: a Segment-compatible
// /v1/batch receiver, sample events, and the conformance test every Sink
// must pass.
package sinkstest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chattap/chattap/spec"
)

// Receiver is a local HTTP server that speaks Segment's /v1/batch: it
// checks Basic auth base64(writeKey+":") when WriteKey is set, and records
// every message of every batch it accepts, by messageId. Respond, when
// set, may refuse a request. It is safe for concurrent use.
type Receiver struct {
	*httptest.Server
	WriteKey string

	mu       sync.Mutex
	respond  func(n int, batch []spec.Message) (int, http.Header)
	requests int
	counts   map[string]int
	arrived  map[string]time.Time
	msgs     map[string]json.RawMessage
	bodies   [][]byte
	headers  []http.Header
}

// NewReceiver starts a Receiver that the test closes when it ends.
func NewReceiver(t testing.TB, writeKey string) *Receiver {
	t.Helper()
	r := &Receiver{WriteKey: writeKey, counts: map[string]int{}, arrived: map[string]time.Time{}, msgs: map[string]json.RawMessage{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

// BasicAuth is the Authorization header value for writeKey.
func BasicAuth(writeKey string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(writeKey+":"))
}

// SetRespond makes f decide every later request's answer: n counts
// requests from 1; a status of 0 or 2xx accepts the batch. f may sleep to
// simulate a slow or hanging destination.
func (r *Receiver) SetRespond(f func(n int, batch []spec.Message) (status int, header http.Header)) {
	r.mu.Lock()
	r.respond = f
	r.mu.Unlock()
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/batch" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.WriteKey != "" && req.Header.Get("Authorization") != BasicAuth(r.WriteKey) {
		http.Error(w, "bad write key", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	var env struct {
		Batch []json.RawMessage `json:"batch"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	batch := make([]spec.Message, len(env.Batch))
	for i, raw := range env.Batch {
		if err := json.Unmarshal(raw, &batch[i]); err != nil {
			http.Error(w, "bad message", http.StatusBadRequest)
			return
		}
	}
	r.mu.Lock()
	r.requests++
	n, respond := r.requests, r.respond
	r.mu.Unlock()
	if respond != nil {
		if status, h := respond(n, batch); status != 0 && (status < 200 || status > 299) {
			for k, vs := range h {
				w.Header()[k] = vs
			}
			http.Error(w, http.StatusText(status), status)
			return
		}
	}
	r.mu.Lock()
	now := time.Now()
	for i, m := range batch {
		r.counts[m.MessageID]++
		if _, ok := r.msgs[m.MessageID]; !ok {
			r.msgs[m.MessageID] = env.Batch[i]
			r.arrived[m.MessageID] = now
		}
	}
	r.bodies = append(r.bodies, body)
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"success":true}`)
}

// Unique is how many distinct messageIds were accepted.
func (r *Receiver) Unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.counts)
}

// Count is how many times id was accepted.
func (r *Receiver) Count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[id]
}

// Counts is how many times each messageId was accepted.
func (r *Receiver) Counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.counts))
	for k, v := range r.counts {
		out[k] = v
	}
	return out
}

// Arrived is when each messageId was first accepted.
func (r *Receiver) Arrived() map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]time.Time, len(r.arrived))
	for k, v := range r.arrived {
		out[k] = v
	}
	return out
}

// Messages are the accepted messages by messageId (the first copy).
func (r *Receiver) Messages() map[string]json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]json.RawMessage, len(r.msgs))
	for k, v := range r.msgs {
		out[k] = v
	}
	return out
}

// Bodies are the accepted request bodies, in order, with their headers.
func (r *Receiver) Bodies() ([][]byte, []http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...), append([]http.Header(nil), r.headers...)
}

// Requests counts every request that reached the batch handler.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// WaitUnique waits until n distinct messageIds were accepted, or fails the
// test after timeout.
func (r *Receiver) WaitUnique(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.Unique() < n {
		if time.Now().After(deadline) {
			t.Fatalf("receiver has %d of %d events after %v", r.Unique(), n, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
