package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Ingest are the taps' metrics. A nil *Ingest records nothing.
type Ingest struct {
	requests      *prometheus.CounterVec
	forbidden     *prometheus.CounterVec
	undecodable   *prometheus.CounterVec
	upstream      *prometheus.HistogramVec
	overhead      *prometheus.HistogramVec
	published     *prometheus.CounterVec
	publishFailed prometheus.Counter
	dropped       prometheus.Counter
	lost          prometheus.Counter
	ackMissed     prometheus.Counter
	tooLarge      prometheus.Counter
	buffered      prometheus.Gauge
}

// NewIngest registers the taps' metrics on r.
func NewIngest(r *Registry) *Ingest {
	return &Ingest{
		requests:      r.counterVec("chattap_tap_requests_total", "Requests to each tap, by route and the status answered.", "route", "code"),
		forbidden:     r.counterVec("chattap_tap_forbidden_total", "Requests refused for a missing or wrong token, by route.", "route"),
		undecodable:   r.counterVec("chattap_tap_undecodable_total", "Bodies that were not the JSON their route expects, by route.", "route"),
		upstream:      r.histogramVec("chattap_tap_upstream_seconds", "Time the upstream took to answer, by route.", []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "route"),
		overhead:      r.histogramVec("chattap_tap_overhead_seconds", "Time an exchange spent in chattap beyond the upstream's own answer (reading, decoding, recording, relaying), by route; with no upstream, the whole exchange.", []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1}, "route"),
		published:     r.counterVec("chattap_records_published_total", "Records (one per exchange) JetStream acknowledged, by the source of the caller's event.", "source"),
		publishFailed: r.counter("chattap_records_publish_failures_total", "Rounds of publishes that failed and were sent again, in order."),
		dropped:       r.counter("chattap_records_dropped_total", "Records dropped because the publish buffer was full."),
		lost:          r.counter("chattap_records_lost_total", "Records still unpublished when chattap stopped."),
		ackMissed:     r.counter("chattap_tap_sync_ack_missed_total", "Exchanges in sync mode answered before JetStream acknowledged their record (each is logged with its exchange id)."),
		tooLarge:      r.counter("chattap_records_too_large_total", "Records larger than the broker's max_payload, stored without their largest payloads (or refused, on /userlike/addon)."),
		buffered:      r.gauge("chattap_records_buffered", "Records held in memory, not yet acknowledged by JetStream."),
	}
}

// Request counts one answered request.
func (m *Ingest) Request(route string, code int) {
	if m != nil {
		m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	}
}

// Forbidden counts one request refused for its token.
func (m *Ingest) Forbidden(route string) {
	if m != nil {
		m.forbidden.WithLabelValues(route).Inc()
	}
}

// Undecodable counts one body that was not the expected JSON.
func (m *Ingest) Undecodable(route string) {
	if m != nil {
		m.undecodable.WithLabelValues(route).Inc()
	}
}

// Upstream records how long an upstream took, in seconds.
func (m *Ingest) Upstream(route string, seconds float64) {
	if m != nil {
		m.upstream.WithLabelValues(route).Observe(seconds)
	}
}

// Overhead records the time, in seconds, chattap added to one exchange.
func (m *Ingest) Overhead(route string, seconds float64) {
	if m != nil {
		m.overhead.WithLabelValues(route).Observe(seconds)
	}
}

// Published counts one record stored by JetStream.
func (m *Ingest) Published(source string) {
	if m != nil {
		m.published.WithLabelValues(source).Inc()
	}
}

// PublishFailed counts one round of failed publishes.
func (m *Ingest) PublishFailed() {
	if m != nil {
		m.publishFailed.Inc()
	}
}

// Dropped counts one record dropped for a full buffer.
func (m *Ingest) Dropped() {
	if m != nil {
		m.dropped.Inc()
	}
}

// Lost counts records abandoned at shutdown.
func (m *Ingest) Lost(n int64) {
	if m != nil {
		m.lost.Add(float64(n))
	}
}

// AckMissed counts one sync-mode exchange that did not wait for its ack.
func (m *Ingest) AckMissed() {
	if m != nil {
		m.ackMissed.Inc()
	}
}

// TooLarge counts one record over the broker's max_payload.
func (m *Ingest) TooLarge() {
	if m != nil {
		m.tooLarge.Inc()
	}
}

// Buffered sets how many records are held in memory.
func (m *Ingest) Buffered(n int64) {
	if m != nil {
		m.buffered.Set(float64(n))
	}
}
