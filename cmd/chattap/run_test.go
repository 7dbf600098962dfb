package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// logBuffer is a writer tests can read while run writes to it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

var listeningRE = regexp.MustCompile(`msg="chattap listening" addr=(\S+)`)

// instance is chattap's run in a goroutine.
type instance struct {
	addr   string
	stdout *logBuffer
	stderr *logBuffer
	cancel context.CancelFunc
	done   chan error
}

// start runs chattap serve with environ and waits until it listens.
func start(t *testing.T, environ ...string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{stdout: &logBuffer{}, stderr: &logBuffer{}, cancel: cancel, done: make(chan error, 1)}
	environ = append([]string{"CHATTAP_LISTEN_ADDR=127.0.0.1:0", "CHATTAP_DATA_DIR=" + t.TempDir()}, environ...)
	go func() { in.done <- run(ctx, []string{"serve"}, environ, in.stdout, in.stderr) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(in.stderr.String()); m != nil {
			in.addr = m[1]
			break
		}
		select {
		case err := <-in.done:
			t.Fatalf("chattap stopped before listening: %v\n%s", err, in.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("chattap did not listen within 20s:\n%s", in.stderr)
		}
	}
	t.Cleanup(func() { in.stop(t) })
	return in
}

// stop cancels run, as SIGTERM does, and waits for it to return.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.cancel()
	select {
	case err, ok := <-in.done:
		if ok && err != nil {
			t.Errorf("run returned %v\n%s", err, in.stderr)
		}
		if ok {
			close(in.done)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not return within 30s of being stopped")
	}
}

func (in *instance) post(t *testing.T, path, body string, header map[string]string) (int, string) {
	t.Helper()
	return in.do(t, http.MethodPost, path, body, header)
}

func (in *instance) get(t *testing.T, path string, header map[string]string) (int, string) {
	t.Helper()
	return in.do(t, http.MethodGet, path, "", header)
}

func (in *instance) do(t *testing.T, method, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+in.addr+path, strings.NewReader(body))
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
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// observationFor waits for the Observation of conversation cid on
// CHATTAP_RAW of the server at url.
func observationFor(t *testing.T, url, cid string) spec.Observation {
	t.Helper()
	_, js := brokertest.Connect(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, spec.StreamRaw, jetstream.OrderedConsumerConfig{FilterSubjects: []string{spec.RawPartitionFilter(spec.Partition(cid))}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("no observation for %s: %v", cid, err)
		}
		obs, err := spec.ReadRaw(msg.Data())
		if err == nil && obs[0].ConversationID == cid {
			return obs[0]
		}
	}
}

func webhook(cid string) string {
	return `{"info":{"cid":"` + cid + `"},"packet":{"name":"message","payload":{"body":"Hello"}}}`
}

func TestServeOnEmbeddedDefault(t *testing.T) {
	natsAddr := brokertest.FreeAddr(t)
	in := start(t, "CHATTAP_NATS_LISTEN="+natsAddr, "CHATTAP_FILE_SINK_PATH=")
	if code, body := in.post(t, "/userlike/webhook", webhook("c-embedded"), nil); code != http.StatusOK || body != "{}" {
		t.Fatalf("webhook: %d %q", code, body)
	}
	o := observationFor(t, "nats://"+natsAddr, "c-embedded")
	if o.Source != spec.SourceChatbotWebhook || o.Kind != "message" || string(o.Payload) != webhook("c-embedded") {
		t.Errorf("got %+v", o)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/admin/settings": 404, "/debugger": 404} {
		if code, _ := in.get(t, path, nil); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
	if _, body := in.get(t, "/metrics", nil); !strings.Contains(body, `chattap_tap_requests_total{code="200",route="/userlike/webhook"} 1`) {
		t.Errorf("metrics do not count the webhook:\n%s", body)
	}
}

// TestServeOnExternalServer runs chattap on the machine's NATS (2.9 on
// these machines), as a deployment on a cluster would.
func TestServeOnExternalServer(t *testing.T) {
	url := brokertest.ExternalURL(t)
	in := start(t, "CHATTAP_NATS_URL="+url, "CHATTAP_FILE_SINK_PATH=")
	cid := "c-external-" + time.Now().Format("150405.000000")
	if code, _ := in.post(t, "/userlike/webhook", webhook(cid), nil); code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	if o := observationFor(t, url, cid); o.ConversationID != cid {
		t.Errorf("got %+v", o)
	}
}

func TestAdminSettingsToggleRecording(t *testing.T) {
	in := start(t, "CHATTAP_ADMIN_TOKEN=adm", "CHATTAP_FILE_SINK_PATH=")
	auth := map[string]string{"Authorization": "Bearer adm"}
	if code, _ := in.get(t, "/admin/settings", nil); code != http.StatusForbidden {
		t.Errorf("without the token: %d, want 403", code)
	}
	if code, body := in.get(t, "/admin/settings", auth); code != 200 || !strings.Contains(body, `"record_live_chat_events":true`) {
		t.Errorf("GET: %d %s", code, body)
	}
	if code, body := in.do(t, http.MethodPut, "/admin/settings", `{"record_live_chat_events":false}`, auth); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if code, _ := in.do(t, http.MethodPut, "/admin/settings", `{"record_everything":true}`, auth); code != http.StatusBadRequest {
		t.Errorf("PUT with an unknown setting: %d, want 400", code)
	}
	if _, body := in.get(t, "/admin/settings", auth); !strings.Contains(body, `"record_live_chat_events":false`) {
		t.Errorf("after PUT: %s", body)
	}
	if code, body := in.get(t, "/debugger", nil); code != 200 || !strings.Contains(body, "Record Live Chat Events") {
		t.Errorf("debugger page: %d %s", code, body)
	}
	for _, path := range []string{"/debugger/state", "/debugger/stream"} {
		if code, _ := in.get(t, path, nil); code != http.StatusForbidden {
			t.Errorf("GET %s without the token: %d, want 403", path, code)
		}
	}
	if code, body := in.get(t, "/debugger/state", auth); code != 200 || !strings.Contains(body, `"record_live_chat_events":false`) {
		t.Errorf("debugger state: %d %s", code, body)
	}
}

func TestRestartKeepsTheStore(t *testing.T) {
	dir := t.TempDir()
	natsAddr := brokertest.FreeAddr(t)
	env := []string{"CHATTAP_DATA_DIR=" + dir, "CHATTAP_NATS_LISTEN=" + natsAddr, "CHATTAP_FILE_SINK_PATH="}
	first := start(t, env...)
	if code, _ := first.post(t, "/userlike/webhook", webhook("c-before"), nil); code != 200 {
		t.Fatal(code)
	}
	first.stop(t)
	start(t, env...)
	if o := observationFor(t, "nats://"+natsAddr, "c-before"); o.ConversationID != "c-before" {
		t.Errorf("observation from before the restart: %+v", o)
	}
}

func TestInvalidConfigurationIsReportedAllAtOnce(t *testing.T) {
	err := run(t.Context(), []string{"serve"}, []string{
		"CHATTAP_STREAM_REPLICAS=seven", "CHATTAP_RETENTION=forever", "CHATTAP_ROLES=ingest,juggler",
		"CHATTAP_BOT_WEBHOOK_URL=ftp://bot", "CHATTAP_TAP_ACK=maybe", "CHATTAP_LOG_LEVEL=loud", "CHATTAP_NATS_SYNC=sometimes", "CHATTAP_MEMORY_LIMIT=lots",
	}, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("run accepted an invalid configuration")
	}
	for _, name := range []string{"CHATTAP_STREAM_REPLICAS", "CHATTAP_RETENTION", "CHATTAP_ROLES", "CHATTAP_BOT_WEBHOOK_URL", "CHATTAP_TAP_ACK", "CHATTAP_LOG_LEVEL", "CHATTAP_NATS_SYNC", "CHATTAP_MEMORY_LIMIT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

func TestBadValueIsNamedByItsOwnVariable(t *testing.T) {
	// Both sinks' options have a field named Timeout.
	err := run(t.Context(), []string{"config"}, []string{"CHATTAP_SEGMENT_TIMEOUT=soon", "CHATTAP_WEBHOOK_SINK_TIMEOUT=5s"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "CHATTAP_SEGMENT_TIMEOUT") || strings.Contains(err.Error(), "CHATTAP_WEBHOOK_SINK_TIMEOUT") {
		t.Fatalf("got %v, want the error to name CHATTAP_SEGMENT_TIMEOUT only", err)
	}
}

// TestToolsLeaveStreamSettingsAlone runs a maintenance command with a
// default environment against a store made with other settings.
func TestToolsLeaveStreamSettingsAlone(t *testing.T) {
	dir := t.TempDir()
	in := start(t, "CHATTAP_DATA_DIR="+dir, "CHATTAP_RETENTION=720h", "CHATTAP_FILE_SINK_PATH=")
	in.stop(t)
	if err := run(t.Context(), []string{"dlq", "list"}, []string{"CHATTAP_DATA_DIR=" + dir}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	// Read the stream as stored, declaring nothing.
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	info, err := js.Stream(t.Context(), spec.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	if age := info.CachedInfo().Config.MaxAge; age != 720*time.Hour {
		t.Errorf("CHATTAP_RAW MaxAge = %v after `dlq list`, want the 720h serve set", age)
	}
	nc.Close()
	emb.Shutdown()
	if err := run(t.Context(), []string{"dlq", "list"}, []string{"CHATTAP_DATA_DIR=" + t.TempDir()}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "chattap serve") {
		t.Errorf("a tool on an empty store: %v, want an error that says serve has not run there", err)
	}
}

func TestConfigCommandRedactsSecrets(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"config"}, []string{"CHATTAP_WEBHOOK_TOKEN=hunter2", "CHATTAP_NATS_URL=nats://user:pw@host:4222,nats://other:4222",
		"CHATTAP_LISTEN_ADDR=:9999", "CHATTAP_BOT_WEBHOOK_URL=https://bot:s3cret@bot.example/hook?token=abc",
		"CHATTAP_CHANNEL_INBOUND_URL=https://in.example/in?api_key=SECRETKEY", "CHATTAP_SEGMENT_ENDPOINT=https://u:p@seg.example"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, secret := range []string{"hunter2", "pw@", "s3cret", "token=abc", "SECRETKEY", "u:p@"} {
		if strings.Contains(s, secret) {
			t.Errorf("config printed the secret %q:\n%s", secret, s)
		}
	}
	for _, shown := range []string{"https://bot.example/hook?…", "nats://host:4222,nats://other:4222", "https://seg.example"} {
		if !strings.Contains(s, shown) {
			t.Errorf("config does not show %q (the URL without its secrets):\n%s", shown, s)
		}
	}
	for _, want := range []string{"CHATTAP_WEBHOOK_TOKEN", "(set, redacted)", ":9999", "CHATTAP_MAX_BODY_BYTES", "1048576"} {
		if !strings.Contains(s, want) {
			t.Errorf("config output lacks %q:\n%s", want, s)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"help"}, nil, &out, io.Discard); err != nil || !strings.Contains(out.String(), "dlq") {
		t.Errorf("help: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"version"}, nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "chattap ") {
		t.Errorf("version: %v %q", err, out.String())
	}
	var errOut bytes.Buffer
	if err := run(t.Context(), []string{"serve", "-h"}, nil, io.Discard, &errOut); err != nil || !strings.Contains(errOut.String(), "chattap serve") {
		t.Errorf("serve -h: %v %q", err, errOut.String())
	}
	if err := run(t.Context(), []string{"juggle"}, nil, io.Discard, io.Discard); err == nil {
		t.Error("an unknown command was accepted")
	}
}

// segmentReceiver is a Segment-compatible /v1/batch endpoint.
type segmentReceiver struct {
	mu       sync.Mutex
	auth     []string
	messages []spec.Message
}

func (s *segmentReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Batch []spec.Message `json:"batch"`
	}
	if r.URL.Path != "/v1/batch" || json.NewDecoder(r.Body).Decode(&body) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.messages = append(s.messages, body.Batch...)
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *segmentReceiver) received() ([]spec.Message, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]spec.Message(nil), s.messages...), append([]string(nil), s.auth...)
}

// TestWebhookReachesSegmentAndTheFile runs the whole binary: a webhook in,
// Live Chat events out to a Segment-compatible receiver and to stdout.
func TestWebhookReachesSegmentAndTheFile(t *testing.T) {
	rec := &segmentReceiver{}
	seg := httptest.NewServer(rec)
	defer seg.Close()
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `[{"packet":{"name":"message","payload":{"body":"Your balance is 42."}}},{"packet":{"name":"end","payload":{}}}]`)
	}))
	defer bot.Close()
	in := start(t, "CHATTAP_SEGMENT_WRITE_KEY=wk", "CHATTAP_SEGMENT_ENDPOINT="+seg.URL, "CHATTAP_BOT_WEBHOOK_URL="+bot.URL,
		"CHATTAP_SINK_FLUSH_INTERVAL=20ms", "CHATTAP_FILE_SINK_PATH=-")
	if code, _ := in.post(t, "/userlike/webhook", `{"info":{"cid":"c-e2e","contact":{"name":"Ada"}},"packet":{"name":"message","payload":{"body":"What is my balance?"}}}`, nil); code != 200 {
		t.Fatalf("webhook: %d", code)
	}
	want := []string{"identify", spec.EventConversationStarted, spec.EventMessageSent, spec.EventMessageReceived, spec.EventConversationEnded}
	deadline := time.Now().Add(20 * time.Second)
	var got []spec.Message
	var auth []string
	for len(got) < len(want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		got, auth = rec.received()
	}
	var names []string
	for _, m := range got {
		name := m.Event
		if name == "" {
			name = m.Type
		}
		names = append(names, name)
	}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Fatalf("Segment received %v, want %v", names, want)
	}
	if auth[0] != "Basic d2s6" { // base64("wk:")
		t.Errorf("Authorization %q, want Basic auth with the write key", auth[0])
	}
	for _, m := range got[1:] {
		if m.Properties[spec.PropConversationID] != "c-e2e" || m.Context == nil || m.Context.Traits["name"] != "Ada" {
			t.Errorf("%s: properties %v, context %+v", m.Event, m.Properties, m.Context)
		}
	}
	// The file sink, chosen explicitly beside Segment, wrote the same
	// events to stdout.
	for time.Now().Before(deadline) && strings.Count(in.stdout.String(), "\n") < len(want) {
		time.Sleep(20 * time.Millisecond)
	}
	if lines := strings.Count(in.stdout.String(), "\n"); lines != len(want) {
		t.Errorf("stdout has %d lines, want %d:\n%s", lines, len(want), in.stdout)
	}
}
