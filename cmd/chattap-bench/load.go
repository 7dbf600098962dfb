package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// loadMode says what conversations a load drives.
type loadMode int

const (
	// modeConversations: every worker drives fresh conversations, each a
	// start followed by 2 to 8 messages and clicks.
	modeConversations loadMode = iota
	// modePrefill: conversation i of [from, to) gets one start, so that
	// chattap's mapper stores its state.
	modePrefill
	// modeTouch: a message to a random one of the conversations [0, to)
	// already in state.
	modeTouch
)

// loadConfig is one closed-loop load: conns workers, each with its own
// keep-alive connection, each sending its next request as soon as the
// previous one was answered.
type loadConfig struct {
	scenario string // names the conversations (a fresh set per scenario)
	url      string
	conns    int
	warmup   time.Duration // sent, checked and counted in events, not timed
	duration time.Duration // measured time after the warm-up
	requests int64         // when > 0: stop after this many (warm-up included)
	mode     loadMode
	from, to uint64 // conversation range of modePrefill and modeTouch
	// rate, when > 0, makes the load open: requests are due at this fixed
	// rate whatever the answers, and a request's latency counts from when
	// it was due, so a stall is not hidden by the clients waiting on it
	// (coordinated omission). conns bounds the requests in flight.
	rate float64
}

// loadResult is what a load measured.
type loadResult struct {
	Requests int64         // measured (after the warm-up)
	Total    int64         // all, warm-up included
	Failures int64         // status not 200, body not the bot's, or transport error
	Samples  []string      // a few failures, to say what went wrong
	Elapsed  time.Duration // of the measured part
	Lat      *latencies
	// Expected is how many Live Chat events chattap's mapper should make of
	// every exchange that succeeded, warm-up included.
	Expected int64
	Start    time.Time // the first request
	End      time.Time // the last answer
}

func (r *loadResult) rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// runLoad drives lc against the workload w until the duration or request
// count is reached or ctx ends. Every answer is checked against the bytes
// the bot sent.
func runLoad(ctx context.Context, w *workload, run uint32, lc loadConfig) *loadResult {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        lc.conns,
		MaxIdleConnsPerHost: lc.conns,
		MaxConnsPerHost:     lc.conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	res := &loadResult{Lat: &latencies{}}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		sent     atomic.Int64
		nextConv atomic.Uint64
		fails    atomic.Int64
		expected atomic.Int64
		issued   atomic.Int64
	)
	nextConv.Store(lc.from)
	start := time.Now()
	measureFrom := start.Add(lc.warmup)
	stopAt := measureFrom.Add(lc.duration)
	if lc.requests > 0 && lc.duration == 0 {
		stopAt = start.Add(24 * time.Hour)
	}
	ctx, cancel := context.WithDeadline(ctx, stopAt.Add(30*time.Second))
	defer cancel()
	var due chan time.Time
	if lc.rate > 0 {
		due = make(chan time.Time, 1<<16)
		go schedule(ctx, due, start, lc.rate, stopAt)
	}
	fail := func(msg string) {
		if fails.Add(1) <= 5 {
			mu.Lock()
			res.Samples = append(res.Samples, msg)
			mu.Unlock()
		}
	}
	for i := range lc.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(run), uint64(i)))
			lat := &latencies{}
			var measured int64
			var body []byte
			var got bytes.Buffer
			var conv *conversation
			defer func() {
				mu.Lock()
				res.Lat.merge(lat)
				res.Requests += measured
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				if time.Now().After(stopAt) {
					return
				}
				if lc.requests > 0 && sent.Add(1) > lc.requests {
					return
				}
				kind, first := kindMessage, false
				switch lc.mode {
				case modeConversations:
					if conv == nil || conv.step > conv.length {
						conv = newConversation(run, lc.scenario, nextConv.Add(1), rng)
					}
					switch {
					case conv.step == 0:
						kind, first = kindStart, true
					case rng.IntN(5) == 0:
						kind = kindClick
					}
				case modePrefill:
					n := nextConv.Add(1) - 1
					if n >= lc.to {
						return
					}
					conv = newConversation(run, lc.scenario, n, rng)
					kind, first = kindStart, true
				case modeTouch:
					conv = newConversation(run, lc.scenario, rng.Uint64N(max(lc.to, 1)), rng)
					conv.step = 1 + rng.IntN(8)
				}
				body = w.webhook(body[:0], conv, kind, rng)
				want := w.replyFor(body)
				t0 := time.Now()
				if due != nil {
					var ok bool
					if t0, ok = <-due; !ok {
						return
					}
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, lc.url, bytes.NewReader(body))
				if err != nil {
					fail(err.Error())
					return
				}
				req.Header["Content-Type"] = []string{"application/json"}
				resp, err := client.Do(req)
				issued.Add(1)
				if err != nil {
					if ctx.Err() == nil {
						fail(err.Error())
					}
					continue
				}
				got.Reset()
				_, err = got.ReadFrom(resp.Body)
				resp.Body.Close()
				t1 := time.Now()
				switch {
				case err != nil:
					fail("read answer: " + err.Error())
				case resp.StatusCode != http.StatusOK:
					fail(fmt.Sprintf("status %d: %.200s", resp.StatusCode, got.Bytes()))
				case !bytes.Equal(got.Bytes(), want.body):
					fail(fmt.Sprintf("answer differs from the bot's: got %d bytes, want %d", got.Len(), len(want.body)))
				default:
					expected.Add(int64(expectedEvents(kind, first, conv.traits, want.events)))
				}
				if conv != nil {
					conv.step++
				}
				if t0.After(measureFrom) && t1.Before(stopAt) {
					lat.add(t1.Sub(t0))
					measured++
				}
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	res.Start, res.End = start, end
	last := end
	if last.After(stopAt) {
		last = stopAt
	}
	res.Elapsed = last.Sub(measureFrom)
	if lc.requests > 0 && lc.duration == 0 {
		res.Elapsed = end.Sub(measureFrom)
	}
	res.Total = issued.Load()
	res.Failures = fails.Load()
	res.Expected = expected.Load()
	return res
}

// schedule sends on due the time each request of an open load is due, at
// rate per second from start until stop, then closes it.
func schedule(ctx context.Context, due chan<- time.Time, start time.Time, rate float64, stop time.Time) {
	defer close(due)
	interval := time.Duration(float64(time.Second) / rate)
	for next := start; next.Before(stop); next = next.Add(interval) {
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
		}
		select {
		case due <- next:
		case <-ctx.Done():
			return
		}
	}
}
