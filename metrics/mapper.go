package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Mapper counts what the mapper stage does. Its methods are safe for
// concurrent use, never block, and do nothing on a nil *Mapper, so a
// caller without metrics passes nil.
type Mapper struct {
	observations *prometheus.CounterVec
	published    *prometheus.CounterVec
	publishFails prometheus.Counter
	conflicts    prometheus.Counter
	seconds      *prometheus.HistogramVec
}

// Results of an Observation, the label of chattap_mapper_observations_total.
const (
	// MapperMapped: messages were published and the Observation acked.
	MapperMapped = "mapped"
	// MapperEmpty: nothing to emit (operator status, a reply that was not
	// delivered, a disabled event); acked.
	MapperEmpty = "empty"
	// MapperDuplicate: already applied to the conversation; acked.
	MapperDuplicate = "duplicate"
	// MapperRecordOff: the Record Live Chat Events toggle was off; acked.
	MapperRecordOff = "record_off"
	// MapperUnmappable: can never yield a message; acked.
	MapperUnmappable = "unmappable"
	// MapperRetry: publishing or the state bucket failed; naked.
	MapperRetry = "retry"
)

// NewMapper registers the mapper's metrics on r.
func NewMapper(r *Registry) *Mapper {
	return &Mapper{
		observations: r.counterVec("chattap_mapper_observations_total",
			"Observations the mapper finished with, by source and result (mapped, empty, duplicate, record_off, unmappable, retry).", "source", "result"),
		published: r.counterVec("chattap_mapper_events_published_total",
			"Segment messages the mapper stored on CHATTAP_EVENTS, by event (identify for identifies).", "event"),
		publishFails: r.counter("chattap_mapper_publish_failures_total",
			"Observations naked because a message could not be published to CHATTAP_EVENTS."),
		conflicts: r.counter("chattap_mapper_state_conflicts_total",
			"Writes of conversation state that lost a compare-and-set race and were mapped again."),
		seconds: r.histogramVec("chattap_mapper_observation_seconds",
			"Time from taking an Observation to acking it, by result.",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}, "result"),
	}
}

// Observation counts one Observation finished with result (one of the
// Mapper* results) after took.
func (m *Mapper) Observation(source, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.observations.WithLabelValues(source, result).Inc()
	m.seconds.WithLabelValues(result).Observe(took.Seconds())
}

// Published counts one message stored on CHATTAP_EVENTS.
func (m *Mapper) Published(event string) {
	if m == nil {
		return
	}
	m.published.WithLabelValues(event).Inc()
}

// PublishFailed counts an Observation naked for a failed publish.
func (m *Mapper) PublishFailed() {
	if m == nil {
		return
	}
	m.publishFails.Inc()
}

// StateConflict counts a lost compare-and-set on conversation state.
func (m *Mapper) StateConflict() {
	if m == nil {
		return
	}
	m.conflicts.Inc()
}
