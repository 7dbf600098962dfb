package sinks_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/sinks/sinkstest"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const writeKey = "wk_test_secret"

// fast are delivery options for tests: small batches, short lingers and
// backoffs, so that nothing waits on a clock for long.
func fast() sinks.DeliveryOptions {
	return sinks.DeliveryOptions{
		MaxDeliveries: 50,
		MaxInFlight:   200,
		BatchSize:     20,
		FlushInterval: 10 * time.Millisecond,
		BackoffMin:    20 * time.Millisecond,
		BackoffMax:    200 * time.Millisecond,
		AckWait:       5 * time.Second,
	}
}

// requestTimeout is the sinks' request timeout in tests: short, so the
// tests of a slow destination run fast. The conformance suite, which
// wants every delivery to succeed on a busy machine under -race, uses
// patientTimeout instead.
const (
	requestTimeout = 300 * time.Millisecond
	patientTimeout = 5 * time.Second
)

// patient is fast with an ack wait that fits patientTimeout.
func patient() sinks.DeliveryOptions {
	o := fast()
	o.AckWait = 4 * patientTimeout
	return o
}

func newSegment(t testing.TB, r *sinkstest.Receiver, o sinks.DeliveryOptions) *sinks.Segment {
	t.Helper()
	return newSegmentTimeout(t, r, o, requestTimeout)
}

func newSegmentTimeout(t testing.TB, r *sinkstest.Receiver, o sinks.DeliveryOptions, timeout time.Duration) *sinks.Segment {
	t.Helper()
	s, err := sinks.NewSegment(sinks.SegmentOptions{WriteKey: writeKey, Endpoint: r.URL, Timeout: timeout}, o, sinks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newWebhook(t testing.TB, r *sinkstest.Receiver, o sinks.DeliveryOptions) *sinks.Webhook {
	t.Helper()
	return newWebhookTimeout(t, r, o, requestTimeout)
}

func newWebhookTimeout(t testing.TB, r *sinkstest.Receiver, o sinks.DeliveryOptions, timeout time.Duration) *sinks.Webhook {
	t.Helper()
	s, err := sinks.NewWebhook(sinks.WebhookOptions{
		URL:     r.URL + "/v1/batch",
		Headers: "Authorization: " + sinkstest.BasicAuth(writeKey) + "\nX-Source: chattap, tests",
		Secret:  "s3cret",
		Timeout: timeout,
	}, o, sinks.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// httpSinks are the sinks that speak /v1/batch, for the failure tables.
var httpSinks = []struct {
	name string
	make func(testing.TB, *sinkstest.Receiver, sinks.DeliveryOptions) sinks.Sink
}{
	{"segment", func(t testing.TB, r *sinkstest.Receiver, o sinks.DeliveryOptions) sinks.Sink {
		return newSegment(t, r, o)
	}},
	{"webhook", func(t testing.TB, r *sinkstest.Receiver, o sinks.DeliveryOptions) sinks.Sink {
		return newWebhook(t, r, o)
	}},
}

func publish(t testing.TB, js jetstream.JetStream, msgs ...spec.Message) {
	t.Helper()
	for _, m := range msgs {
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		publishRaw(t, js, spec.EventSubject(&m), m.MessageID, data)
	}
}

func publishRaw(t testing.TB, js jetstream.JetStream, subject, id string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg := nats.NewMsg(subject)
	msg.Data = data
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}

func startRunner(t testing.TB, js jetstream.JetStream, o sinks.DeliveryOptions, ss ...sinks.Sink) *sinks.Runner {
	t.Helper()
	return startRunnerWith(t, js, o, sinks.Deps{}, ss...)
}

// startRunnerWith is startRunner with deps (its metrics, mostly).
func startRunnerWith(t testing.TB, js jetstream.JetStream, o sinks.DeliveryOptions, deps sinks.Deps, ss ...sinks.Sink) *sinks.Runner {
	t.Helper()
	r, err := sinks.NewRunner(js, o, deps, ss...)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Stop(ctx)
	})
	return r
}

func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dlq(t testing.TB, js jetstream.JetStream, f sinks.DLQFilter) []sinks.DLQEntry {
	t.Helper()
	var out []sinks.DLQEntry
	if err := sinks.ScanDLQ(t.Context(), js, f, func(e sinks.DLQEntry) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// linesByID reads JSON lines by messageId.
func linesByID(data []byte) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m spec.Message
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out[m.MessageID] = append(json.RawMessage(nil), sc.Bytes()...)
		}
	}
	return out
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b
}
