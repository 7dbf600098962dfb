package main

import (
	"math"
	"slices"
	"time"
)

// latencies holds every sample of one measurement. Sorting all samples
// gives exact percentiles: a run is bounded in time, so even at 50,000
// requests/s for a minute this is a few tens of MB at most, and
// maxSamples caps it.
type latencies struct {
	samples []time.Duration
	sorted  bool
	dropped int64
}

// maxSamples bounds the memory of one measurement; past it samples are
// counted but not kept (the report says so).
const maxSamples = 20_000_000

func (l *latencies) add(d time.Duration) {
	if len(l.samples) >= maxSamples {
		l.dropped++
		return
	}
	l.samples = append(l.samples, d)
	l.sorted = false
}

// merge appends o's samples to l.
func (l *latencies) merge(o *latencies) {
	room := max(maxSamples-len(l.samples), 0)
	take := min(room, len(o.samples))
	l.samples = append(l.samples, o.samples[:take]...)
	l.dropped += o.dropped + int64(len(o.samples)-take)
	l.sorted = false
}

func (l *latencies) count() int { return len(l.samples) }

// percentile is the nearest-rank percentile p (0 < p ≤ 100): the smallest
// sample such that at least p% of the samples are at or below it. Zero
// when there is no sample.
func (l *latencies) percentile(p float64) time.Duration {
	n := len(l.samples)
	if n == 0 {
		return 0
	}
	if !l.sorted {
		slices.Sort(l.samples)
		l.sorted = true
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return l.samples[rank-1]
}

// ms is d in milliseconds, for the table.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
