package main

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// receiver is a Segment-compatible /v1/batch endpoint that counts
// messages by messageId and how long each took from its timestamp (the
// moment chattap's tap saw the event) to arriving here.
type receiver struct {
	auth string // the expected Authorization header

	mu        sync.Mutex
	seen      map[string]struct{}
	dups      int64
	requests  int64
	refused   int64
	delays    latencies
	first     time.Time
	last      time.Time // when the last new messageId arrived
	noStamp   int64
	withoutID int64
}

func newReceiver(writeKey string) *receiver {
	return &receiver{
		auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(writeKey+":")),
		seen: make(map[string]struct{}),
	}
}

// batch is the part of Segment's batch body the receiver reads.
type batch struct {
	Batch []struct {
		MessageID string    `json:"messageId"`
		Timestamp time.Time `json:"timestamp"`
	} `json:"batch"`
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/batch" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != rc.auth {
		rc.mu.Lock()
		rc.refused++
		rc.mu.Unlock()
		http.Error(w, `{"error":"invalid write key"}`, http.StatusUnauthorized)
		return
	}
	var body io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, `{"error":"bad gzip"}`, http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	var b batch
	if err := json.NewDecoder(io.LimitReader(body, 4<<20)).Decode(&b); err != nil {
		http.Error(w, `{"error":"invalid JSON"}`, http.StatusBadRequest)
		return
	}
	rc.record(&b, time.Now())
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"success":true}`)
}

func (rc *receiver) record(b *batch, now time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if rc.first.IsZero() {
		rc.first = now
	}
	for _, m := range b.Batch {
		if m.MessageID == "" {
			rc.withoutID++
			continue
		}
		if _, ok := rc.seen[m.MessageID]; ok {
			rc.dups++
			continue
		}
		rc.seen[m.MessageID] = struct{}{}
		rc.last = now
		if m.Timestamp.IsZero() {
			rc.noStamp++
			continue
		}
		rc.delays.add(now.Sub(m.Timestamp))
	}
}

// receiverStats is a snapshot of what the receiver counted.
type receiverStats struct {
	Distinct   int
	Duplicates int64
	Requests   int64
	Refused    int64
	NoID       int64
	First      time.Time
	Last       time.Time
}

func (rc *receiver) stats() receiverStats {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return receiverStats{Distinct: len(rc.seen), Duplicates: rc.dups, Requests: rc.requests, Refused: rc.refused, NoID: rc.withoutID, First: rc.first, Last: rc.last}
}

// takeDelays returns the delivery delays recorded since the last reset.
func (rc *receiver) takeDelays() *latencies {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	d := rc.delays
	rc.delays = latencies{}
	return &d
}

// reset forgets everything: each scenario starts from zero.
func (rc *receiver) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seen = make(map[string]struct{})
	rc.dups, rc.requests, rc.refused, rc.noStamp, rc.withoutID = 0, 0, 0, 0, 0
	rc.delays = latencies{}
	rc.first, rc.last = time.Time{}, time.Time{}
}
