package sinks_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/sinks/sinkstest"
	"github.com/chattap/chattap/spec"
)

func TestClassifyStatusIsTheOnePolicy(t *testing.T) {
	for _, tc := range []struct {
		code                                 int
		ok, retryable, misconfigured, splits bool
		permanent                            bool
	}{
		{code: 200, ok: true}, {code: 204, ok: true},
		{code: 408, retryable: true}, {code: 429, retryable: true}, {code: 500, retryable: true}, {code: 503, retryable: true},
		{code: 401, misconfigured: true}, {code: 403, misconfigured: true}, {code: 404, misconfigured: true},
		{code: 400, permanent: true, splits: true}, {code: 413, permanent: true, splits: true}, {code: 422, permanent: true, splits: true},
		{code: 405, permanent: true}, {code: 410, permanent: true}, {code: 302, permanent: true},
	} {
		err := sinks.ClassifyStatus(tc.code, http.Header{}, "")
		var p *sinks.PermanentError
		splits := errors.As(err, &p) && p.PerEvent
		got := struct{ ok, misconfigured, permanent, splits bool }{err == nil, sinks.IsMisconfigured(err), sinks.IsPermanent(err), splits}
		want := struct{ ok, misconfigured, permanent, splits bool }{tc.ok, tc.misconfigured, tc.permanent, tc.splits}
		if got != want {
			t.Errorf("%d: got %+v, want %+v (%v)", tc.code, got, want, err)
		}
		var r *sinks.RetryableError
		if errors.As(err, &r) != tc.retryable {
			t.Errorf("%d: retryable is %v, want %v", tc.code, !tc.retryable, tc.retryable)
		}
	}
}

// TestMisconfiguredDestinationDeadLettersNothing: a destination that
// refuses chattap itself (a wrong key or URL) gets no split batches and no
// dead letters, however long it lasts; Health names the sink and never
// the key; once fixed, every event arrives.
func TestMisconfiguredDestinationDeadLettersNothing(t *testing.T) {
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound} {
		for _, sk := range httpSinks {
			t.Run(sk.name+"/"+http.StatusText(code), func(t *testing.T) {
				srv := brokertest.Start(t)
				rcv := sinkstest.NewReceiver(t, writeKey)
				var refuse atomic.Bool
				refuse.Store(true)
				var refusedBatches atomic.Int64
				rcv.SetRespond(func(_ int, batch []spec.Message) (int, http.Header) {
					if refuse.Load() {
						if len(batch) == 0 {
							t.Errorf("empty batch")
						}
						refusedBatches.Add(1)
						return code, nil
					}
					return 0, nil
				})
				o := fast()
				o.MaxDeliveries = 2 // refusals of chattap itself do not count against it
				events := sinkstest.Events("mis", 30)
				publish(t, srv.JS, events...)
				reg := metrics.New()
				r := startRunnerWith(t, srv.JS, o, sinks.Deps{Metrics: metrics.NewSinks(reg)}, sk.make(t, rcv, o))
				waitUntil(t, 10*time.Second, "three rounds of refusals", func() bool {
					return reg.Gather("chattap_sink_retried_total", map[string]string{"sink": sk.name, "class": "http_" + itoa(code)}) >= 3*30
				})
				health := r.Health()
				if health == nil || !strings.Contains(health.Error(), "sink "+sk.name) || !strings.Contains(health.Error(), itoa(code)) {
					t.Errorf("Health = %v, want it to name sink %s and %d", health, sk.name, code)
				}
				if health != nil && strings.Contains(health.Error(), writeKey) {
					t.Errorf("Health shows the write key: %v", health)
				}
				if n := len(dlq(t, srv.JS, sinks.DLQFilter{})); n != 0 {
					t.Fatalf("%d dead letters for a misconfigured destination, want none", n)
				}
				// 30 events in batches of at most 20: never split into more
				// requests than batches per round.
				rounds := reg.Gather("chattap_sink_retried_total", map[string]string{"sink": sk.name, "class": "http_" + itoa(code)}) / 30
				if got := float64(refusedBatches.Load()); got > (rounds+1)*4 {
					t.Errorf("%v refused requests over ~%v rounds: batches were split", got, rounds)
				}
				refuse.Store(false)
				rcv.WaitUnique(t, len(events), 10*time.Second)
				waitUntil(t, 5*time.Second, "Health clears", func() bool { return r.Health() == nil })
				if n := len(dlq(t, srv.JS, sinks.DLQFilter{})); n != 0 {
					t.Errorf("%d dead letters, want none", n)
				}
			})
		}
	}
}

// TestHealthNamesASinkThatIsBehind: a destination that fails every
// delivery with a retryable answer makes Health name the sink and its lag
// once nothing has been delivered for LagWarning, and Health clears once
// the destination accepts again.
func TestHealthNamesASinkThatIsBehind(t *testing.T) {
	for _, sk := range httpSinks {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			srv := brokertest.Start(t)
			rcv := sinkstest.NewReceiver(t, writeKey)
			var fail atomic.Bool
			fail.Store(true)
			rcv.SetRespond(func(int, []spec.Message) (int, http.Header) {
				if fail.Load() {
					return http.StatusInternalServerError, nil
				}
				return 0, nil
			})
			o := fast()
			o.LagWarning = 300 * time.Millisecond
			events := sinkstest.Events("lag", 10)
			publish(t, srv.JS, events...)
			r := startRunner(t, srv.JS, o, sk.make(t, rcv, o))
			waitUntil(t, 10*time.Second, "Health to say the sink is behind", func() bool { return r.Health() != nil })
			h := r.Health().Error()
			if !strings.Contains(h, "sink "+sk.name+" is behind") || !strings.Contains(h, "10 events waiting for a retry") || !strings.Contains(h, "the oldest failing for") {
				t.Errorf("Health = %q, want it to name sink %s, its 10 waiting events and the oldest's age", h, sk.name)
			}
			fail.Store(false)
			rcv.WaitUnique(t, len(events), 10*time.Second)
			waitUntil(t, 5*time.Second, "Health clears", func() bool { return r.Health() == nil })
		})
	}
}

// attemptLog records the attempt number of every delivery a fake sink
// is handed, for the tests to read back.
type attemptLog struct {
	mu       sync.Mutex
	attempts []int
}

func (l *attemptLog) record(d sinks.Delivery) {
	l.mu.Lock()
	l.attempts = append(l.attempts, d.Attempt)
	l.mu.Unlock()
}

func (l *attemptLog) seen() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.attempts...)
}

// scriptedSink answers each delivery with what script says for its
// attempt.
type scriptedSink struct {
	attemptLog
	script func(attempt int) error
}

func (s *scriptedSink) Name() string { return "scripted" }

func (s *scriptedSink) Deliver(_ context.Context, d sinks.Delivery, done func(error)) {
	s.record(d)
	go done(s.script(d.Attempt))
}

func (s *scriptedSink) Close(context.Context) error { return nil }

// TestMisconfiguredRefusalsDoNotCountTowardsMaxDeliveries: deliveries
// refused because chattap's key is wrong say nothing about the event, so
// once the key is fixed an ordinary retryable failure is retried, not
// dead-lettered at once for deliveries that were never the event's fault.
func TestMisconfiguredRefusalsDoNotCountTowardsMaxDeliveries(t *testing.T) {
	srv := brokertest.Start(t)
	publish(t, srv.JS, sinkstest.Events("misconf", 1)...)
	o := fast()
	o.MaxDeliveries = 3
	reg := metrics.New()
	s := &scriptedSink{script: func(a int) error {
		switch {
		case a <= 4: // the operator's key is wrong for a while
			return &sinks.MisconfiguredError{Err: errors.New("401 invalid write key")}
		case a <= 6: // fixed; two transient 503s, within the limit of 3
			return sinks.Retryable(errors.New("503 service unavailable"), 0)
		}
		return nil
	}}
	startRunnerWith(t, srv.JS, o, sinks.Deps{Metrics: metrics.NewSinks(reg)}, s)
	waitUntil(t, 10*time.Second, "delivered", func() bool {
		return reg.Gather("chattap_sink_delivered_total", map[string]string{"sink": "scripted"}) == 1 ||
			len(dlq(t, srv.JS, sinks.DLQFilter{})) > 0
	})
	if n := len(dlq(t, srv.JS, sinks.DLQFilter{})); n != 0 {
		t.Errorf("dead-lettered after attempts %v; want delivered on the 7th", s.seen())
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestDeadLetteringTwiceStoresOnce: the dead letter's id is the event's
// own on its sink (sink and stream sequence), so dead-lettering the same
// event again (a retried publish, a replay) stores it once.
func TestDeadLetteringTwiceStoresOnce(t *testing.T) {
	srv := brokertest.Start(t)
	rcv := sinkstest.NewReceiver(t, writeKey)
	rcv.SetRespond(func(int, []spec.Message) (int, http.Header) { return http.StatusBadRequest, nil })
	publish(t, srv.JS, sinkstest.Events("twice", 2)...)
	s := newWebhook(t, rcv, fast())
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	for range 2 {
		res, err := sinks.Replay(t.Context(), srv.JS, s, sinks.Range{FromSeq: 1}, sinks.ReplayOptions{})
		if err != nil || res.DeadLettered != 2 {
			t.Fatalf("replay: %+v, %v; want 2 dead-lettered", res, err)
		}
	}
	if n := len(dlq(t, srv.JS, sinks.DLQFilter{})); n != 2 {
		t.Errorf("DLQ holds %d entries for 2 events dead-lettered twice, want 2", n)
	}
}

// TestDeadLetteringAfterADropStoresItAgain: a dead letter dropped (or
// replayed and deleted) leaves its id in CHATTAP_DLQ's duplicate window;
// dead-lettering the event again within it is stored again, not dropped
// as a duplicate while counted as dead-lettered, and still stored once
// however often it is repeated.
func TestDeadLetteringAfterADropStoresItAgain(t *testing.T) {
	srv := brokertest.Start(t)
	rcv := sinkstest.NewReceiver(t, writeKey)
	rcv.SetRespond(func(int, []spec.Message) (int, http.Header) { return http.StatusBadRequest, nil })
	publish(t, srv.JS, sinkstest.Events("drop", 1)...)
	s := newWebhook(t, rcv, fast())
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	replay := func() {
		t.Helper()
		res, err := sinks.Replay(t.Context(), srv.JS, s, sinks.Range{FromSeq: 1}, sinks.ReplayOptions{})
		if err != nil || res.DeadLettered != 1 {
			t.Fatalf("replay: %+v, %v; want 1 dead-lettered", res, err)
		}
	}
	for round := range 2 {
		replay()
		if n, err := sinks.DropDLQ(t.Context(), srv.JS, sinks.DLQFilter{All: true}); err != nil || n != 1 {
			t.Fatalf("round %d: dropped %d, %v; want 1", round, n, err)
		}
	}
	replay()
	replay()
	if n := len(dlq(t, srv.JS, sinks.DLQFilter{})); n != 1 {
		t.Errorf("DLQ holds %d entries after dead-lettering again twice since the last drop, want 1", n)
	}
}

// silentSink takes deliveries and calls back only when told to.
type silentSink struct {
	attemptLog
	answer atomic.Bool
}

func (s *silentSink) Name() string { return "silent" }

func (s *silentSink) Deliver(_ context.Context, d sinks.Delivery, done func(error)) {
	s.record(d)
	if s.answer.Load() {
		done(nil)
	}
}

func (s *silentSink) Close(context.Context) error { return nil }

// TestWatchdogSettlesASinkThatNeverAnswers: a delivery whose sink never
// calls back is settled as a retryable timeout, and the event is
// delivered again.
func TestWatchdogSettlesASinkThatNeverAnswers(t *testing.T) {
	srv := brokertest.Start(t)
	publish(t, srv.JS, sinkstest.Events("hang", 1)...)
	o := fast()
	o.AckWait = time.Second
	reg := metrics.New()
	s := &silentSink{}
	startRunnerWith(t, srv.JS, o, sinks.Deps{Metrics: metrics.NewSinks(reg)}, s)
	waitUntil(t, 10*time.Second, "a second delivery", func() bool { return len(s.seen()) >= 2 })
	s.answer.Store(true)
	if got := reg.Gather("chattap_sink_retried_total", map[string]string{"sink": "silent", "class": "timeout"}); got < 1 {
		t.Errorf("retried as timeout = %v, want at least 1", got)
	}
	if a := s.seen(); a[0] != 1 || a[1] != 2 {
		t.Errorf("attempts %v, want 1 then 2", a)
	}
	waitUntil(t, 10*time.Second, "delivered", func() bool {
		return reg.Gather("chattap_sink_delivered_total", map[string]string{"sink": "silent"}) == 1
	})
	// The gauge drops just after the delivered count rises: wait for it,
	// so a delivery the watchdog settled is not left counted in flight.
	waitUntil(t, 10*time.Second, "nothing in flight", func() bool {
		return reg.Gather("chattap_sink_in_flight", map[string]string{"sink": "silent"}) == 0
	})
}

// TestWatchdogTimeoutIsNotAFailedDelivery: a delivery its sink never
// answered may have reached the destination, so the watchdog's timeout is
// retried and never counts towards MaxDeliveries: even with a limit of one
// delivery, the event is not dead-lettered (it used to be, delivered
// and dead-lettered both).
func TestWatchdogTimeoutIsNotAFailedDelivery(t *testing.T) {
	srv := brokertest.Start(t)
	publish(t, srv.JS, sinkstest.Events("late", 1)...)
	o := fast()
	o.AckWait = time.Second
	o.MaxDeliveries = 1
	reg := metrics.New()
	s := &silentSink{}
	startRunnerWith(t, srv.JS, o, sinks.Deps{Metrics: metrics.NewSinks(reg)}, s)
	waitUntil(t, 10*time.Second, "a third delivery after two timeouts", func() bool { return len(s.seen()) >= 3 })
	if n := len(dlq(t, srv.JS, sinks.DLQFilter{})); n != 0 {
		t.Fatalf("%d dead letters after timeouts alone, want none", n)
	}
	s.answer.Store(true)
	waitUntil(t, 10*time.Second, "delivered", func() bool {
		return reg.Gather("chattap_sink_delivered_total", map[string]string{"sink": "silent"}) == 1
	})
	if n := len(dlq(t, srv.JS, sinks.DLQFilter{})); n != 0 {
		t.Errorf("%d dead letters for a delivered event, want none", n)
	}
}

// failingWriter fails every write until healed.
type failingWriter struct {
	healed atomic.Bool
	buf    syncBuffer
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if !f.healed.Load() {
		return 0, errors.New("write /dev/stdout: broken pipe")
	}
	return f.buf.Write(p)
}

// TestFileWriteErrorIsRetriedAndCounted: a file sink whose writes fail (a
// closed pipe, a full disk) retries, counts it, and delivers once the
// writer recovers; nothing is dead-lettered.
func TestFileWriteErrorIsRetriedAndCounted(t *testing.T) {
	srv := brokertest.Start(t)
	events := sinkstest.Events("pipe", 3)
	publish(t, srv.JS, events...)
	w := &failingWriter{}
	o := fast()
	f, err := sinks.NewFile(sinks.FileOptions{Path: "-"}, o, sinks.Deps{Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.New()
	startRunnerWith(t, srv.JS, o, sinks.Deps{Metrics: metrics.NewSinks(reg)}, f)
	waitUntil(t, 10*time.Second, "write failures counted", func() bool {
		return reg.Gather("chattap_sink_retried_total", map[string]string{"sink": "file", "class": "write"}) >= 3
	})
	w.healed.Store(true)
	waitUntil(t, 10*time.Second, "every line written", func() bool { return len(linesByID(w.buf.Bytes())) == len(events) })
	if n := len(dlq(t, srv.JS, sinks.DLQFilter{})); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}
