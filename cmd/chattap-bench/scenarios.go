package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runAll runs the selected scenarios in order and returns what they
// measured; a scenario that fails is reported and the others still run.
func (b *bench) runAll(ctx context.Context) (*report, error) {
	cfg := b.cfg
	rep := &report{
		Machine:    machine(),
		Command:    strings.Join(append([]string{"go run ./cmd/chattap-bench"}, os.Args[1:]...), " "),
		Started:    time.Now().UTC(),
		DefaultAck: b.defAck,
		Ack:        b.ack,
		Conns:      cfg.conns,
		Rounds:     cfg.rounds,
	}
	note := func(scenario string, err error) {
		if err != nil {
			b.logf("%s: %v", scenario, err)
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", scenario, err))
		}
	}
	// The tap-overhead scenarios run in rounds, each a fresh set of
	// children, and each figure is the median over the rounds: on a shared
	// machine a neighbour's burst then weighs on one round, not on one
	// scenario.
	var thr, fixed [][]throughputRow
	for round := 1; round <= cfg.rounds; round++ {
		b.round = round
		var t, f []throughputRow
		if cfg.has(scDirect) {
			b.logf("direct: client → bot, %d connections (round %d of %d)", cfg.conns, round, cfg.rounds)
			for _, rate := range cfg.rates {
				res := b.loadAt(ctx, "direct-rate", b.botURL, rate)
				f = append(f, rowOf(atRate("direct (client → bot)", rate), cfg.conns, "", res, 0, ""))
			}
			res := b.load(ctx, "direct", b.botURL, cfg.conns)
			t = append(t, rowOf("direct (client → bot)", cfg.conns, "", res, 0, ""))
		}
		if cfg.has(scBaseline) {
			b.logf("baseline: client → httputil.ReverseProxy → bot, %d connections (round %d of %d)", cfg.conns, round, cfg.rounds)
			row, rows, err := b.baseline(ctx)
			note(scBaseline, err)
			if err == nil {
				t, f = append(t, row), append(f, rows...)
			}
		}
		for _, mode := range []string{scAsync, scSync} {
			if !cfg.has(mode) {
				continue
			}
			b.logf("chattap %s: client → chattap → bot, %d connections (round %d of %d)", mode, cfg.conns, round, cfg.rounds)
			row, rows, err := b.chattapThroughput(ctx, "chattap "+mode, mode, chattapOptions{ack: mode}, cfg.conns, cfg.rates)
			note("chattap "+mode, err)
			if err == nil {
				t, f = append(t, row), append(f, rows...)
			}
		}
		if cfg.has(scIngest) {
			b.logf("chattap ingest (%s): CHATTAP_ROLES=ingest against a separate nats-server, %d connections (round %d of %d)", b.ack, cfg.conns, round, cfg.rounds)
			row, rows, err := b.ingestThroughput(ctx)
			note(scIngest, err)
			if err == nil {
				t, f = append(t, row), append(f, rows...)
			}
		}
		thr, fixed = append(thr, t), append(fixed, f)
		if ctx.Err() != nil {
			break
		}
	}
	rep.Throughput, rep.Fixed = mergeRounds(thr), mergeRounds(fixed)
	b.round = 0
	if cfg.has(scE2E) {
		b.logf("e2e: sustained load for %s through chattap (%s) until the receiver has every event", cfg.e2eDuration, b.ack)
		e, err := b.endToEnd(ctx, 0)
		note(scE2E, err)
		if e != nil {
			rep.E2E = append(rep.E2E, *e)
		}
		if len(cfg.rates) > 0 {
			rate := cfg.rates[len(cfg.rates)-1]
			b.logf("e2e: %s at %.0f requests/s (open loop) through chattap (%s)", cfg.e2eDuration, rate, b.ack)
			e, err := b.endToEnd(ctx, rate)
			note(scE2E, err)
			if e != nil {
				rep.E2E = append(rep.E2E, *e)
			}
		}
	}
	if cfg.has(scConns) {
		for _, n := range cfg.growthConns {
			b.logf("growth: chattap (%s), %d connections", b.ack, n)
			row, _, err := b.chattapThroughput(ctx, fmt.Sprintf("growth: chattap %s", b.ack), fmt.Sprintf("conns-%d", n), chattapOptions{ack: b.ack}, n, nil)
			note(fmt.Sprintf("growth %d connections", n), err)
			if err == nil {
				rep.Growth = append(rep.Growth, row)
			}
		}
	}
	if cfg.has(scState) {
		rows, err := b.state(ctx)
		note(scState, err)
		rep.States = rows
	}
	rep.evaluate()
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	return rep, nil
}

// load runs the standard measurement against url: fresh conversations,
// -c (or n) connections, -warmup then -d (or -n requests).
func (b *bench) load(ctx context.Context, scenario, url string, conns int) *loadResult {
	lc := loadConfig{scenario: fmt.Sprintf("%s-r%d", scenario, b.round), url: url, conns: conns, warmup: b.cfg.warmup, duration: b.cfg.duration}
	if b.cfg.requests > 0 {
		lc.duration, lc.requests = 0, b.cfg.requests
	}
	res := runLoad(ctx, b.work, b.run, lc)
	b.logf("  %d requests in %.1fs: %.0f/s, p99 %.2f ms, %d failures", res.Requests, res.Elapsed.Seconds(), res.rate(), ms(res.Lat.percentile(99)), res.Failures)
	for _, s := range res.Samples {
		b.logf("  failure: %s", s)
	}
	return res
}

// loadAt measures url at a fixed rate for -d (open loop).
func (b *bench) loadAt(ctx context.Context, scenario, url string, rate float64) *loadResult {
	lc := loadConfig{scenario: fmt.Sprintf("%s-%.0f-r%d", scenario, rate, b.round), url: url, conns: b.cfg.conns, warmup: b.cfg.warmup, duration: b.cfg.duration, rate: rate}
	res := runLoad(ctx, b.work, b.run, lc)
	b.logf("  at %.0f/s: %d requests, p50 %.2f ms, p99 %.2f ms, %d failures", rate, res.Requests, ms(res.Lat.percentile(50)), ms(res.Lat.percentile(99)), res.Failures)
	for _, s := range res.Samples {
		b.logf("  failure: %s", s)
	}
	return res
}

func atRate(label string, rate float64) string { return fmt.Sprintf("%s @ %.0f/s", label, rate) }

func (b *bench) baseline(ctx context.Context) (throughputRow, []throughputRow, error) {
	ch, url, err := b.startBaseline(ctx)
	if err != nil {
		return throughputRow{}, nil, err
	}
	defer ch.stop()
	var fixed []throughputRow
	for _, rate := range b.cfg.rates {
		res := b.loadAt(ctx, "baseline-rate", url, rate)
		fixed = append(fixed, rowOf(atRate("baseline (client → ReverseProxy → bot)", rate), b.cfg.conns, "", res, 0, ""))
	}
	res := b.load(ctx, "baseline", url, b.cfg.conns)
	peak, _, _ := ch.memory()
	if out := ch.out.String(); out != "" {
		b.logf("  the baseline proxy said: %.2000s", out)
	}
	return rowOf("baseline (client → ReverseProxy → bot)", b.cfg.conns, "", res, peak, "chattap's Transport tuning"), fixed, nil
}

// chattapThroughput measures one fresh chattap: load, then the wait for
// its events to reach the receiver (so the peak RSS includes working off
// the backlog), then its peak RSS. A chattap that runs only the taps
// (o.ingestOnly) makes no events, so nothing is waited for.
func (b *bench) chattapThroughput(ctx context.Context, label, scenario string, o chattapOptions, conns int, rates []float64) (throughputRow, []throughputRow, error) {
	b.recv.reset()
	c, err := b.startChattap(ctx, "chattap-"+scenario, o)
	if err != nil {
		return throughputRow{}, nil, err
	}
	defer c.stop()
	delivered := func(expected int64) string {
		if o.ingestOnly {
			return "no mapper: no events expected"
		}
		st := b.waitDelivered(ctx, int(expected), b.cfg.drainWait, 3*time.Second)
		return fmt.Sprintf("events at receiver %d of %d", st.Distinct, expected)
	}
	var fixed []throughputRow
	for _, rate := range rates {
		res := b.loadAt(ctx, scenario+"-rate", c.url+"/userlike/webhook", rate)
		fixed = append(fixed, rowOf(atRate(label, rate), conns, o.ack, res, 0, delivered(res.Expected)))
		b.recv.reset()
	}
	cpu0, _ := c.cpu()
	res := b.load(ctx, scenario, c.url+"/userlike/webhook", conns)
	notes := delivered(res.Expected)
	if cpu1, err := c.cpu(); err == nil && res.Total > 0 {
		// The CPU of the load and of working off its backlog, per request.
		notes += fmt.Sprintf("; chattap CPU %.0f µs per exchange", float64((cpu1-cpu0).Microseconds())/float64(res.Total))
	}
	peak, _, err := c.memory()
	if err != nil {
		return throughputRow{}, nil, err
	}
	notes += recordNotes(counters(ctx, c.url))
	return rowOf(label, conns, o.ack, res, peak, notes), fixed, nil
}

// ingestThroughput is chattapThroughput for CHATTAP_ROLES=ingest against
// a nats-server child built from the module chattap pins, started fresh
// for it; the server's own memory is not in the row's peak RSS.
func (b *bench) ingestThroughput(ctx context.Context) (throughputRow, []throughputRow, error) {
	url, stop, err := b.startNatsServer(ctx)
	if err != nil {
		return throughputRow{}, nil, err
	}
	defer stop()
	o := chattapOptions{ack: b.ack, ingestOnly: true, env: []string{"CHATTAP_ROLES=ingest", "CHATTAP_NATS_URL=" + url}}
	return b.chattapThroughput(ctx, "chattap ingest", "ingest", o, b.cfg.conns, b.cfg.rates)
}

// recordNotes names what chattap counted as going wrong on the record
// path, if anything.
func recordNotes(ctr map[string]float64) string {
	var out []string
	if req := ctr["chattap_tap_requests_total"]; req > 0 {
		// Before records, each event was its own message, counted as an
		// Observation: so older builds can be compared too.
		msgs := ctr["chattap_records_published_total"] + ctr["chattap_observations_published_total"]
		out = append(out, fmt.Sprintf("CHATTAP_RAW messages per exchange %.2f", msgs/req))
	}
	for _, m := range []struct{ name, what string }{
		{"chattap_records_dropped_total", "records dropped"},
		{"chattap_tap_sync_ack_missed_total", "sync acks missed"},
		{"chattap_records_publish_failures_total", "publish retries"},
	} {
		if v := ctr[m.name]; v > 0 {
			out = append(out, fmt.Sprintf("%s %.0f", m.what, v))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "; " + strings.Join(out, ", ")
}

// endToEnd drives sustained load through chattap, then waits until the
// receiver has every event the mapper should have made, and checks that
// none is missing or doubled.
func (b *bench) endToEnd(ctx context.Context, rate float64) (*e2eRow, error) {
	cfg := b.cfg
	b.recv.reset()
	c, err := b.startChattap(ctx, "chattap-e2e", chattapOptions{ack: b.ack})
	if err != nil {
		return nil, err
	}
	defer c.stop()
	lc := loadConfig{scenario: fmt.Sprintf("e2e-%.0f", rate), url: c.url + "/userlike/webhook", conns: cfg.conns, duration: cfg.e2eDuration, rate: rate}
	res := runLoad(ctx, b.work, b.run, lc)
	b.logf("  load: %d requests in %.1fs (%.0f/s), %d failures; waiting for %d events", res.Total, res.Elapsed.Seconds(), res.rate(), res.Failures, res.Expected)
	st := b.waitDelivered(ctx, int(res.Expected), cfg.e2eWait, 20*time.Second)
	// Anything doubled would come shortly after: one more flush or two.
	time.Sleep(2 * time.Second)
	st = b.recv.stats()
	peak, _, _ := c.memory()
	ctr := counters(ctx, c.url)
	delays := b.recv.takeDelays()
	e := &e2eRow{
		Rate:  rate,
		Conns: cfg.conns, Ack: b.ack, Requests: res.Total, Failures: res.Failures, LoadSeconds: res.Elapsed.Seconds(),
		RequestsPerSec: float64(res.Total) / res.Elapsed.Seconds(),
		Expected:       res.Expected, Delivered: st.Distinct, Duplicates: st.Duplicates,
		Missing:   max(res.Expected-int64(st.Distinct), 0),
		Extra:     max(int64(st.Distinct)-res.Expected, 0),
		PeakRSSMB: mb(peak),
		Notes:     strings.TrimPrefix(recordNotes(ctr), "; "),
	}
	if st.Distinct > 0 {
		span := st.Last.Sub(res.Start)
		e.DeliverySeconds = span.Seconds()
		e.EventsPerSec = float64(st.Distinct) / span.Seconds()
		e.DelayP50ms, e.DelayP99ms, e.DelayP999ms = ms(delays.percentile(50)), ms(delays.percentile(99)), ms(delays.percentile(99.9))
	} else {
		e.Notes = strings.TrimPrefix(e.Notes+"; no event reached the receiver: are the mapper and the Segment sink running in chattap serve?", "; ")
	}
	b.logf("  delivered %d of %d (dups %d) in %.1fs: %.0f events/s, delivery p99 %.0f ms", e.Delivered, e.Expected, e.Duplicates, e.DeliverySeconds, e.EventsPerSec, e.DelayP99ms)
	return e, nil
}

// state fills chattap's conversation state (the chattap_conversations
// bucket, written by the mapper) by driving conversations through
// chattap, then measures a fresh chattap on that data at each size.
func (b *bench) state(ctx context.Context) ([]stateRow, error) {
	cfg := b.cfg
	dir, err := os.MkdirTemp(b.dir, "state-")
	if err != nil {
		return nil, err
	}
	var rows []stateRow
	filled := uint64(0)
	for _, n := range cfg.states {
		row := stateRow{Target: n}
		if filled < uint64(n) {
			b.logf("state: filling to %d conversations (start + one greeting each, through chattap)", n)
			reached, secs, err := b.prefill(ctx, dir, filled, uint64(n))
			if err != nil {
				return rows, err
			}
			row.PrefillSeconds = secs
			row.PrefillAdded = int64(reached - filled)
			filled = reached
		}
		// A second reading, started with a 1 s duplicate window, was meant
		// to leave out JetStream's duplicate index of the filling's
		// messages; measured, it reads higher than the default (changing
		// the window at start makes the server go through the stored
		// messages), so it is shown but not used for the per-conversation
		// figure.
		if lean, err := b.startChattap(ctx, "chattap-state-lean", chattapOptions{ack: b.ack, dataDir: dir, env: []string{"CHATTAP_DEDUP_WINDOW=1s"}}); err == nil {
			row.LeanRSSMB = mb(restingRSS(lean.child))
			_ = lean.stop()
		} else {
			row.Notes = "lean chattap: " + err.Error()
		}
		b.logf("state: measuring a fresh chattap on %d conversations", filled)
		b.recv.reset()
		c, err := b.startChattap(ctx, "chattap-state", chattapOptions{ack: b.ack, dataDir: dir, natsListen: true})
		if err != nil {
			return rows, err
		}
		row.IdleRSSMB = mb(restingRSS(c.child))
		if vals, bytes, err := kvStatus(ctx, c.natsURL); err == nil {
			row.InState, row.KVBytes = int64(vals), int64(bytes)
		} else {
			row.Notes = "state bucket unreadable: " + err.Error()
		}
		res := runLoad(ctx, b.work, b.run, loadConfig{scenario: "state", url: c.url + "/userlike/webhook", conns: cfg.conns, warmup: cfg.warmup, duration: cfg.stateDuration, mode: modeTouch, to: filled})
		st := b.waitDelivered(ctx, int(res.Expected), cfg.drainWait, 3*time.Second)
		peak, _, _ := c.memory()
		_ = c.stop()
		row.Requests, row.ReqPerSec, row.Failures = res.Requests, res.rate(), res.Failures
		row.P50ms, row.P99ms = ms(res.Lat.percentile(50)), ms(res.Lat.percentile(99))
		row.PeakRSSMB = mb(peak)
		row.Notes = strings.TrimPrefix(row.Notes+fmt.Sprintf("; events at receiver %d of %d", st.Distinct, res.Expected), "; ")
		b.logf("  %d in state, RSS at rest %.1f MB (dedup window 1s: %.1f MB), %.0f req/s, p99 %.2f ms, peak RSS %.1f MB", row.InState, row.IdleRSSMB, row.LeanRSSMB, row.ReqPerSec, row.P99ms, row.PeakRSSMB)
		rows = append(rows, row)
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
	}
	return rows, nil
}

// prefill drives conversations [from, to) through a chattap on dir, one
// start each, and waits until the mapper stored their state. It returns
// how far it got (bounded by -prefill-timeout) and how long it took.
func (b *bench) prefill(ctx context.Context, dir string, from, to uint64) (uint64, float64, error) {
	c, err := b.startChattap(ctx, "chattap-prefill", chattapOptions{ack: b.ack, dataDir: dir, natsListen: true})
	if err != nil {
		return from, 0, err
	}
	defer c.stop()
	b.work.light.Store(true)
	defer b.work.light.Store(false)
	pctx, cancel := context.WithTimeout(ctx, b.cfg.prefillTimeout)
	defer cancel()
	t0 := time.Now()
	res := runLoad(pctx, b.work, b.run, loadConfig{scenario: "state", url: c.url + "/userlike/webhook", conns: 64, duration: b.cfg.prefillTimeout, mode: modePrefill, from: from, to: to})
	sent := from + uint64(res.Total)
	b.logf("  sent %d starts in %.1fs (%d failures); waiting for the mapper to store them", res.Total, time.Since(t0).Seconds(), res.Failures)
	last, lastChange := uint64(0), time.Now()
	deadline := time.Now().Add(b.cfg.prefillTimeout)
	for {
		vals, _, err := kvStatus(ctx, c.natsURL)
		if err != nil {
			return from, 0, fmt.Errorf("read the state bucket: %w", err)
		}
		if vals >= sent || ctx.Err() != nil || time.Now().After(deadline) {
			return vals, time.Since(t0).Seconds(), nil
		}
		if vals != last {
			last, lastChange = vals, time.Now()
		} else if time.Since(lastChange) > 20*time.Second {
			return vals, time.Since(t0).Seconds(), fmt.Errorf("the state bucket stopped growing at %d of %d conversations: is the mapper running in chattap serve?", vals, sent)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// kvStatus is how many conversations the state bucket holds and its size.
func kvStatus(ctx context.Context, url string) (values, bytes uint64, err error) {
	nc, err := nats.Connect(url, nats.Name("chattap-bench"), nats.Timeout(5*time.Second))
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, spec.BucketConversations)
	if err != nil {
		return 0, 0, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, 0, err
	}
	return st.Values(), st.Bytes(), nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// restingRSS is the lowest resident set of an idle child over its first
// seconds after start: the start itself (recovering the streams) leaves
// garbage that the runtime returns gradually.
func restingRSS(c *child) int64 {
	var low int64
	for range 4 {
		time.Sleep(time.Second)
		if _, rss, err := c.memory(); err == nil && (low == 0 || rss < low) {
			low = rss
		}
	}
	return low
}
