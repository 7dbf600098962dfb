package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConsumerState is how far one durable consumer is behind its stream.
type ConsumerState struct {
	Stream, Consumer string
	// Pending messages are stored and not yet delivered to the consumer.
	Pending uint64
	// AckPending messages are delivered and not yet acknowledged.
	AckPending uint64
}

// consumerScrapeTimeout bounds how long a scrape waits for the broker.
const consumerScrapeTimeout = 2 * time.Second

// WatchConsumers exports the lag of the durable consumers this process
// runs, read from states at every scrape (so it costs nothing between
// scrapes): chattap_consumer_pending_messages and
// chattap_consumer_ack_pending_messages, by stream and consumer. states is
// called with a context bounded to two seconds and leaves out what it
// could not read; call WatchConsumers once per Registry.
func (r *Registry) WatchConsumers(states func(ctx context.Context) []ConsumerState) {
	r.reg.MustRegister(&consumerCollector{
		states:     states,
		pending:    prometheus.NewDesc("chattap_consumer_pending_messages", "Messages stored on the stream and not yet delivered to the durable consumer (the consumer's lag), by stream and consumer.", []string{"stream", "consumer"}, nil),
		ackPending: prometheus.NewDesc("chattap_consumer_ack_pending_messages", "Messages delivered to the durable consumer and not yet acknowledged, by stream and consumer.", []string{"stream", "consumer"}, nil),
	})
	r.names = append(r.names, "chattap_consumer_pending_messages", "chattap_consumer_ack_pending_messages")
}

type consumerCollector struct {
	states              func(ctx context.Context) []ConsumerState
	pending, ackPending *prometheus.Desc
}

func (c *consumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
}

func (c *consumerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), consumerScrapeTimeout)
	defer cancel()
	for _, s := range c.states(ctx) {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.Pending), s.Stream, s.Consumer)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(s.AckPending), s.Stream, s.Consumer)
	}
}
