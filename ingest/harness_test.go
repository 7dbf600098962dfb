package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testOptions are the defaults of CHATTAP_* for the taps.
func testOptions() ingest.Options {
	return ingest.Options{
		MaxBodyBytes: 1 << 20, UpstreamTimeout: 5 * time.Second, TapAck: ingest.AckAsync, TapAckTimeout: 25 * time.Millisecond,
		AddonAckTimeout: 2 * time.Second, PublishBuffer: 1000, PublishWindow: 64,
	}
}

// harness is chattap's HTTP side on a real embedded JetStream.
type harness struct {
	js     jetstream.JetStream
	pub    *ingest.Publisher
	srv    *ingest.Server
	reg    *metrics.Registry
	url    string
	cursor uint64
}

func newHarness(t *testing.T, nc *nats.Conn, js jetstream.JetStream, o ingest.Options) *harness {
	t.Helper()
	reg := metrics.New()
	im := metrics.NewIngest(reg)
	pub, err := ingest.NewPublisher(nc, o.PublishBuffer, o.PublishWindow, time.Second, slog.New(slog.DiscardHandler), im)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ingest.New(ingest.Deps{Options: o, Publisher: pub, Metrics: im, MetricsHandler: reg.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	h := &harness{js: js, pub: pub, srv: srv, reg: reg, url: hs.URL}
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = pub.Stop(ctx)
	})
	return h
}

func startTaps(t *testing.T, configure func(*ingest.Options)) *harness {
	t.Helper()
	s := brokertest.Start(t)
	o := testOptions()
	if configure != nil {
		configure(&o)
	}
	return newHarness(t, s.Conn, s.JS, o)
}

// post sends body to route with headers and returns the answer.
func (h *harness) post(t *testing.T, route, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+route, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// stored is one Observation of a record on CHATTAP_RAW, with the
// record's subject and Nats-Msg-Id.
type stored struct {
	subject, msgID string
	obs            spec.Observation
}

// observations waits for the Observations of the next records on
// CHATTAP_RAW until it has at least n.
func (h *harness) observations(t *testing.T, n int) []stored {
	t.Helper()
	var out []stored
	for _, r := range h.records(t, n) {
		for _, o := range r.obs {
			out = append(out, stored{subject: r.subject, msgID: r.msgID, obs: o})
		}
	}
	return out
}

// record is one message on CHATTAP_RAW, read with spec.ReadRaw.
type record struct {
	subject, msgID string
	obs            []spec.Observation
}

// records waits for the next records on CHATTAP_RAW until they hold at
// least n Observations.
func (h *harness) records(t *testing.T, n int) []record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cons, err := h.js.OrderedConsumer(ctx, spec.StreamRaw, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: h.cursor + 1})
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for have := 0; have < n; {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("waiting for observation %d of %d: %v", have+1, n, err)
		}
		obs, err := spec.ReadRaw(msg.Data())
		if err != nil {
			t.Fatalf("record is not readable: %v\n%s", err, msg.Data())
		}
		meta, _ := msg.Metadata()
		h.cursor = meta.Sequence.Stream
		have += len(obs)
		out = append(out, record{subject: msg.Subject(), msgID: msg.Headers().Get(jetstream.MsgIDHeader), obs: obs})
	}
	return out
}

// rawCount is how many Observations CHATTAP_RAW holds.
func (h *harness) rawCount(t *testing.T) uint64 {
	t.Helper()
	st, err := h.js.Stream(t.Context(), spec.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// upstream is a real HTTP server that remembers what it was sent.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests []seen
}

type seen struct {
	method, uri string
	header      http.Header
	body        string
}

func newUpstream(t *testing.T, answer http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.requests = append(u.requests, seen{r.Method, r.RequestURI, r.Header.Clone(), string(b)})
		u.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) seen() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.requests...)
}

func replyWith(status int, header map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}
