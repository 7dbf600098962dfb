package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/chattap/chattap/spec"
)

// Routes of the taps.
const (
	RouteWebhook         = "/userlike/webhook"
	RouteAPI             = "/userlike/api"
	RouteChannelOutbound = "/userlike/channel/outbound"
	RouteChannelInbound  = "/userlike/channel/inbound"
	RouteAddon           = "/userlike/addon"
)

// tap is one proxied route: it forwards the exchange unchanged and records
// what it saw.
type tap struct {
	srv         *Server
	route       string
	source      spec.Source
	reply       spec.Source // the source of the upstream's answer; "" when it is not recorded
	tokenHeader string
	token       string
	target      *url.URL // nil: no upstream
	proxy       *httputil.ReverseProxy
}

// exchangeState travels from the handler to the proxy's hooks in the
// request's context.
type exchangeState struct {
	ex      exchange
	request []*spec.Observation
	cid     string
	started time.Time
	status  int
	// began is when the handler took the request and upstream how long
	// the upstream took to answer: the difference is the tap's overhead.
	began    time.Time
	upstream time.Duration
}

type stateKey struct{}

func (t *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := t.srv
	limit := s.Options.MaxBodyBytes
	began := time.Now()
	body, err := readBody(w, r, limit)
	if err != nil {
		s.Metrics.Request(t.route, answerBodyError(w, err, limit))
		return
	}
	st := &exchangeState{ex: exchange{id: s.NewID(), received: s.Now().UTC(), fields: s.ChannelFields}, began: began}
	st.request = t.decodeRequest(&st.ex, body)
	if len(st.request) > 0 {
		st.cid = st.request[0].ConversationID
	}
	if t.target == nil {
		t.answerItself(w, st)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	st.started = time.Now()
	// The transport bounds only the wait for the answer's headers; this
	// bounds the body too, so an upstream that sends headers and then
	// stalls cannot hold the exchange (and the reply's reader) for ever.
	ctx, cancel := context.WithTimeout(r.Context(), s.Options.UpstreamTimeout)
	defer cancel()
	t.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, stateKey{}, st)))
	s.Metrics.Request(t.route, st.status)
	if st.upstream > 0 {
		s.Metrics.Overhead(t.route, (time.Since(st.began) - st.upstream).Seconds())
	}
}

func (t *tap) decodeRequest(ex *exchange, body []byte) []*spec.Observation {
	var obs []*spec.Observation
	switch t.source {
	case spec.SourceChatbotWebhook, spec.SourceChatbotAPI:
		obs = ex.decodeChatbot(t.source, body, 0, "")
	default:
		obs = []*spec.Observation{ex.decodeChannel(t.source, body)}
	}
	for _, o := range obs {
		if o.Kind == spec.KindUndecodable {
			t.srv.Metrics.Undecodable(t.route)
		}
	}
	return obs
}

// answerItself is the webhook with no bot configured: chattap is the bot
// that never says anything.
func (t *tap) answerItself(w http.ResponseWriter, st *exchangeState) {
	t.record(st, st.request, http.StatusOK)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("{}"))
	t.srv.Metrics.Request(t.route, http.StatusOK)
	t.srv.Metrics.Overhead(t.route, time.Since(st.began).Seconds())
}

// record hands the exchange's record (obs, with the status the caller
// got) to the publisher; in sync mode it waits, at most TapAckTimeout,
// until JetStream stored it. It never fails the exchange: a record not
// stored in time is a miss, counted and logged with the exchange id.
func (t *tap) record(st *exchangeState, obs []*spec.Observation, status int) {
	if len(obs) == 0 {
		return
	}
	s := t.srv
	rec := spec.NewRecord(st.ex.id, st.ex.received, status, obs)
	if s.Options.TapAck != AckSync {
		_ = s.Publisher.Enqueue(rec, nil)
		return
	}
	stored := make(chan error, 1)
	err := s.Publisher.Enqueue(rec, func(err error) { stored <- err })
	if err == nil {
		timer := time.NewTimer(s.Options.TapAckTimeout)
		select {
		case err = <-stored:
		case <-timer.C:
			err = fmt.Errorf("not stored within CHATTAP_TAP_ACK_TIMEOUT (%s)", s.Options.TapAckTimeout)
		}
		timer.Stop()
	}
	if err != nil {
		s.Metrics.AckMissed()
		s.Log.Warn("sync ack missed: exchange answered before its record was stored", "exchange", rec.ID, "route", t.route, "status", status, "err", err)
	}
}

func (t *tap) newProxy(transport http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        t.rewrite,
		Transport:      transport,
		BufferPool:     bufferPool{},
		ModifyResponse: t.modifyResponse,
		ErrorHandler:   t.upstreamFailed,
		ErrorLog:       nil,
	}
}

// forwardedHeaders are removed by ReverseProxy before Rewrite; a tap puts
// back whatever the caller sent, so the upstream sees the same headers.
var forwardedHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

func (t *tap) rewrite(pr *httputil.ProxyRequest) {
	u := *t.target
	if q := pr.In.URL.RawQuery; q != "" {
		if u.RawQuery == "" {
			u.RawQuery = q
		} else {
			u.RawQuery += "&" + q
		}
	}
	pr.Out.URL = &u
	pr.Out.Host = ""
	for _, h := range forwardedHeaders {
		if v, ok := pr.In.Header[h]; ok {
			pr.Out.Header[h] = v
		}
	}
}

// modifyResponse records the exchange once the upstream answered. For the
// webhook it reads the bot's reply (bounded), records one Observation per
// event in it, and hands the same bytes on to the caller.
func (t *tap) modifyResponse(resp *http.Response) error {
	st := resp.Request.Context().Value(stateKey{}).(*exchangeState)
	st.status = resp.StatusCode
	st.upstream = time.Since(st.started)
	t.srv.Metrics.Upstream(t.route, st.upstream.Seconds())
	obs := st.request
	if t.reply != "" {
		replies, err := t.readReply(resp, st)
		if err != nil {
			return err
		}
		obs = append(obs, replies...)
	}
	t.record(st, obs, resp.StatusCode)
	return nil
}

func (t *tap) readReply(resp *http.Response, st *exchangeState) ([]*spec.Observation, error) {
	limit := t.srv.Options.MaxBodyBytes
	buf, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	first := len(st.request)
	if int64(len(buf)) > limit {
		// Too large to record: the caller still gets all of it, streamed.
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(buf), resp.Body), resp.Body}
		o := st.ex.observation(t.reply, first)
		o.Kind, o.ConversationID, o.Error = spec.KindUndecodable, st.cid, "reply larger than CHATTAP_MAX_BODY_BYTES: not recorded"
		return []*spec.Observation{o}, nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(buf))
	plain := buf
	if resp.Header.Get("Content-Encoding") == "gzip" {
		if plain, err = gunzip(buf, limit); err != nil {
			return []*spec.Observation{st.ex.undecodable(t.reply, first, buf, err)}, nil
		}
	}
	replies := st.ex.decodeChatbot(t.reply, plain, first, st.cid)
	for _, o := range replies {
		if o.Kind == spec.KindUndecodable {
			t.srv.Metrics.Undecodable(t.route)
		}
	}
	return replies, nil
}

// upstreamFailed answers 502 when the upstream could not be reached or its
// answer not read; the caller's side of the exchange is still recorded.
func (t *tap) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	st := r.Context().Value(stateKey{}).(*exchangeState)
	st.status = http.StatusBadGateway
	msg := "upstream unreachable"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		msg = "upstream did not answer in time"
	}
	if errors.Is(err, context.Canceled) {
		msg = "caller went away"
	}
	t.srv.Log.Warn("upstream failed", "route", t.route, "upstream", RedactURL(t.target.String()), "err", err)
	t.record(st, st.request, http.StatusBadGateway)
	encodeError(w, http.StatusBadGateway, msg)
}

func gunzip(b []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, errors.New("decompressed reply larger than CHATTAP_MAX_BODY_BYTES")
	}
	return out, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// NewTransport is the connection pool every tap shares: upstreams are few
// and hot, so many idle connections are kept per host. timeout bounds the
// wait for an answer's headers. It is exported so that a baseline proxy
// can be measured with exactly the same pool.
func NewTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		DialContext:       (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2: true,
		// The caller's Accept-Encoding goes through as it is; the
		// transport must neither add its own nor unpack the answer.
		DisableCompression:    true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
}

// bufferPool lends ReverseProxy its copy buffers.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }
