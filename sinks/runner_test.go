package sinks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/sinks/sinkstest"
	"github.com/chattap/chattap/spec"
)

// TestRetryUntilTheReceiverRecovers: a receiver that fails for a while, in
// each of the ways a destination fails, gets every event once it recovers,
// and nothing is dead-lettered.
func TestRetryUntilTheReceiverRecovers(t *testing.T) {
	failures := []struct {
		name    string
		respond func(n int) (int, http.Header)
		// minGap is the least time between a refusal and the retry of
		// the same events (Retry-After honoured).
		minGap time.Duration
	}{
		{"500s", func(int) (int, http.Header) { return http.StatusInternalServerError, nil }, 0},
		{"503-408", func(n int) (int, http.Header) {
			if n%2 == 0 {
				return http.StatusRequestTimeout, nil
			}
			return http.StatusServiceUnavailable, nil
		}, 0},
		{"timeouts", func(int) (int, http.Header) { time.Sleep(600 * time.Millisecond); return 0, nil }, 0},
		{"429-retry-after", func(int) (int, http.Header) {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
		}, 900 * time.Millisecond},
	}
	for _, sk := range httpSinks {
		for _, f := range failures {
			t.Run(sk.name+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				srv := brokertest.Start(t)
				rcv := sinkstest.NewReceiver(t, writeKey)
				var (
					mu      sync.Mutex
					refused = map[string]time.Time{}
					tooSoon []string
				)
				rcv.SetRespond(func(n int, batch []spec.Message) (int, http.Header) {
					mu.Lock()
					defer mu.Unlock()
					now := time.Now()
					for _, m := range batch {
						if at, ok := refused[m.MessageID]; ok && now.Sub(at) < f.minGap {
							tooSoon = append(tooSoon, m.MessageID)
						}
					}
					if n > 3 {
						return 0, nil
					}
					for _, m := range batch {
						refused[m.MessageID] = now
					}
					mu.Unlock()
					status, h := f.respond(n)
					mu.Lock()
					return status, h
				})
				events := sinkstest.Events("retry", 40)
				publish(t, srv.JS, events...)
				startRunner(t, srv.JS, fast(), sk.make(t, rcv, fast()))
				rcv.WaitUnique(t, len(events), 20*time.Second)
				for _, m := range events {
					if rcv.Count(m.MessageID) == 0 {
						t.Errorf("%s missing", m.MessageID)
					}
				}
				if n := len(dlq(t, srv.JS, sinks.DLQFilter{})); n != 0 {
					t.Errorf("%d events dead-lettered, want none", n)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(refused) == 0 {
					t.Error("the receiver never refused anything: the test tests nothing")
				}
				if len(tooSoon) > 0 {
					t.Errorf("retried before Retry-After: %v", tooSoon)
				}
			})
		}
	}
}

// TestBadRequestDeadLettersExactlyThoseEvents: a 400 for a batch that holds
// a bad event puts exactly the bad events in the DLQ, with their headers,
// and delivers the rest.
func TestBadRequestDeadLettersExactlyThoseEvents(t *testing.T) {
	for _, sk := range httpSinks {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			srv := brokertest.Start(t)
			rcv := sinkstest.NewReceiver(t, writeKey)
			rcv.SetRespond(func(_ int, batch []spec.Message) (int, http.Header) {
				for _, m := range batch {
					if m.Properties[spec.PropMessageBody] == "poison" {
						return http.StatusBadRequest, nil
					}
				}
				return 0, nil
			})
			events := sinkstest.Events("bad", 30)
			var poison []string
			for _, i := range []int{1, 6, 21} {
				events[i].Properties[spec.PropMessageBody] = "poison"
				poison = append(poison, events[i].MessageID)
			}
			publish(t, srv.JS, events...)
			startRunner(t, srv.JS, fast(), sk.make(t, rcv, fast()))
			rcv.WaitUnique(t, len(events)-len(poison), 10*time.Second)
			waitUntil(t, 10*time.Second, "3 dead letters", func() bool { return len(dlq(t, srv.JS, sinks.DLQFilter{})) >= 3 })
			time.Sleep(100 * time.Millisecond) // anything else would show up now

			entries := dlq(t, srv.JS, sinks.DLQFilter{})
			var ids []string
			for _, e := range entries {
				ids = append(ids, e.ID)
				if e.Sink != sk.name || e.Attempts != 1 || !strings.Contains(e.Reason, "400") ||
					!strings.HasPrefix(e.Subject, spec.SubjectEventsPrefix) || e.EventSequence == 0 || e.Time.IsZero() {
					t.Errorf("dead letter %+v: want sink %s, 1 attempt, a 400 reason, subject, sequence and time", e, sk.name)
				}
			}
			slices.Sort(ids)
			slices.Sort(poison)
			if !slices.Equal(ids, poison) {
				t.Errorf("DLQ holds %v, want exactly %v", ids, poison)
			}
			if rcv.Unique() != len(events)-len(poison) {
				t.Errorf("receiver has %d events, want %d", rcv.Unique(), len(events)-len(poison))
			}
		})
	}
}

// TestRetryablePoisonIsIsolated: a destination that answers 500 to every
// request holding one chosen event, and 200 otherwise, gets every other
// event once; exactly the chosen one is dead-lettered after MaxDeliveries.
// Without isolation the events batched with it fail as often and are
// dead-lettered alongside.
func TestRetryablePoisonIsIsolated(t *testing.T) {
	for _, sk := range httpSinks {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			srv := brokertest.Start(t)
			rcv := sinkstest.NewReceiver(t, writeKey)
			events := sinkstest.Events("poison500", 60)
			poison := events[17].MessageID
			rcv.SetRespond(func(_ int, batch []spec.Message) (int, http.Header) {
				for _, m := range batch {
					if m.MessageID == poison {
						return http.StatusInternalServerError, nil
					}
				}
				return 0, nil
			})
			o := fast()
			// 20 events per batch: the cap is 1 from isolation level 4 on,
			// well below 12 failed deliveries.
			o.MaxDeliveries = 12
			// A linger longer than the backoff's jitter: the events NAKed
			// together come back in one batch, as in production, instead
			// of being spread apart by chance.
			o.FlushInterval = 300 * time.Millisecond
			publish(t, srv.JS, events...)
			startRunner(t, srv.JS, o, sk.make(t, rcv, o))
			rcv.WaitUnique(t, len(events)-1, 20*time.Second)
			waitUntil(t, 20*time.Second, "a dead letter", func() bool { return len(dlq(t, srv.JS, sinks.DLQFilter{})) >= 1 })
			time.Sleep(200 * time.Millisecond) // anything else would show up now

			entries := dlq(t, srv.JS, sinks.DLQFilter{})
			if len(entries) != 1 || entries[0].ID != poison || !strings.Contains(entries[0].Reason, "12 failed deliveries") {
				var ids []string
				for _, e := range entries {
					ids = append(ids, e.ID+": "+e.Reason)
				}
				t.Errorf("DLQ holds %v, want exactly %s after 12 failed deliveries", ids, poison)
			}
			for _, m := range events {
				if n := rcv.Count(m.MessageID); m.MessageID != poison && n != 1 {
					t.Errorf("%s delivered %d times, want once", m.MessageID, n)
				}
			}
		})
	}
}

// TestInvalidAndOversizeEventsAreDeadLettered: what no destination would
// take goes to the DLQ of every sink, and analytics-go's own size limit is
// honoured too.
func TestInvalidAndOversizeEventsAreDeadLettered(t *testing.T) {
	srv := brokertest.Start(t)
	rcv := sinkstest.NewReceiver(t, writeKey)
	good := sinkstest.Events("ok", 3)
	publish(t, srv.JS, good...)
	publishRaw(t, srv.JS, spec.SubjectEventsPrefix+"junk", "junk", []byte(`not json`))
	publishRaw(t, srv.JS, spec.SubjectEventsPrefix+"track", "noid", []byte(`{"type":"track","event":"Live Chat Message Sent","timestamp":"2026-11-21T10:00:00Z"}`))
	huge := sinkstest.Events("huge", 1)[0]
	huge.Properties[spec.PropMessageBody] = strings.Repeat("x", 40<<10)
	publish(t, srv.JS, huge)
	// Under Segment's 32 KB but over analytics-go's 32,000 bytes.
	near := sinkstest.Events("near", 2)[1]
	near.Properties[spec.PropMessageBody] = strings.Repeat("y", 32200)
	publish(t, srv.JS, near)

	startRunner(t, srv.JS, fast(), newSegment(t, rcv, fast()))
	rcv.WaitUnique(t, 3, 10*time.Second)
	waitUntil(t, 10*time.Second, "4 dead letters", func() bool { return len(dlq(t, srv.JS, sinks.DLQFilter{Sink: "segment"})) == 4 })
	reasons := map[string]string{}
	for _, e := range dlq(t, srv.JS, sinks.DLQFilter{}) {
		reasons[e.ID] = e.Reason
	}
	if !strings.Contains(reasons["huge-0"], "too big") || !strings.Contains(reasons["near-1"], "too big") {
		t.Errorf("oversize reasons: %q", reasons)
	}
	if !strings.Contains(reasons[""], "invalid") {
		t.Errorf("invalid reasons: %q", reasons)
	}
}

// TestGivesUpAfterMaxDeliveries: a destination that never recovers has the
// event dead-lettered after MaxDeliveries, not retried for ever.
func TestGivesUpAfterMaxDeliveries(t *testing.T) {
	srv := brokertest.Start(t)
	rcv := sinkstest.NewReceiver(t, writeKey)
	rcv.SetRespond(func(int, []spec.Message) (int, http.Header) { return http.StatusBadGateway, nil })
	o := fast()
	o.MaxDeliveries = 3
	publish(t, srv.JS, sinkstest.Events("dead", 1)...)
	reg := metrics.New()
	startRunnerWith(t, srv.JS, o, sinks.Deps{Metrics: metrics.NewSinks(reg)}, newWebhook(t, rcv, o))
	waitUntil(t, 10*time.Second, "a dead letter", func() bool { return len(dlq(t, srv.JS, sinks.DLQFilter{})) == 1 })
	e := dlq(t, srv.JS, sinks.DLQFilter{})[0]
	if e.Attempts != 3 || !strings.Contains(e.Reason, "after 3 failed deliveries") || !strings.Contains(e.Reason, "502") {
		t.Errorf("dead letter %+v", e)
	}
	lbl := map[string]string{"sink": "webhook"}
	if got := reg.Gather("chattap_sink_retried_total", map[string]string{"sink": "webhook", "class": "http_502"}); got != 2 {
		t.Errorf("retried = %v, want 2", got)
	}
	waitUntil(t, time.Second, "dead-letter metric", func() bool { return reg.Gather("chattap_sink_dead_lettered_total", lbl) == 1 })
	if got := reg.Gather("chattap_sink_in_flight", lbl); got != 0 {
		t.Errorf("in flight = %v, want 0", got)
	}
}

// TestStopAndRestartLosesNothing stops the runner and the embedded server
// in the middle of delivery, starts both again on the same store, and
// counts every event at the receiver.
func TestStopAndRestartLosesNothing(t *testing.T) {
	for _, sk := range httpSinks {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			rcv := sinkstest.NewReceiver(t, writeKey)
			rcv.SetRespond(func(int, []spec.Message) (int, http.Header) { time.Sleep(100 * time.Millisecond); return 0, nil })
			o := fast()
			o.BatchSize = 10
			o.MaxInFlight = 40
			o.AckWait = 2 * time.Second
			events := sinkstest.Events("restart", 300)

			srv := brokertest.StartIn(t, dir, broker.StreamOptions{})
			publish(t, srv.JS, events...)
			r, err := sinks.NewRunner(srv.JS, o, sinks.Deps{}, sk.make(t, rcv, o))
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, 10*time.Second, "some deliveries", func() bool { return rcv.Unique() >= 60 })
			// A short bound: some outcomes are still unknown when it ends.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			_ = r.Stop(ctx)
			cancel()
			srv.Stop()
			if n := rcv.Unique(); n >= len(events) {
				t.Fatalf("all %d delivered before the stop: the test tests nothing", n)
			}

			srv2 := brokertest.StartIn(t, dir, broker.StreamOptions{})
			startRunner(t, srv2.JS, o, sk.make(t, rcv, o))
			rcv.WaitUnique(t, len(events), 20*time.Second)
			for _, m := range events {
				if rcv.Count(m.MessageID) == 0 {
					t.Errorf("%s lost", m.MessageID)
				}
			}
		})
	}
}

// TestDeadSinkDoesNotHoldBackAnother: with one destination down, the other
// still receives every event while the first is still failing.
func TestDeadSinkDoesNotHoldBackAnother(t *testing.T) {
	srv := brokertest.Start(t)
	down := sinkstest.NewReceiver(t, writeKey)
	var stillDown atomic.Bool
	stillDown.Store(true)
	down.SetRespond(func(int, []spec.Message) (int, http.Header) {
		if stillDown.Load() {
			time.Sleep(50 * time.Millisecond)
			return http.StatusServiceUnavailable, nil
		}
		return 0, nil
	})
	up := sinkstest.NewReceiver(t, writeKey)
	o := fast()
	o.MaxInFlight = 20 // the dead sink has all of its 20 stuck at once
	events := sinkstest.Events("pace", 500)
	publish(t, srv.JS, events...)
	startRunner(t, srv.JS, o, newWebhook(t, down, o), newSegment(t, up, o))

	up.WaitUnique(t, len(events), 20*time.Second)
	if n := down.Unique(); n != 0 {
		t.Fatalf("the dead destination accepted %d events", n)
	}
	if down.Requests() == 0 {
		t.Fatal("the dead sink never tried: the test tests nothing")
	}
	stillDown.Store(false)
	down.WaitUnique(t, len(events), 20*time.Second)
}

// TestRunnerStopIsIdempotentAndBounded: Stop may be called twice, and a
// runner whose destination hangs stops within its bound.
func TestRunnerStopIsIdempotentAndBounded(t *testing.T) {
	srv := brokertest.Start(t)
	rcv := sinkstest.NewReceiver(t, writeKey)
	release := make(chan struct{})
	rcv.SetRespond(func(int, []spec.Message) (int, http.Header) { <-release; return 0, nil })
	t.Cleanup(func() { close(release) })
	publish(t, srv.JS, sinkstest.Events("hang", 10)...)
	o := fast()
	r, err := sinks.NewRunner(srv.JS, o, sinks.Deps{}, newWebhook(t, rcv, o))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "a request", func() bool { return rcv.Requests() > 0 })
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = r.Stop(ctx)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Stop took %v with a 100ms bound", d)
	}
	if err := r.Stop(t.Context()); err != nil && !strings.Contains(err.Error(), "deadline") {
		t.Errorf("second Stop: %v", err)
	}
	if err := r.Start(t.Context()); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

func TestConsumerPerSink(t *testing.T) {
	srv := brokertest.Start(t)
	var out syncBuffer
	file, err := sinks.NewFile(sinks.FileOptions{Path: "-"}, fast(), sinks.Deps{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	rcv := sinkstest.NewReceiver(t, writeKey)
	startRunner(t, srv.JS, fast(), file, newWebhook(t, rcv, fast()))
	for _, name := range []string{"file", "webhook"} {
		c, err := srv.JS.Consumer(t.Context(), spec.StreamEvents, sinks.ConsumerName(name))
		if err != nil {
			t.Fatalf("consumer of %s: %v", name, err)
		}
		cfg := c.CachedInfo().Config
		if cfg.FilterSubject != spec.SubjectEventsPrefix+">" || len(cfg.FilterSubjects) != 0 || cfg.MaxAckPending != fast().MaxInFlight || cfg.AckWait != fast().AckWait {
			t.Errorf("%s consumer config %+v", name, cfg)
		}
	}
	publish(t, srv.JS, sinkstest.Events("both", 5)...)
	rcv.WaitUnique(t, 5, 5*time.Second)
	waitUntil(t, 5*time.Second, "5 lines", func() bool { return len(linesByID(out.Bytes())) == 5 })
	var m spec.Message
	for _, line := range strings.Split(strings.TrimSpace(string(out.Bytes())), "\n") {
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("line %q: %v", line, err)
		}
	}
}
