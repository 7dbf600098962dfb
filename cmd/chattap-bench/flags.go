package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenario names of -scenarios.
const (
	scDirect   = "direct"
	scBaseline = "baseline"
	scAsync    = "async"
	scSync     = "sync"
	scIngest   = "ingest"
	scE2E      = "e2e"
	scConns    = "conns"
	scState    = "state"
)

var allScenarios = []string{scDirect, scBaseline, scAsync, scSync, scIngest, scE2E, scConns, scState}

// config is every flag of the bench.
type config struct {
	scenarios      []string
	quick          bool
	conns          int
	duration       time.Duration
	warmup         time.Duration
	requests       int64
	rounds         int
	rates          []float64
	growthConns    []int
	states         []int
	stateDuration  time.Duration
	e2eDuration    time.Duration
	e2eWait        time.Duration
	prefillTimeout time.Duration
	drainWait      time.Duration
	ack            string
	chattapBin     string
	jsonPath       string
	keep           bool
	seed           uint64
	childEnv       envList
}

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

var errUsage = errors.New("usage")

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("chattap-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	var scen, growth, states string
	fs.StringVar(&scen, "scenarios", strings.Join(allScenarios, ","), "comma list of scenarios to run: "+strings.Join(allScenarios, ", "))
	fs.BoolVar(&c.quick, "quick", false, "shorter runs, one round and smaller state (about a minute and a half in all)")
	fs.IntVar(&c.conns, "c", 32, "connections (concurrent closed-loop clients) of the direct, baseline, chattap and e2e scenarios")
	fs.DurationVar(&c.duration, "d", 0, "measured time of each throughput scenario (default 4s, -quick 3s)")
	fs.DurationVar(&c.warmup, "warmup", 0, "unmeasured warm-up before each measurement (default 1s, -quick 500ms)")
	fs.Int64Var(&c.requests, "n", 0, "if set, each throughput scenario sends this many requests instead of running for -d")
	var rates string
	fs.StringVar(&rates, "rates", "", "also measure direct, baseline, chattap and e2e at these fixed request rates (open loop, latency from when each request was due; default 200,500,1000, -quick 500); 0: do not")
	fs.IntVar(&c.rounds, "rounds", 0, "rounds of the direct, baseline and chattap scenarios, each figure the median over them (default 3, -quick 1)")
	fs.StringVar(&growth, "growth-conns", "1,16,64,256", "connection counts of the conns scenario")
	fs.StringVar(&states, "states", "", "conversations in state of the state scenario (default 1000,100000; -quick 1000; 1000000 is possible but slow)")
	fs.DurationVar(&c.stateDuration, "state-d", 0, "measured time at each state size (default 5s, -quick 3s)")
	fs.DurationVar(&c.e2eDuration, "e2e-d", 0, "sustained load of the e2e scenario (default 10s, -quick 4s)")
	fs.DurationVar(&c.e2eWait, "e2e-wait", 3*time.Minute, "longest wait for the receiver to get every event after the e2e load")
	fs.DurationVar(&c.prefillTimeout, "prefill-timeout", 10*time.Minute, "longest time spent filling state at each size; what was reached is reported")
	fs.DurationVar(&c.drainWait, "drain-wait", 0, "after each chattap throughput run, longest wait for its events to reach the receiver before peak RSS is read (default 30s, -quick 10s)")
	fs.StringVar(&c.ack, "ack", "", "CHATTAP_TAP_ACK of the e2e, conns and state scenarios (default: chattap's own default)")
	fs.StringVar(&c.chattapBin, "chattap", "", "a chattap binary to run (default: go build ./cmd/chattap)")
	fs.StringVar(&c.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (chattap's data and logs)")
	fs.Var(&c.childEnv, "env", "KEY=VALUE added to every chattap child's environment (repeatable), to measure a setting, e.g. -env CHATTAP_DEDUP_WINDOW=1m")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the workload (texts, replies, conversation shapes)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errUsage
		}
		return nil, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "chattap-bench: unexpected arguments %q\n", fs.Args())
		return nil, errUsage
	}
	for s := range strings.SplitSeq(scen, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			fmt.Fprintf(stderr, "chattap-bench: unknown scenario %q (known: %s)\n", s, strings.Join(allScenarios, ", "))
			return nil, errUsage
		}
		c.scenarios = append(c.scenarios, s)
	}
	def := func(d *time.Duration, full, quick time.Duration) {
		if *d > 0 {
			return
		}
		*d = full
		if c.quick {
			*d = quick
		}
	}
	def(&c.duration, 4*time.Second, 3*time.Second)
	def(&c.warmup, time.Second, 500*time.Millisecond)
	def(&c.stateDuration, 5*time.Second, 3*time.Second)
	def(&c.e2eDuration, 10*time.Second, 4*time.Second)
	def(&c.drainWait, 30*time.Second, 10*time.Second)
	if states == "" {
		states = "1000,100000"
		if c.quick {
			states = "1000"
		}
	}
	if c.rounds <= 0 {
		c.rounds = 3
		if c.quick {
			c.rounds = 1
		}
	}
	if rates == "" {
		rates = "200,500,1000"
		if c.quick {
			rates = "500"
		}
	}
	for f := range strings.SplitSeq(rates, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r < 0 || r > 1e6 {
			fmt.Fprintf(stderr, "chattap-bench: -rates: %q is not a rate\n", f)
			return nil, errUsage
		}
		if r > 0 {
			c.rates = append(c.rates, r)
		}
	}
	var err error
	if c.growthConns, err = intList(growth); err != nil {
		fmt.Fprintln(stderr, "chattap-bench: -growth-conns:", err)
		return nil, errUsage
	}
	if c.states, err = intList(states); err != nil {
		fmt.Fprintln(stderr, "chattap-bench: -states:", err)
		return nil, errUsage
	}
	slices.Sort(c.states)
	if c.conns < 1 {
		fmt.Fprintln(stderr, "chattap-bench: -c must be at least 1")
		return nil, errUsage
	}
	if c.ack != "" && c.ack != "sync" && c.ack != "async" {
		fmt.Fprintln(stderr, "chattap-bench: -ack must be sync or async")
		return nil, errUsage
	}
	return c, nil
}

func intList(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func (c *config) has(s string) bool { return slices.Contains(c.scenarios, s) }
