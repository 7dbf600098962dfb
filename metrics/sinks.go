package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sinks counts what the delivery runner does, per sink. Every method is
// safe for concurrent use, and safe on a nil *Sinks (it then does nothing),
// so tests and subcommands may leave metrics out.
type Sinks struct {
	delivered    *prometheus.CounterVec
	retried      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	dlqErrors    *prometheus.CounterVec
	inFlight     *prometheus.GaugeVec
	latency      *prometheus.HistogramVec
}

// NewSinks registers the sinks' metrics on r.
func NewSinks(r *Registry) *Sinks {
	return &Sinks{
		delivered: r.counterVec("chattap_sink_delivered_total",
			"Events a sink's destination accepted (the JetStream message was acked).", "sink"),
		retried: r.counterVec("chattap_sink_retried_total",
			"Deliveries that failed in a retryable way and were NAKed for redelivery, by failure class.", "sink", "class"),
		deadLettered: r.counterVec("chattap_sink_dead_lettered_total",
			"Events published to CHATTAP_DLQ and terminated, by failure class.", "sink", "class"),
		dlqErrors: r.counterVec("chattap_sink_dlq_publish_errors_total",
			"Failed publishes to CHATTAP_DLQ (the event is NAKed and tried again).", "sink"),
		inFlight: r.gaugeVec("chattap_sink_in_flight",
			"Events handed to a sink whose outcome is not known yet.", "sink"),
		latency: r.histogramVec("chattap_sink_delivery_seconds",
			"Time from handing an event to a sink to knowing its outcome.",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "sink"),
	}
}

// Delivered counts one event accepted by sink's destination.
func (s *Sinks) Delivered(sink string) {
	if s == nil {
		return
	}
	s.delivered.WithLabelValues(sink).Inc()
}

// Retried counts one retryable failure of class (e.g. "http_503",
// "network") on sink.
func (s *Sinks) Retried(sink, class string) {
	if s == nil {
		return
	}
	s.retried.WithLabelValues(sink, class).Inc()
}

// DeadLettered counts one event of sink moved to the DLQ for class.
func (s *Sinks) DeadLettered(sink, class string) {
	if s == nil {
		return
	}
	s.deadLettered.WithLabelValues(sink, class).Inc()
}

// DLQPublishFailed counts one failed publish to the DLQ.
func (s *Sinks) DLQPublishFailed(sink string) {
	if s == nil {
		return
	}
	s.dlqErrors.WithLabelValues(sink).Inc()
}

// InFlight moves sink's in-flight gauge by delta (+1 when an event is handed
// over, -1 when its outcome is known).
func (s *Sinks) InFlight(sink string, delta int) {
	if s == nil {
		return
	}
	s.inFlight.WithLabelValues(sink).Add(float64(delta))
}

// Observe records how long one delivery to sink took.
func (s *Sinks) Observe(sink string, d time.Duration) {
	if s == nil {
		return
	}
	s.latency.WithLabelValues(sink).Observe(d.Seconds())
}
