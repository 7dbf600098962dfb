package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// serveFails runs chattap serve with environ and returns the error it
// must stop with at once.
func serveFails(t *testing.T, environ ...string) error {
	t.Helper()
	environ = append([]string{"CHATTAP_DATA_DIR=" + t.TempDir()}, environ...)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { done <- run(ctx, []string{"serve"}, environ, io.Discard, io.Discard) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("serve returned nil, want it to refuse to start")
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("serve started; want it to refuse")
	}
	return nil
}

func TestPublicListenerWithoutTokensDoesNotStart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		names   []string
		absent  []string
	}{
		{"defaults on every interface", []string{"CHATTAP_LISTEN_ADDR=:8080"},
			[]string{"CHATTAP_WEBHOOK_TOKEN", "CHATTAP_ADDON_TOKEN", "CHATTAP_ALLOW_UNAUTHENTICATED", "/userlike/webhook"}, []string{"CHATTAP_CHANNEL_INBOUND_TOKEN"}},
		{"one token missing", []string{"CHATTAP_LISTEN_ADDR=0.0.0.0:8080", "CHATTAP_WEBHOOK_TOKEN=w", "CHATTAP_ADDON_TOKEN=a", "CHATTAP_CHANNEL_INBOUND_URL=http://in.test/"},
			[]string{"CHATTAP_CHANNEL_INBOUND_TOKEN", "/userlike/channel/inbound"}, []string{"CHATTAP_WEBHOOK_TOKEN", "CHATTAP_ADDON_TOKEN"}},
		{"a routable address", []string{"CHATTAP_LISTEN_ADDR=192.0.2.10:8080", "CHATTAP_ADDON_TOKEN=a"},
			[]string{"CHATTAP_WEBHOOK_TOKEN"}, []string{"CHATTAP_ADDON_TOKEN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := serveFails(t, tc.environ...)
			for _, n := range tc.names {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("error does not name %s:\n%v", n, err)
				}
			}
			for _, n := range tc.absent {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error names %s, which is set or not needed:\n%v", n, err)
				}
			}
		})
	}
}

// reachableLoopbackName is a host name that resolves to loopback only but
// that the safe-start rule, which never resolves names, counts as
// reachable: it lets a test start a "public" listener without leaving
// the machine.
func reachableLoopbackName(t *testing.T) string {
	t.Helper()
	name, err := os.Hostname()
	if err != nil || name == "localhost" {
		t.Skip("no host name other than localhost")
	}
	addrs, err := net.LookupHost(name)
	if err != nil || len(addrs) == 0 {
		t.Skipf("host name %q does not resolve: %v", name, err)
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			t.Skipf("host name %q resolves to %s, off loopback; not listening there", name, a)
		}
	}
	return name
}

func TestAllowUnauthenticatedStartsIt(t *testing.T) {
	name := reachableLoopbackName(t)
	if isLoopback(name + ":0") {
		t.Fatalf("%s counts as loopback; the test needs a name the rule counts as reachable", name)
	}
	serveFails(t, "CHATTAP_LISTEN_ADDR="+name+":0")
	in := start(t, "CHATTAP_LISTEN_ADDR="+name+":0", "CHATTAP_ALLOW_UNAUTHENTICATED=true", "CHATTAP_FILE_SINK_PATH=")
	if code, _ := in.post(t, "/userlike/webhook", webhook("c-open"), nil); code != http.StatusOK {
		t.Errorf("webhook: %d", code)
	}
	if !strings.Contains(in.stderr.String(), "level=WARN msg=\"starting unprotected") || !strings.Contains(in.stderr.String(), "level=WARN msg=\"routes open to anyone") || !strings.Contains(in.stderr.String(), "CHATTAP_WEBHOOK_TOKEN") {
		t.Errorf("the startup log does not warn of the open routes:\n%s", in.stderr)
	}
}

// counting is an upstream that counts what reaches it and answers status.
type counting struct {
	*httptest.Server
	n atomic.Int64
}

func newCounting(t *testing.T, status int, body string) *counting {
	t.Helper()
	c := &counting{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(c.Close)
	return c
}

func TestWrongTokenOnEachRouteReachesNothing(t *testing.T) {
	up := newCounting(t, http.StatusOK, "{}")
	natsAddr := brokertest.FreeAddr(t)
	in := start(t, "CHATTAP_NATS_LISTEN="+natsAddr, "CHATTAP_FILE_SINK_PATH=",
		"CHATTAP_BOT_WEBHOOK_URL="+up.URL, "CHATTAP_WEBHOOK_TOKEN=tok-webhook",
		"CHATTAP_USERLIKE_API_URL="+up.URL, "CHATTAP_USERLIKE_API_TOKEN=tok-api",
		"CHATTAP_CHANNEL_OUTBOUND_URL="+up.URL, "CHATTAP_CHANNEL_OUTBOUND_TOKEN=tok-out",
		"CHATTAP_CHANNEL_INBOUND_URL="+up.URL, "CHATTAP_CHANNEL_INBOUND_TOKEN=tok-in",
		"CHATTAP_ADDON_TOKEN=tok-addon")
	routes := map[string]string{
		"/userlike/webhook": "SECURITY-TOKEN", "/userlike/api": "SECURITY-TOKEN",
		"/userlike/channel/outbound": "API-SECURITY-TOKEN", "/userlike/channel/inbound": "API-SECURITY-TOKEN",
		"/userlike/addon": "X-Chattap-Token",
	}
	for route, header := range routes {
		for _, h := range []map[string]string{nil, {header: "wrong"}, {header: "tok-webhook tok-api tok-out tok-in tok-addon"}} {
			if code, _ := in.post(t, route, `{"info":{"cid":"forged"},"packet":{"name":"message","payload":{"body":"x"}},"contact_id":"x","text":"x","_type":"chat_session","_event":"start"}`, h); code != http.StatusForbidden {
				t.Errorf("%s with %v: %d, want 403", route, h, code)
			}
		}
	}
	if n := up.n.Load(); n != 0 {
		t.Errorf("upstreams saw %d requests, want none", n)
	}
	_, js := brokertest.Connect(t, "nats://"+natsAddr)
	st, err := js.Stream(t.Context(), spec.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(t.Context()); err != nil || info.State.Msgs != 0 {
		t.Errorf("CHATTAP_RAW holds %d messages (%v), want none", info.State.Msgs, err)
	}
	if _, body := in.get(t, "/metrics", nil); !strings.Contains(body, `chattap_tap_forbidden_total{route="/userlike/channel/inbound"} 3`) || !strings.Contains(body, `chattap_tap_forbidden_total{route="/userlike/api"} 3`) {
		t.Errorf("refusals are not counted per route:\n%s", grepLines(body, "forbidden"))
	}
}

func grepLines(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestForgedRequestRefusedUpstreamIsNotAnalytics: a request that the bot,
// Userlike or the channel server refuses (401, 403) is still answered
// unchanged, but no identify and no Live Chat event of it reaches a sink.
func TestForgedRequestRefusedUpstreamIsNotAnalytics(t *testing.T) {
	rec := &segmentReceiver{}
	seg := httptest.NewServer(rec)
	defer seg.Close()
	var refuse atomic.Bool
	refuse.Store(true)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"wrong token"}`)
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	defer upstream.Close()
	in := start(t, "CHATTAP_SEGMENT_WRITE_KEY=wk", "CHATTAP_SEGMENT_ENDPOINT="+seg.URL, "CHATTAP_SINK_FLUSH_INTERVAL=20ms",
		"CHATTAP_BOT_WEBHOOK_URL="+upstream.URL, "CHATTAP_CHANNEL_INBOUND_URL="+upstream.URL, "CHATTAP_USERLIKE_API_URL="+upstream.URL)
	forged := map[string]string{
		"/userlike/webhook":         `{"info":{"cid":"forged-1","contact":{"id":7,"email":"victim@example.com","external_customer_id":"CRM-VICTIM"}},"packet":{"name":"message","payload":{"body":"merge me"}}}`,
		"/userlike/api":             `{"info":{"cid":"forged-2","contact":{"email":"victim@example.com","external_customer_id":"CRM-VICTIM"}},"packet":{"name":"contact_update","payload":{"email":"attacker@example.com"}}}`,
		"/userlike/channel/inbound": `{"contact_id":"victim@example.com","external_customer_id":"CRM-VICTIM","name":"Victim","text":"merge me"}`,
	}
	for route, body := range forged {
		if code, got := in.post(t, route, body, nil); code != http.StatusUnauthorized || got != `{"error":"wrong token"}` {
			t.Fatalf("%s: %d %q, want the upstream's 401 passed through", route, code, got)
		}
	}
	// Then real exchanges on the same conversations: a conversation's
	// records are mapped in order, so once these arrive the forged ones
	// before them would have too.
	refuse.Store(false)
	real := map[string]string{
		"/userlike/webhook":         `{"info":{"cid":"forged-1","contact":{"id":8,"email":"ada@example.com"}},"packet":{"name":"message","payload":{"body":"hello"}}}`,
		"/userlike/api":             `{"info":{"cid":"forged-2"},"packet":{"name":"message","payload":{"body":"hello"}}}`,
		"/userlike/channel/inbound": `{"contact_id":"victim@example.com","text":"hello"}`,
	}
	for route, body := range real {
		if code, _ := in.post(t, route, body, nil); code != http.StatusOK {
			t.Fatalf("%s: %d", route, code)
		}
	}
	hellos := func(ms []spec.Message) int {
		n := 0
		for _, m := range ms {
			if m.Properties[spec.PropMessageBody] == "hello" {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	var got []spec.Message
	for time.Now().Before(deadline) {
		if got, _ = rec.received(); hellos(got) >= len(real) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if hellos(got) != len(real) {
		t.Fatalf("Segment received %d of the real messages, want %d: %+v", hellos(got), len(real), got)
	}
	for _, m := range got {
		if m.UserID == "CRM-VICTIM" || m.Properties[spec.PropMessageBody] == "merge me" {
			t.Errorf("a forged exchange reached Segment: %+v", m)
		}
		if m.Context != nil && m.Context.Traits["email"] == "attacker@example.com" {
			t.Errorf("a forged identity reached Segment: %+v", m)
		}
	}
}

func TestSegmentOnAndNoFileSinkChosenWritesNothingToStdout(t *testing.T) {
	rec := &segmentReceiver{}
	seg := httptest.NewServer(rec)
	defer seg.Close()
	in := start(t, "CHATTAP_SEGMENT_WRITE_KEY=wk", "CHATTAP_SEGMENT_ENDPOINT="+seg.URL, "CHATTAP_SINK_FLUSH_INTERVAL=20ms")
	if code, _ := in.post(t, "/userlike/webhook", `{"info":{"cid":"c-quiet","contact":{"email":"ada@example.com"}},"packet":{"name":"message","payload":{"body":"private words"}}}`, nil); code != 200 {
		t.Fatal(code)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got, _ := rec.received(); len(got) >= 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, _ := rec.received(); len(got) < 3 {
		t.Fatalf("Segment received %d messages, want 3", len(got))
	}
	in.stop(t)
	if s := in.stdout.String(); s != "" {
		t.Errorf("standard output holds %q, want nothing with Segment on and no file sink chosen", s)
	}
	if !strings.Contains(in.stderr.String(), `msg="sinks on" sinks=[segment] file=off`) {
		t.Errorf("the startup log does not say which sinks are on:\n%s", in.stderr)
	}
}

// TestDestinationRefusingTheKeyDeadLettersNothing: a 401 from Segment (a
// wrong write key) keeps every event, dead-letters none, and /readyz
// names the sink, never the key.
func TestDestinationRefusingTheKeyDeadLettersNothing(t *testing.T) {
	var requests atomic.Int64
	seg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, `{"error":"invalid write key"}`, http.StatusUnauthorized)
	}))
	defer seg.Close()
	natsAddr := brokertest.FreeAddr(t)
	in := start(t, "CHATTAP_NATS_LISTEN="+natsAddr, "CHATTAP_SEGMENT_WRITE_KEY=wk-wrong-key-123", "CHATTAP_SEGMENT_ENDPOINT="+seg.URL,
		"CHATTAP_SINK_FLUSH_INTERVAL=20ms", "CHATTAP_SINK_BACKOFF_MIN=50ms", "CHATTAP_SINK_BACKOFF_MAX=200ms", "CHATTAP_SINK_MAX_DELIVERIES=2")
	for i := range 3 {
		if code, _ := in.post(t, "/userlike/webhook", webhook("c-401-"+string(rune('a'+i))), nil); code != 200 {
			t.Fatal(code)
		}
	}
	var code int
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if code, body = in.get(t, "/readyz", nil); strings.Contains(body, "degraded") && requests.Load() >= 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The taps still work, so a load balancer must keep them: 200, with
	// the warning.
	if code != http.StatusOK || !strings.Contains(body, `"status":"degraded"`) || !strings.Contains(body, "sink segment") || !strings.Contains(body, "401") {
		t.Fatalf("/readyz: %d %s, want 200 degraded naming the segment sink", code, body)
	}
	if strings.Contains(body, "wk-wrong-key-123") || strings.Contains(in.stderr.String(), "wk-wrong-key-123") {
		t.Errorf("the write key is shown: /readyz %s", body)
	}
	if !strings.Contains(in.stderr.String(), "level=ERROR msg=\"destination misconfigured") {
		t.Errorf("no error-level log of the misconfiguration:\n%s", in.stderr)
	}
	// A process without the taps answers 503: nothing of the chat hangs
	// on it.
	sinksOnly := start(t, "CHATTAP_NATS_URL=nats://"+natsAddr, "CHATTAP_ROLES=sinks", "CHATTAP_SEGMENT_WRITE_KEY=wk-wrong-key-123", "CHATTAP_SEGMENT_ENDPOINT="+seg.URL,
		"CHATTAP_SINK_FLUSH_INTERVAL=20ms", "CHATTAP_SINK_BACKOFF_MIN=50ms", "CHATTAP_SINK_BACKOFF_MAX=200ms")
	deadline = time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if code, body = sinksOnly.get(t, "/readyz", nil); code == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "sink segment") || strings.Contains(body, "wk-wrong-key-123") {
		t.Errorf("/readyz of a sinks-only process: %d %s, want 503 naming the segment sink", code, body)
	}
	_, js := brokertest.Connect(t, "nats://"+natsAddr)
	st, err := js.Stream(t.Context(), spec.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(t.Context()); err != nil || info.State.Msgs != 0 {
		t.Errorf("CHATTAP_DLQ holds %d dead letters (%v) after deliveries past CHATTAP_SINK_MAX_DELIVERIES, want none", info.State.Msgs, err)
	}
}

func TestEmbeddedNATSOnAPublicAddressNeedsCredentials(t *testing.T) {
	err := serveFails(t, "CHATTAP_LISTEN_ADDR=127.0.0.1:0", "CHATTAP_NATS_LISTEN=0.0.0.0:4222")
	for _, n := range []string{"CHATTAP_NATS_USER", "CHATTAP_NATS_PASSWORD", "CHATTAP_NATS_NKEY_SEED_FILE"} {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error does not name %s: %v", n, err)
		}
	}
	// With credentials the same address is accepted (checked without
	// listening on it: tests stay on loopback).
	c, err := loadConfig([]string{"CHATTAP_NATS_LISTEN=0.0.0.0:4222", "CHATTAP_NATS_USER=u", "CHATTAP_NATS_PASSWORD=p"})
	if err != nil {
		t.Fatal(err)
	}
	if errs := c.unsafeStart(); len(errs) != 0 {
		t.Errorf("credentials set, still refused: %v", errs)
	}
	serveFails(t, "CHATTAP_NATS_LISTEN=0.0.0.0:4222", "CHATTAP_NATS_USER=u") // a user without a password
}

// TestEmbeddedNATSCredentialsAreRequiredOfOthers: the embedded server
// with credentials lets another chattap in with them and refuses one
// without or with wrong ones.
func TestEmbeddedNATSCredentialsAreRequiredOfOthers(t *testing.T) {
	natsAddr := brokertest.FreeAddr(t)
	first := start(t, "CHATTAP_NATS_LISTEN="+natsAddr, "CHATTAP_NATS_USER=chattap", "CHATTAP_NATS_PASSWORD=nats-pw-93871", "CHATTAP_FILE_SINK_PATH=")
	if code, _ := first.post(t, "/userlike/webhook", webhook("c-auth"), nil); code != 200 {
		t.Fatal(code)
	}
	url := "nats://" + natsAddr
	second := start(t, "CHATTAP_NATS_URL="+url, "CHATTAP_NATS_USER=chattap", "CHATTAP_NATS_PASSWORD=nats-pw-93871", "CHATTAP_ROLES=ingest", "CHATTAP_FILE_SINK_PATH=")
	if code, _ := second.post(t, "/userlike/webhook", webhook("c-auth-2"), nil); code != 200 {
		t.Fatal(code)
	}
	if code, body := second.get(t, "/readyz", nil); code != 200 {
		t.Errorf("second process not ready: %d %s", code, body)
	}
	for _, env := range [][]string{
		{"CHATTAP_NATS_URL=" + url},
		{"CHATTAP_NATS_URL=" + url, "CHATTAP_NATS_USER=chattap", "CHATTAP_NATS_PASSWORD=guess"},
	} {
		err := serveFails(t, append(env, "CHATTAP_LISTEN_ADDR=127.0.0.1:0", "CHATTAP_ROLES=ingest")...)
		if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("%v: %v, want an authorization error", env, err)
		}
		if strings.Contains(err.Error(), "nats-pw-93871") || strings.Contains(err.Error(), "guess") {
			t.Errorf("the error shows a password: %v", err)
		}
	}
	if strings.Contains(first.stderr.String()+second.stderr.String(), "nats-pw-93871") {
		t.Error("a log shows the NATS password")
	}
	// A plain client without credentials is refused too.
	if nc, err := nats.Connect(url, nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Error("a client without credentials connected")
	}
}

func TestEmbeddedNATSWithAnNkey(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "chattap.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	natsAddr := brokertest.FreeAddr(t)
	first := start(t, "CHATTAP_NATS_LISTEN="+natsAddr, "CHATTAP_NATS_NKEY_SEED_FILE="+seedFile, "CHATTAP_FILE_SINK_PATH=")
	if code, _ := first.post(t, "/userlike/webhook", webhook("c-nkey"), nil); code != 200 {
		t.Fatal(code)
	}
	nc, err := broker.Connect("nats://"+natsAddr, "test", broker.Credentials{NkeySeedFile: seedFile})
	if err != nil {
		t.Fatalf("connect with the nkey: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(t.Context(), spec.StreamRaw); err != nil {
		t.Errorf("stream with the nkey: %v", err)
	}
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	otherFile := filepath.Join(t.TempDir(), "other.nk")
	_ = os.WriteFile(otherFile, otherSeed, 0o600)
	if nc, err := broker.Connect("nats://"+natsAddr, "test", broker.Credentials{NkeySeedFile: otherFile}); err == nil {
		nc.Close()
		t.Error("another nkey connected")
	}
	if strings.Contains(first.stderr.String(), string(seed)) {
		t.Error("the log shows the seed")
	}
}

// TestExternalServerWithCredentials: CHATTAP_NATS_URL with a user and
// password reaches a nats-server that requires them.
func TestExternalServerWithCredentials(t *testing.T) {
	p := brokertest.StartProcess(t, "authorization { user: chattap, password: ext-pw-5521 }")
	in := start(t, "CHATTAP_NATS_URL="+p.URL, "CHATTAP_NATS_USER=chattap", "CHATTAP_NATS_PASSWORD=ext-pw-5521", "CHATTAP_FILE_SINK_PATH=")
	if code, _ := in.post(t, "/userlike/webhook", webhook("c-ext-auth"), nil); code != 200 {
		t.Fatal(code)
	}
	if code, body := in.get(t, "/readyz", nil); code != 200 {
		t.Errorf("readyz: %d %s", code, body)
	}
	err := serveFails(t, "CHATTAP_NATS_URL="+p.URL, "CHATTAP_LISTEN_ADDR=127.0.0.1:0")
	if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("without credentials: %v", err)
	}
}

func TestAdminListenerCarriesTheOperatorRoutes(t *testing.T) {
	adminAddr := brokertest.FreeAddr(t)
	in := start(t, "CHATTAP_ADMIN_ADDR="+adminAddr, "CHATTAP_PPROF_ADDR="+adminAddr, "CHATTAP_ADMIN_TOKEN=adm", "CHATTAP_FILE_SINK_PATH=")
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 404, "/admin/settings": 404, "/debugger": 404, "/debugger/state": 404, "/debug/pprof/": 404} {
		if code, _ := in.get(t, path, map[string]string{"Authorization": "Bearer adm"}); code != want {
			t.Errorf("public GET %s: %d, want %d", path, code, want)
		}
	}
	admin := &instance{addr: adminAddr}
	for path, want := range map[string]int{"/metrics": 200, "/admin/settings": 200, "/debugger": 200, "/debugger/state": 200, "/debug/pprof/": 200, "/userlike/webhook": 404} {
		if code, _ := admin.get(t, path, map[string]string{"Authorization": "Bearer adm"}); code != want {
			t.Errorf("admin GET %s: %d, want %d", path, code, want)
		}
	}
	for _, path := range []string{"/admin/settings", "/debugger/state", "/debugger/stream"} {
		if code, _ := admin.get(t, path, nil); code != http.StatusForbidden {
			t.Errorf("admin listener without the token, GET %s: %d, want 403", path, code)
		}
	}
}

// TestPprofOffLoopbackDoesNotStart: Go's profiles, which have no token,
// on an address others can reach (their own or the admin listener's) stop
// serve unless CHATTAP_ALLOW_UNAUTHENTICATED=true; the admin listener
// alone off loopback starts, its operator routes behind the admin token.
func TestPprofOffLoopbackDoesNotStart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
	}{
		{"own listener on every interface", []string{"CHATTAP_PPROF_ADDR=:6060"}},
		{"own listener on a routable address", []string{"CHATTAP_PPROF_ADDR=192.0.2.10:6060"}},
		{"shared with the admin listener", []string{"CHATTAP_ADMIN_ADDR=0.0.0.0:9090", "CHATTAP_PPROF_ADDR=0.0.0.0:9090", "CHATTAP_ADMIN_TOKEN=adm"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := serveFails(t, append([]string{"CHATTAP_LISTEN_ADDR=127.0.0.1:0"}, tc.environ...)...)
			for _, n := range []string{"CHATTAP_PPROF_ADDR", "CHATTAP_ALLOW_UNAUTHENTICATED"} {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("error does not name %s:\n%v", n, err)
				}
			}
		})
	}
	c, err := loadConfig([]string{"CHATTAP_LISTEN_ADDR=127.0.0.1:8080", "CHATTAP_ADMIN_ADDR=:9090", "CHATTAP_ADMIN_TOKEN=adm", "CHATTAP_PPROF_ADDR=127.0.0.1:6060"})
	if err != nil {
		t.Fatal(err)
	}
	if errs := c.unsafeStart(); len(errs) != 0 {
		t.Errorf("admin listener off loopback, profiles on loopback: refused: %v", errs)
	}

	name := reachableLoopbackName(t)
	in := start(t, "CHATTAP_PPROF_ADDR="+name+":0", "CHATTAP_ALLOW_UNAUTHENTICATED=true", "CHATTAP_FILE_SINK_PATH=")
	if !strings.Contains(in.stderr.String(), "starting unprotected") || !strings.Contains(in.stderr.String(), "CHATTAP_PPROF_ADDR") {
		t.Errorf("the startup log does not warn of the open profiles:\n%s", in.stderr)
	}
}
