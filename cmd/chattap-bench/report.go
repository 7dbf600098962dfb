package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// report is everything one run measured. Every figure in it was printed by
// this tool; the Markdown is what BENCHMARKS.md quotes.
type report struct {
	Machine    string           `json:"machine"`
	Command    string           `json:"command"`
	Started    time.Time        `json:"started"`
	DefaultAck string           `json:"default_ack"`
	Ack        string           `json:"ack"`
	Conns      int              `json:"conns"`
	Rounds     int              `json:"rounds"`
	Throughput []throughputRow  `json:"throughput,omitempty"`
	Fixed      []throughputRow  `json:"fixed_rate,omitempty"`
	E2E        []e2eRow         `json:"e2e,omitempty"`
	Growth     []throughputRow  `json:"growth,omitempty"`
	States     []stateRow       `json:"states,omitempty"`
	PerConv    *perConversation `json:"per_conversation,omitempty"`
	Goals      []goal           `json:"goals,omitempty"`
	Errors     []string         `json:"errors,omitempty"`
}

// throughputRow is one closed-loop measurement.
type throughputRow struct {
	Scenario  string  `json:"scenario"`
	Conns     int     `json:"conns"`
	Ack       string  `json:"ack,omitempty"`
	Requests  int64   `json:"requests"`
	ReqPerSec float64 `json:"req_per_sec"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	P999ms    float64 `json:"p999_ms"`
	Failures  int64   `json:"failures"`
	PeakRSSMB float64 `json:"peak_rss_mb,omitempty"`
	Notes     string  `json:"notes,omitempty"`
}

func rowOf(scenario string, conns int, ack string, res *loadResult, peak int64, notes string) throughputRow {
	return throughputRow{
		Scenario: scenario, Conns: conns, Ack: ack, Requests: res.Requests, ReqPerSec: res.rate(),
		P50ms: ms(res.Lat.percentile(50)), P99ms: ms(res.Lat.percentile(99)), P999ms: ms(res.Lat.percentile(99.9)),
		Failures: res.Failures, PeakRSSMB: mb(peak), Notes: notes,
	}
}

// e2eRow is the end-to-end scenario.
type e2eRow struct {
	Rate            float64 `json:"rate,omitempty"` // 0: closed loop
	Conns           int     `json:"conns"`
	Ack             string  `json:"ack"`
	Requests        int64   `json:"requests"`
	Failures        int64   `json:"failures"`
	LoadSeconds     float64 `json:"load_seconds"`
	RequestsPerSec  float64 `json:"requests_per_sec"`
	Expected        int64   `json:"expected_events"`
	Delivered       int     `json:"delivered_events"`
	Missing         int64   `json:"missing"`
	Extra           int64   `json:"extra"`
	Duplicates      int64   `json:"duplicates"`
	DeliverySeconds float64 `json:"delivery_seconds"`
	EventsPerSec    float64 `json:"events_per_sec"`
	DelayP50ms      float64 `json:"delay_p50_ms"`
	DelayP99ms      float64 `json:"delay_p99_ms"`
	DelayP999ms     float64 `json:"delay_p999_ms"`
	PeakRSSMB       float64 `json:"peak_rss_mb"`
	Notes           string  `json:"notes,omitempty"`
}

// stateRow is chattap measured with a number of conversations in state.
type stateRow struct {
	Target         int     `json:"target"`
	InState        int64   `json:"in_state"`
	KVBytes        int64   `json:"kv_bytes"`
	PrefillAdded   int64   `json:"prefill_added"`
	PrefillSeconds float64 `json:"prefill_seconds"`
	IdleRSSMB      float64 `json:"idle_rss_mb"`
	LeanRSSMB      float64 `json:"idle_rss_mb_dedup_1s"`
	Requests       int64   `json:"requests"`
	ReqPerSec      float64 `json:"req_per_sec"`
	P50ms          float64 `json:"p50_ms"`
	P99ms          float64 `json:"p99_ms"`
	Failures       int64   `json:"failures"`
	PeakRSSMB      float64 `json:"peak_rss_mb"`
	Notes          string  `json:"notes,omitempty"`
}

// perConversation is the memory a stored conversation costs, from the
// difference between the smallest and the largest state measured.
type perConversation struct {
	From, To       int64   `json:"-"`
	LeanRSSBytes   float64 `json:"idle_rss_bytes_dedup_1s"`
	IdleRSSBytes   float64 `json:"idle_rss_bytes"`
	PeakRSSBytes   float64 `json:"peak_rss_bytes"`
	KVBytes        float64 `json:"kv_bytes"`
	Extrapolated1M float64 `json:"idle_rss_mb_at_1m_extrapolated,omitempty"`
	Measured1M     bool    `json:"measured_1m"`
}

type goal struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      string `json:"met"`
}

func (r *report) find(prefix string) *throughputRow {
	for i := range r.Throughput {
		if strings.HasPrefix(r.Throughput[i].Scenario, prefix) {
			return &r.Throughput[i]
		}
	}
	return nil
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// evaluate compares the figures with the goals: issue 8's for the tap
// (ratios to the baseline in the same run), issue 5's for the rest.
func (r *report) evaluate() {
	base := r.find("baseline")
	fixed := func(prefix string, rate float64) *throughputRow {
		for i := range r.Fixed {
			if r.Fixed[i].Scenario == atRate(prefix, rate) {
				return &r.Fixed[i]
			}
		}
		return nil
	}
	for _, t := range []struct {
		name         string
		ratio, rssMB float64
		p99ms        float64 // added at 500 requests/s
	}{
		{"chattap async", 0.5, 120, 1},
		{"chattap sync", 0.5, 120, 1},
		{"chattap ingest", 0.8, 40, 0.5},
	} {
		c := r.find(t.name)
		if c == nil {
			continue
		}
		if base != nil && base.ReqPerSec > 0 {
			ratio := c.ReqPerSec / base.ReqPerSec
			r.Goals = append(r.Goals, goal{
				Goal:     fmt.Sprintf("%s throughput ≥ %.2f × baseline", c.Scenario, t.ratio),
				Measured: fmt.Sprintf("%.0f / %.0f req/s = %.2f×", c.ReqPerSec, base.ReqPerSec, ratio),
				Met:      yes(ratio >= t.ratio && c.Failures == 0),
			})
		}
		r.Goals = append(r.Goals, goal{
			Goal:     fmt.Sprintf("%s peak RSS ≤ %.0f MB", c.Scenario, t.rssMB),
			Measured: fmt.Sprintf("%.1f MB", c.PeakRSSMB),
			Met:      yes(c.PeakRSSMB > 0 && c.PeakRSSMB <= t.rssMB),
		})
		if f, g := fixed(t.name, 500), fixed("baseline (client → ReverseProxy → bot)", 500); f != nil && g != nil {
			d := f.P99ms - g.P99ms
			r.Goals = append(r.Goals, goal{
				Goal:     fmt.Sprintf("%s p99 at 500 req/s ≤ baseline p99 + %.1f ms", t.name, t.p99ms),
				Measured: fmt.Sprintf("%.2f ms vs %.2f ms: %+.2f ms", f.P99ms, g.P99ms, d),
				Met:      yes(d <= t.p99ms && f.Failures == 0),
			})
		}
	}
	if a, s := fixed("chattap async", 500), fixed("chattap sync", 500); a != nil && s != nil {
		d := s.P99ms - a.P99ms
		pick := "async"
		if d <= 0.5 {
			pick = "sync"
		}
		r.Goals = append(r.Goals, goal{
			Goal:     "CHATTAP_TAP_ACK default: sync if its p99 at 500 req/s stays within 0.5 ms of async",
			Measured: fmt.Sprintf("p99 sync − async at 500 req/s: %+.2f ms → %s (chattap's default in this build: %s)", d, pick, r.DefaultAck),
			Met:      yes(pick == r.DefaultAck),
		})
	}
	for _, e := range r.E2E {
		if e.Rate > 0 {
			r.Goals = append(r.Goals, goal{
				Goal:     fmt.Sprintf("end to end at %.0f req/s: nothing lost or doubled", e.Rate),
				Measured: fmt.Sprintf("%d of %d delivered, %d missing, %d duplicates; delivery p99 %.0f ms", e.Delivered, e.Expected, e.Missing, e.Duplicates, e.DelayP99ms),
				Met:      yes(e.Missing == 0 && e.Duplicates == 0 && e.Extra == 0 && e.Failures == 0),
			})
			continue
		}
		r.Goals = append(r.Goals, goal{
			Goal:     "end to end ≥ 15,000 events/s delivered, nothing lost or doubled",
			Measured: fmt.Sprintf("%.0f events/s; %d of %d delivered, %d missing, %d duplicates", e.EventsPerSec, e.Delivered, e.Expected, e.Missing, e.Duplicates),
			Met:      yes(e.EventsPerSec >= 15000 && e.Missing == 0 && e.Duplicates == 0 && e.Extra == 0 && e.Failures == 0),
		})
	}
	for _, g := range r.Growth {
		if g.Conns == 256 {
			r.Goals = append(r.Goals, goal{
				Goal:     "peak RSS < 100 MB at 256 connections",
				Measured: fmt.Sprintf("%.1f MB", g.PeakRSSMB),
				Met:      yes(g.PeakRSSMB > 0 && g.PeakRSSMB < 100),
			})
		}
	}
	r.perConversation()
	if p := r.PerConv; p != nil {
		m := fmt.Sprintf("from %d to %d conversations: %.0f B of RSS each at rest (default config), %.0f B each in the bucket on disk; under load the peak grows by %.0f B each", p.From, p.To, p.IdleRSSBytes, p.KVBytes, p.PeakRSSBytes)
		if !p.Measured1M {
			m += fmt.Sprintf("; at 1,000,000 (extrapolated from these points, not measured): ≈ %.0f MB at rest", p.Extrapolated1M)
		}
		r.Goals = append(r.Goals, goal{Goal: "memory per stored conversation stated", Measured: m, Met: "stated"})
	}
}

func (r *report) perConversation() {
	var rows []stateRow
	for _, s := range r.States {
		if s.InState > 0 {
			rows = append(rows, s)
		}
	}
	if len(rows) < 2 {
		return
	}
	lo, hi := rows[0], rows[len(rows)-1]
	dn := float64(hi.InState - lo.InState)
	if dn <= 0 {
		return
	}
	p := &perConversation{
		From: lo.InState, To: hi.InState,
		LeanRSSBytes: (hi.LeanRSSMB - lo.LeanRSSMB) * (1 << 20) / dn,
		IdleRSSBytes: (hi.IdleRSSMB - lo.IdleRSSMB) * (1 << 20) / dn,
		PeakRSSBytes: (hi.PeakRSSMB - lo.PeakRSSMB) * (1 << 20) / dn,
		KVBytes:      float64(hi.KVBytes) / float64(hi.InState),
		Measured1M:   hi.InState >= 1_000_000,
	}
	if !p.Measured1M {
		p.Extrapolated1M = hi.IdleRSSMB + p.IdleRSSBytes*float64(1_000_000-hi.InState)/(1<<20)
	}
	r.PerConv = p
}

func (r *report) write(w io.Writer) {
	fmt.Fprintf(w, "\n## chattap-bench results\n\n")
	fmt.Fprintf(w, "Machine: %s. Command: `%s`. Started %s. Every server on 127.0.0.1; the load generator, the fake bot and the receiver share the machine with what is measured. Peak RSS is VmHWM of a fresh chattap child per row.\n\n", r.Machine, r.Command, r.Started.Format(time.RFC3339))
	if len(r.Throughput) > 0 {
		fmt.Fprintf(w, "### Tap overhead (closed loop, %d connections, keep-alive; every answer checked against the bot's bytes; each figure the median of %d rounds)\n\n", r.Conns, r.Rounds)
		writeThroughput(w, r.Throughput)
	}
	if len(r.Fixed) > 0 {
		fmt.Fprintf(w, "\n### Tap overhead at fixed request rates (open loop: latency counted from when each request was due; at most %d in flight)\n\n", r.Conns)
		writeThroughput(w, r.Fixed)
	}
	if len(r.E2E) > 0 {
		fmt.Fprintf(w, "\n### End to end: tap → JetStream → mapper → Segment sink → /v1/batch receiver\n\n")
		fmt.Fprintln(w, "| load | conns | ack | requests | req/s | events expected | delivered | missing | duplicates | events/s delivered | delivery p50 ms | p99 ms | p99.9 ms | peak RSS MB | notes |")
		fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
		for _, e := range r.E2E {
			load := "closed loop (saturating)"
			if e.Rate > 0 {
				load = fmt.Sprintf("open loop @ %.0f req/s", e.Rate)
			}
			fmt.Fprintf(w, "| %s | %d | %s | %d | %.0f | %d | %d | %d | %d | %.0f | %.0f | %.0f | %.0f | %.1f | %s |\n",
				load, e.Conns, e.Ack, e.Requests, e.RequestsPerSec, e.Expected, e.Delivered, e.Missing, e.Duplicates, e.EventsPerSec, e.DelayP50ms, e.DelayP99ms, e.DelayP999ms, e.PeakRSSMB, e.Notes)
		}
		fmt.Fprintln(w, "\nevents/s delivered = distinct messageIds at the receiver ÷ (last new one − first request); delivery delay = arrival at the receiver − the event's timestamp (when the tap saw it); the Segment sink batches up to 100 events or 500 ms (CHATTAP_SINK_FLUSH_INTERVAL).")
	}
	if len(r.Growth) > 0 {
		fmt.Fprintf(w, "\n### Growth with connections (chattap, %s)\n\n", r.Ack)
		writeThroughput(w, r.Growth)
	}
	if len(r.States) > 0 {
		fmt.Fprintf(w, "\n### Growth with conversations in state (chattap_conversations, filled through chattap; a fresh chattap measured on the data; %d connections, messages to random stored conversations)\n\n", r.Conns)
		fmt.Fprintln(w, "| target | conversations in state | bucket MB | filled (added, s) | RSS at rest MB, started with CHATTAP_DEDUP_WINDOW=1s | RSS at rest MB, default config | req/s | p50 ms | p99 ms | failures | peak RSS MB | notes |")
		fmt.Fprintln(w, "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
		for _, s := range r.States {
			fill := "—"
			if s.PrefillAdded > 0 {
				fill = fmt.Sprintf("+%d in %.0f s (%.0f/s)", s.PrefillAdded, s.PrefillSeconds, float64(s.PrefillAdded)/s.PrefillSeconds)
			}
			fmt.Fprintf(w, "| %d | %d | %.1f | %s | %.1f | %.1f | %.0f | %.2f | %.2f | %d | %.1f | %s |\n",
				s.Target, s.InState, mb(s.KVBytes), fill, s.LeanRSSMB, s.IdleRSSMB, s.ReqPerSec, s.P50ms, s.P99ms, s.Failures, s.PeakRSSMB, s.Notes)
		}
	}
	if len(r.Goals) > 0 {
		fmt.Fprintf(w, "\n### Goals, from the figures above\n\n| goal | measured | met |\n|---|---|---|\n")
		for _, g := range r.Goals {
			fmt.Fprintf(w, "| %s | %s | %s |\n", g.Goal, g.Measured, g.Met)
		}
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "\n### Scenarios that failed\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
	}
}

func writeThroughput(w io.Writer, rows []throughputRow) {
	fmt.Fprintln(w, "| scenario | conns | requests | req/s | p50 ms | p99 ms | p99.9 ms | failures | peak RSS MB | notes |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, t := range rows {
		rss := "—"
		if t.PeakRSSMB > 0 {
			rss = fmt.Sprintf("%.1f", t.PeakRSSMB)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.3f | %.3f | %.3f | %d | %s | %s |\n",
			t.Scenario, t.Conns, t.Requests, t.ReqPerSec, t.P50ms, t.P99ms, t.P999ms, t.Failures, rss, t.Notes)
	}
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// mergeRounds folds the rows of every round into one row per scenario:
// the median of each rate and latency figure, the sum of requests and
// failures, the highest peak RSS.
func mergeRounds(rounds [][]throughputRow) []throughputRow {
	var order []string
	by := map[string][]throughputRow{}
	for _, rows := range rounds {
		for _, r := range rows {
			if _, ok := by[r.Scenario]; !ok {
				order = append(order, r.Scenario)
			}
			by[r.Scenario] = append(by[r.Scenario], r)
		}
	}
	out := make([]throughputRow, 0, len(order))
	for _, name := range order {
		rows := by[name]
		m := rows[len(rows)-1]
		if len(rows) == 1 {
			out = append(out, m)
			continue
		}
		m.Requests, m.Failures, m.PeakRSSMB = 0, 0, 0
		rates := make([]string, len(rows))
		for i, r := range rows {
			m.Requests += r.Requests
			m.Failures += r.Failures
			m.PeakRSSMB = max(m.PeakRSSMB, r.PeakRSSMB)
			rates[i] = fmt.Sprintf("%.0f", r.ReqPerSec)
		}
		pick := func(f func(throughputRow) float64) float64 {
			v := make([]float64, len(rows))
			for i, r := range rows {
				v[i] = f(r)
			}
			return median(v)
		}
		m.ReqPerSec = pick(func(r throughputRow) float64 { return r.ReqPerSec })
		m.P50ms = pick(func(r throughputRow) float64 { return r.P50ms })
		m.P99ms = pick(func(r throughputRow) float64 { return r.P99ms })
		m.P999ms = pick(func(r throughputRow) float64 { return r.P999ms })
		m.Notes = strings.TrimSuffix(fmt.Sprintf("median of %d rounds (req/s %s); %s", len(rows), strings.Join(rates, ", "), m.Notes), "; ")
		out = append(out, m)
	}
	return out
}

// median of v (the mean of the middle two for an even count).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
