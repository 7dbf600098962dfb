package sinks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/chattap/chattap/metrics"
)

// WebhookOptions configure the webhook sink, which POSTs batches of events
// in Segment's /v1/batch JSON to any HTTP endpoint.
type WebhookOptions struct {
	URL         string        `env:"CHATTAP_WEBHOOK_SINK_URL" secret:"true" help:"when set, events are POSTed there as Segment /v1/batch JSON ({\"batch\":[…],\"sentAt\":…})"`
	Headers     string        `env:"CHATTAP_WEBHOOK_SINK_HEADERS" secret:"true" help:"extra request headers, 'Name: value' pairs separated by commas or newlines"`
	Secret      string        `env:"CHATTAP_WEBHOOK_SINK_SECRET" secret:"true" help:"when set, each request carries X-Chattap-Signature: sha256=<hex HMAC-SHA256 of the body with this secret>"`
	Timeout     time.Duration `env:"CHATTAP_WEBHOOK_SINK_TIMEOUT" envDefault:"10s" help:"time limit of one request to the webhook"`
	Concurrency int           `env:"CHATTAP_WEBHOOK_SINK_CONCURRENCY" envDefault:"4" help:"requests to the webhook at the same time"`
}

// SignatureHeader carries the webhook body's HMAC-SHA256 as
// "sha256=<hex>" when WebhookOptions.Secret is set.
const SignatureHeader = "X-Chattap-Signature"

// Enabled reports whether the webhook sink is on.
func (o WebhookOptions) Enabled() bool { return o.URL != "" }

// Validate reports every bad value with its variable's name. It never
// repeats the URL or a header's value: they may hold secrets.
func (o WebhookOptions) Validate() error {
	var errs []error
	if o.URL != "" {
		if u, err := url.Parse(o.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("CHATTAP_WEBHOOK_SINK_URL: must be an http:// or https:// URL"))
		}
	}
	if _, err := ParseHeaders(o.Headers); err != nil {
		errs = append(errs, fmt.Errorf("CHATTAP_WEBHOOK_SINK_HEADERS: %w", err))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_WEBHOOK_SINK_TIMEOUT=%v: must be positive", o.Timeout))
	}
	if o.Concurrency < 0 || o.Concurrency > 256 {
		errs = append(errs, fmt.Errorf("CHATTAP_WEBHOOK_SINK_CONCURRENCY=%d: must be 1 to 256", o.Concurrency))
	}
	return errors.Join(errs...)
}

// ParseHeaders reads "Name: value" pairs separated by newlines or commas. A
// comma-separated piece without a "Name:" of its own continues the value
// before it, so "Accept: a, b" is one header.
func ParseHeaders(s string) (http.Header, error) {
	h := http.Header{}
	var last string
	for _, line := range strings.Split(s, "\n") {
		for _, piece := range strings.Split(line, ",") {
			piece = strings.TrimSpace(piece)
			if piece == "" {
				continue
			}
			name, value, ok := strings.Cut(piece, ":")
			if ok && validHeaderName(strings.TrimSpace(name)) {
				last = http.CanonicalHeaderKey(strings.TrimSpace(name))
				h.Add(last, strings.TrimSpace(value))
				continue
			}
			if last == "" {
				return nil, errors.New("each header must be written Name: value")
			}
			vs := h[last]
			vs[len(vs)-1] += ", " + piece
		}
	}
	return h, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '-' || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			return false
		}
	}
	return true
}

// Webhook is the webhook sink. It batches events, POSTs each batch and
// settles its events by the answer, as ClassifyStatus says: 2xx delivered;
// 5xx, 408, 429 and network errors retryable; 401, 403, 404 a
// misconfigured destination; 400, 413, 422 permanent after splitting the
// batch to find the events refused; other codes permanent for the batch.
type Webhook struct {
	url     string
	headers http.Header
	secret  []byte
	timeout time.Duration
	client  *http.Client
	log     *slog.Logger
	m       *metrics.Sinks
	linger  time.Duration
	size    int // events per request
	tr      tracker
	b       *batcher
	now     func() time.Time
}

var _ Sink = (*Webhook)(nil)

// NewWebhook makes the webhook sink; it starts its batching goroutine.
func NewWebhook(o WebhookOptions, d DeliveryOptions, deps Deps) (*Webhook, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if !o.Enabled() {
		return nil, errors.New("webhook sink: CHATTAP_WEBHOOK_SINK_URL is not set")
	}
	d = d.withDefaults()
	h, _ := ParseHeaders(o.Headers)
	if o.Timeout <= 0 {
		o.Timeout = defaultRequestTimeout
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	w := &Webhook{
		url:     o.URL,
		headers: h,
		timeout: o.Timeout,
		// No redirects: a 3xx is an answer (permanent), and following one
		// could carry the signature or headers somewhere unexpected.
		client: &http.Client{Transport: deps.transport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		log:    deps.logger().With("sink", "webhook"),
		m:      deps.Metrics,
		linger: d.FlushInterval,
		size:   d.BatchSize,
		now:    time.Now,
	}
	if o.Secret != "" {
		w.secret = []byte(o.Secret)
	}
	w.b = newBatcher(d.BatchSize, d.FlushInterval, o.Concurrency, w.sendBatch)
	return w, nil
}

// Name is "webhook".
func (w *Webhook) Name() string { return "webhook" }

// MaxLatency is the longest a delivery can take before its outcome is
// known: a full linger and a few requests (a refused batch is split).
func (w *Webhook) MaxLatency() time.Duration { return w.linger + 3*w.timeout }

// Deliver queues d for the next batch; see Sink.
func (w *Webhook) Deliver(_ context.Context, d Delivery, done func(error)) {
	w.b.add(item{d: d, done: w.tr.track(done)})
}

// Close sends what is queued and waits for the answers until ctx ends.
func (w *Webhook) Close(ctx context.Context) error {
	return w.tr.closeWith(ctx, w.b.close)
}

func (w *Webhook) sendBatch(items []item) {
	raws := make([]json.RawMessage, len(items))
	caps := make([]int, len(items))
	for i, it := range items {
		raws[i] = it.d.Raw
		caps[i] = isolationCap(w.size, it.d.Isolation)
	}
	// The accepted events are settled first: a failure settled after an
	// acceptance in the same round raises the failing events' isolation
	// level (see failures), which is what bisects a poison event out.
	errs := sendIsolating(raws, caps, w.post)
	for i, err := range errs {
		if err == nil {
			items[i].done(nil)
		}
	}
	for i, err := range errs {
		if err != nil {
			items[i].done(err)
		}
	}
}

// BatchBody is Segment's /v1/batch JSON around already-encoded messages.
func BatchBody(msgs []json.RawMessage, sentAt time.Time) []byte {
	n := 40
	for _, m := range msgs {
		n += len(m) + 1
	}
	b := bytes.NewBuffer(make([]byte, 0, n))
	b.WriteString(`{"batch":[`)
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(m)
	}
	b.WriteString(`],"sentAt":"`)
	b.WriteString(sentAt.UTC().Format(time.RFC3339Nano))
	b.WriteString(`"}`)
	return b.Bytes()
}

func (w *Webhook) post(msgs []json.RawMessage) error {
	body := BatchBody(msgs, w.now())
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(errors.New("webhook sink: cannot make a request to the configured URL"))
	}
	for k, vs := range w.headers {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "chattap")
	if w.secret != nil {
		mac := hmac.New(sha256.New, w.secret)
		mac.Write(body)
		req.Header.Set(SignatureHeader, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	res, err := w.client.Do(req)
	if err != nil {
		return networkError(err)
	}
	defer res.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // keep the connection reusable
	text := strings.TrimSpace(string(snippet))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		text = redactSecrets(text, append(credentialsOf(w.url, w.headers), string(w.secret)))
	}
	err = ClassifyStatus(res.StatusCode, res.Header, text)
	if err != nil {
		w.log.Debug("webhook refused a batch", "events", len(msgs), "status", res.StatusCode)
	}
	return err
}
