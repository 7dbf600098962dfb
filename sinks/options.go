package sinks

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/chattap/chattap/metrics"
)

// Options are all the sinks' settings, read from the environment by main
// (caarlos0/env tags; a secret:"true" field must be redacted wherever it
// is shown). The zero value of any field means its default.
type Options struct {
	Delivery DeliveryOptions
	Segment  SegmentOptions
	Webhook  WebhookOptions
	File     FileOptions
}

// DeliveryOptions tune the Runner and the batching shared by every sink.
type DeliveryOptions struct {
	MaxDeliveries int           `env:"CHATTAP_SINK_MAX_DELIVERIES" envDefault:"20" help:"failed deliveries of one event to one sink before a retryable failure is dead-lettered too (neither a delivery the sink never answered nor a 401, 403 or 404 counts)"`
	MaxInFlight   int           `env:"CHATTAP_SINK_MAX_IN_FLIGHT" envDefault:"1000" help:"events per sink handed over and not yet acked (the consumer's MaxAckPending)"`
	BatchSize     int           `env:"CHATTAP_SINK_BATCH_SIZE" envDefault:"100" help:"events per request to Segment or the webhook (at most 2500)"`
	FlushInterval time.Duration `env:"CHATTAP_SINK_FLUSH_INTERVAL" envDefault:"500ms" help:"longest an event waits for its batch to fill before it is sent"`
	BackoffMin    time.Duration `env:"CHATTAP_SINK_BACKOFF_MIN" envDefault:"1s" help:"delay before the first redelivery after a retryable failure; it doubles each time"`
	BackoffMax    time.Duration `env:"CHATTAP_SINK_BACKOFF_MAX" envDefault:"5m" help:"longest delay between redeliveries (a longer Retry-After is still honoured, up to 1h)"`
	AckWait       time.Duration `env:"CHATTAP_SINK_ACK_WAIT" envDefault:"0s" help:"how long JetStream waits for an outcome before redelivering; 0: derived from the sink's timeout; else at least 3 × an HTTP sink's request timeout"`
	LagWarning    time.Duration `env:"CHATTAP_SINK_LAG_WARNING" envDefault:"30s" help:"how long a sink may go without delivering an event while its deliveries fail before /readyz says degraded, naming the sink and its lag"`
	Start         string        `env:"CHATTAP_SINK_START" envDefault:"all" help:"where a new sink's consumer starts: all (every event still on CHATTAP_EVENTS) or new"`
}

// DefaultDeliveryOptions are the values used for zero fields.
var DefaultDeliveryOptions = DeliveryOptions{
	MaxDeliveries: 20,
	MaxInFlight:   1000,
	BatchSize:     100,
	FlushInterval: 500 * time.Millisecond,
	BackoffMin:    time.Second,
	BackoffMax:    5 * time.Minute,
	LagWarning:    30 * time.Second,
	Start:         "all",
}

func (o DeliveryOptions) withDefaults() DeliveryOptions {
	d := DefaultDeliveryOptions
	if o.MaxDeliveries <= 0 {
		o.MaxDeliveries = d.MaxDeliveries
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = d.MaxInFlight
	}
	if o.BatchSize <= 0 {
		o.BatchSize = d.BatchSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = d.FlushInterval
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = d.BackoffMin
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = d.BackoffMax
	}
	if o.LagWarning <= 0 {
		o.LagWarning = d.LagWarning
	}
	if o.Start == "" {
		o.Start = d.Start
	}
	return o
}

// Validate reports every bad value, each with its variable's name.
func (o DeliveryOptions) Validate() error {
	var errs []error
	if o.MaxDeliveries < 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_SINK_MAX_DELIVERIES=%d: must be at least 1", o.MaxDeliveries))
	}
	if o.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_SINK_MAX_IN_FLIGHT=%d: must be at least 1", o.MaxInFlight))
	}
	if o.BatchSize < 0 || o.BatchSize > 2500 {
		errs = append(errs, fmt.Errorf("CHATTAP_SINK_BATCH_SIZE=%d: must be 1 to 2500", o.BatchSize))
	}
	if o.FlushInterval < 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_SINK_FLUSH_INTERVAL=%v: must be positive", o.FlushInterval))
	}
	if o.BackoffMin < 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_SINK_BACKOFF_MIN=%v: must be positive", o.BackoffMin))
	}
	if o.BackoffMax < 0 || (o.BackoffMax > 0 && o.BackoffMax < o.BackoffMin) {
		errs = append(errs, fmt.Errorf("CHATTAP_SINK_BACKOFF_MAX=%v: must be at least CHATTAP_SINK_BACKOFF_MIN", o.BackoffMax))
	}
	if o.AckWait < 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_SINK_ACK_WAIT=%v: must be 0 (derived) or positive", o.AckWait))
	}
	if o.LagWarning < 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_SINK_LAG_WARNING=%v: must be positive", o.LagWarning))
	}
	if o.Start != "" && o.Start != "all" && o.Start != "new" {
		errs = append(errs, fmt.Errorf("CHATTAP_SINK_START=%q: must be all or new", o.Start))
	}
	return errors.Join(errs...)
}

// Validate reports every bad value of every sink, each with its
// variable's name.
func (o Options) Validate() error {
	return errors.Join(o.Delivery.Validate(), o.Segment.Validate(), o.Webhook.Validate(), o.File.Validate(), o.validateAckWait())
}

// validateAckWait refuses an explicit CHATTAP_SINK_ACK_WAIT shorter than
// three request timeouts of an HTTP sink that is on: the watchdog (at nine
// tenths of it) would time out deliveries the destination is still
// answering, and every event would be sent again and again. Such a
// timeout no longer dead-letters (settle), but it is a setting that
// cannot work.
func (o Options) validateAckWait() error {
	if o.Delivery.AckWait <= 0 {
		return nil
	}
	var errs []error
	check := func(name string, timeout time.Duration) {
		if timeout <= 0 {
			timeout = defaultRequestTimeout
		}
		if o.Delivery.AckWait < 3*timeout {
			errs = append(errs, fmt.Errorf("CHATTAP_SINK_ACK_WAIT=%v: must be at least 3 × %s (%v), or the watchdog gives up on requests still being answered; set it to %v or more, or 0 to derive it", o.Delivery.AckWait, name, timeout, 3*timeout))
		}
	}
	if o.Segment.Enabled() {
		check("CHATTAP_SEGMENT_TIMEOUT", o.Segment.Timeout)
	}
	if o.Webhook.Enabled() {
		check("CHATTAP_WEBHOOK_SINK_TIMEOUT", o.Webhook.Timeout)
	}
	return errors.Join(errs...)
}

// defaultRequestTimeout is an HTTP sink's request time limit when its
// timeout is zero.
const defaultRequestTimeout = 10 * time.Second

// Deps are what the sinks take from main rather than from configuration.
type Deps struct {
	// Logger receives the sinks' logs; nil discards them.
	Logger *slog.Logger
	// Metrics counts deliveries; nil counts nothing.
	Metrics *metrics.Sinks
	// Stdout is where CHATTAP_FILE_SINK_PATH=- writes (main's stdout).
	Stdout io.Writer
	// Transport carries the HTTP sinks' requests; nil: a transport of
	// their own. Tests and benchmarks set it.
	Transport http.RoundTripper
}

func (d Deps) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

func (d Deps) transport() http.RoundTripper {
	if d.Transport != nil {
		return d.Transport
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	return t
}

// New builds every sink that o turns on, in the order segment, webhook,
// file. On an error it closes those it had built. The caller owns the
// sinks (a Runner takes them over).
func New(o Options, d Deps) ([]Sink, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var out []Sink
	fail := func(err error) ([]Sink, error) {
		for _, s := range out {
			_ = s.Close(closedContext())
		}
		return nil, err
	}
	if o.Segment.Enabled() {
		s, err := NewSegment(o.Segment, o.Delivery, d)
		if err != nil {
			return fail(err)
		}
		out = append(out, s)
	}
	if o.Webhook.Enabled() {
		s, err := NewWebhook(o.Webhook, o.Delivery, d)
		if err != nil {
			return fail(err)
		}
		out = append(out, s)
	}
	if o.File.Enabled() {
		s, err := NewFile(o.File, o.Delivery, d)
		if err != nil {
			return fail(err)
		}
		out = append(out, s)
	}
	return out, nil
}
