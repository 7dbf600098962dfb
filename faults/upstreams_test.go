//go:build faults

package faults_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"

	"github.com/chattap/chattap/sinks/sinkstest"
)

// The secrets every chattap of the suite is given; the log must hold none.
const (
	webhookToken  = "wh-tok-7f3a9c2e1b"
	apiToken      = "api-tok-4d8e2f6a0c"
	outboundToken = "out-tok-9b1c7e3d5f"
	inboundToken  = "in-tok-2a6f8d0e4b"
	addonToken    = "addon-tok-5e7c1a9f3d"
	writeKey      = "wk-faults-8c2e4a6f0b"
)

// markerRE finds the exchange marker the load puts in every body (and the
// fake bot echoes into every event of its reply).
var markerRE = regexp.MustCompile(`fxm-[0-9a-f]{6}-[0-9]{6}`)

// world is what a case runs chattap against: the fake upstreams of every
// flow and the Segment-compatible receiver, all on loopback in the test
// process, so they outlive every chattap restart.
type world struct {
	bot, api, outbound, inbound *httptest.Server
	recv                        *sinkstest.Receiver
	sink                        *frontend
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{}
	w.bot = httptest.NewServer(http.HandlerFunc(botReply))
	w.api = httptest.NewServer(answer(`{"success":true}`))
	w.outbound = httptest.NewServer(answer(`{"ok":true}`))
	w.inbound = httptest.NewServer(answer(`{"status":"received"}`))
	for _, s := range []*httptest.Server{w.bot, w.api, w.outbound, w.inbound} {
		t.Cleanup(s.Close)
	}
	w.recv = sinkstest.NewReceiver(t, writeKey)
	w.sink = newFrontend(t, w.recv.Config.Handler)
	return w
}

// env is the configuration of a chattap that taps every flow of w, with
// every token set and the Segment sink pointed at w's receiver.
func (w *world) env() map[string]string {
	return map[string]string{
		"CHATTAP_BOT_WEBHOOK_URL":        w.bot.URL + "/webhook",
		"CHATTAP_USERLIKE_API_URL":       w.api.URL + "/api",
		"CHATTAP_CHANNEL_OUTBOUND_URL":   w.outbound.URL + "/outbound",
		"CHATTAP_CHANNEL_INBOUND_URL":    w.inbound.URL + "/inbound",
		"CHATTAP_WEBHOOK_TOKEN":          webhookToken,
		"CHATTAP_USERLIKE_API_TOKEN":     apiToken,
		"CHATTAP_CHANNEL_OUTBOUND_TOKEN": outboundToken,
		"CHATTAP_CHANNEL_INBOUND_TOKEN":  inboundToken,
		"CHATTAP_ADDON_TOKEN":            addonToken,
		"CHATTAP_SEGMENT_WRITE_KEY":      writeKey,
		"CHATTAP_SEGMENT_ENDPOINT":       w.sink.URL(),
		"CHATTAP_SEGMENT_TIMEOUT":        "2s",
		"CHATTAP_SINK_BACKOFF_MIN":       "200ms",
		"CHATTAP_SINK_BACKOFF_MAX":       "2s",
		"CHATTAP_SINK_FLUSH_INTERVAL":    "100ms",
		"CHATTAP_TAP_ACK_TIMEOUT":        "2s",
		"CHATTAP_MAPPER_ACK_WAIT":        pick("5s", "30s"),
		"CHATTAP_MAPPER_PUBLISH_TIMEOUT": pick("3s", "10s"),
		"CHATTAP_SINK_ACK_WAIT":          pick("6s", "0s"), // at least 3 × CHATTAP_SEGMENT_TIMEOUT
	}
}

func answer(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	})
}

// botReply is the fake chatbot: one to three events chosen by a hash of
// the webhook, each carrying the webhook's marker; a body saying "bye"
// gets a goodbye and an end.
func botReply(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	marker := markerRE.Find(body)
	w.Header().Set("Content-Type", "application/json")
	if marker == nil {
		_, _ = io.WriteString(w, `{}`)
		return
	}
	if bytes.Contains(body, []byte(`"body":"bye`)) {
		fmt.Fprintf(w, `[{"packet":{"name":"message","payload":{"body":"Goodbye %s"}}},{"packet":{"name":"end","payload":{}}}]`, marker)
		return
	}
	h := fnv.New32a()
	h.Write(body)
	n := 1 + int(h.Sum32()%3)
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if i == n-1 && h.Sum32()%4 == 0 {
			fmt.Fprintf(&b, `{"packet":{"name":"bubbles","payload":{"body":"Pick one %s","options":[{"label":"Billing","value":"b"},{"label":"Delivery","value":"d"}]}}}`, marker)
			continue
		}
		fmt.Fprintf(&b, `{"packet":{"name":"message","payload":{"body":"Reply %d to %s"}}}`, i+1, marker)
	}
	b.WriteByte(']')
	_, _ = w.Write(b.Bytes())
}

// frontend serves the receiver on a loopback port of its own that a case
// can take down (connections refused) and bring back on the same port.
type frontend struct {
	t    *testing.T
	h    http.Handler
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

func newFrontend(t *testing.T, h http.Handler) *frontend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &frontend{t: t, h: h, addr: ln.Addr().String()}
	f.serve(ln)
	t.Cleanup(f.Down)
	return f
}

func (f *frontend) URL() string { return "http://" + f.addr }

func (f *frontend) serve(ln net.Listener) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.srv = &http.Server{Handler: f.h}
	go func() { _ = f.srv.Serve(ln) }()
}

// Down closes the listener and every connection: the receiver is gone.
func (f *frontend) Down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		_ = f.srv.Close()
		f.srv = nil
	}
}

// Up listens again on the same port.
func (f *frontend) Up() {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("receiver back on %s: %v", f.addr, err)
	}
	f.serve(ln)
}

// expectedRecords is how many CHATTAP_RAW records an accepted exchange
// should have left: one per exchange in schema version 2; in version 1
// one for the caller's event plus one per event of the bot's reply.
func expectedRecords(ex exchange, version int) int {
	if version >= 2 || ex.Route != routeWebhook {
		return 1
	}
	rec := httptest.NewRecorder()
	botReply(rec, httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(ex.Body)))
	var events []json.RawMessage
	if json.Unmarshal(rec.Body.Bytes(), &events) != nil {
		return 1
	}
	return 1 + len(events)
}
