//go:build faults

package faults_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
)

// routeToken is the header and token of each recording route.
var routeToken = map[string][2]string{
	routeWebhook:  {"SECURITY-TOKEN", webhookToken},
	routeAPI:      {"SECURITY-TOKEN", apiToken},
	routeOutbound: {"API-SECURITY-TOKEN", outboundToken},
	routeInbound:  {"API-SECURITY-TOKEN", inboundToken},
	routeAddon:    {"X-Chattap-Token", addonToken},
}

var routes = []string{routeWebhook, routeAPI, routeOutbound, routeInbound, routeAddon}

// hostile is one malformed request and the statuses the README documents
// for it: on a proxied route, what the upstream answers (200 here) unless
// it is too large; on the add-on route, 400 for what is not a JSON object.
type hostile struct {
	name     string
	body     []byte
	encoding string
	proxied  []int
	addon    []int
}

func hostileCorpus() []hostile {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 256 { // 256 MiB of zeros in ~250 KB
		_, _ = zw.Write(zeros)
	}
	zw.Close()
	ok, bad := []int{200}, []int{400}
	return []hostile{
		{"malformed", []byte(`{"info": {"cid": "chatbot::1:x",, }`), "", ok, bad},
		{"not JSON", []byte("hello, this is not JSON"), "", ok, bad},
		{"truncated", []byte(`{"info":{"cid":"chatbot::1:trunc","contact":{"name":"A`), "", ok, bad},
		{"empty", nil, "", ok, bad},
		{"deeply nested", append(bytes.Repeat([]byte("["), 200000), bytes.Repeat([]byte("]"), 200000)...), "", ok, bad},
		{"deeply nested object", []byte(strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)), "", ok, []int{200, 400}},
		{"wrongly typed", []byte(`{"info":{"cid":{"x":[1,2]},"contact":"nobody"},"packet":{"name":7,"payload":"x"},"_type":[],"_event":{},"contact_id":false,"message":[1]}`), "", ok, ok},
		{"null everywhere", []byte(`{"info":null,"packet":null,"_type":null,"_event":null,"contact_id":null,"message":null}`), "", ok, ok},
		{"JSON array", []byte(`[{"packet":{"name":"message"}}]`), "", ok, bad},
		{"invalid UTF-8", []byte("{\"info\":{\"cid\":\"chatbot::1:\xff\xfe\"},\"packet\":{\"name\":\"message\",\"payload\":{\"body\":\"\xc3\x28\"}}}"), "", ok, []int{200, 400}},
		{"UTF-16", []byte("\xff\xfe{\x00\"\x00a\x00\"\x00:\x001\x00}\x00"), "", ok, bad},
		{"oversized", append(append([]byte(`{"packet":{"name":"message","payload":{"body":"`), bytes.Repeat([]byte("x"), 1<<20+10)...), []byte(`"}}}`)...), "", []int{413}, []int{413}},
		{"gzip bomb", gz.Bytes(), "gzip", ok, []int{400, 413, 415}},
	}
}

// Case 6: hostile input on every route, slow clients, wrong tokens, and
// no secret or message body in the log.
func TestCase6Hostile(t *testing.T) {
	w := newWorld(t)
	port := brokertest.FreePort(t)
	env := embeddedEnv(t, w, port, nil)
	c := newChattap(t, "chattap", env)

	// Slow clients run while the rest goes on.
	var slow sync.WaitGroup
	slowHeader := slowClient(t, &slow, c.Addr, false)
	slowBody := slowClient(t, &slow, c.Addr, true)

	client := &http.Client{Timeout: 20 * time.Second}
	post := func(route string, body []byte, header http.Header) (int, time.Duration, error) {
		req, _ := http.NewRequest(http.MethodPost, c.URL()+route, bytes.NewReader(body))
		req.Header = header
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, time.Since(start), err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, time.Since(start), nil
	}
	withToken := func(route string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}}
		h.Set(routeToken[route][0], routeToken[route][1])
		return h
	}

	corpus := 0
	for _, h := range hostileCorpus() {
		for _, route := range routes {
			hdr := withToken(route)
			if h.encoding != "" {
				hdr.Set("Content-Encoding", h.encoding)
			}
			status, took, err := post(route, h.body, hdr)
			want := h.proxied
			if route == routeAddon {
				want = h.addon
			}
			corpus++
			switch {
			case err != nil:
				t.Errorf("%s on %s: %v after %s", h.name, route, err, took)
			case !slices.Contains(want, status):
				t.Errorf("%s on %s: status %d, want one of %v", h.name, route, status, want)
			case took > 5*time.Second:
				t.Errorf("%s on %s: answered after %s", h.name, route, took)
			}
			if !c.Alive() {
				t.Fatalf("chattap died on %s to %s:\n%s", h.name, route, c.Tail(3000))
			}
		}
	}

	// Tokens: missing, empty, wrong, one character off, in the wrong header.
	refused, tokenCases := 0, 0
	for _, route := range routes {
		name, tok := routeToken[route][0], routeToken[route][1]
		body := []byte(`{"info":{"cid":"chatbot::1:tok"},"packet":{"name":"message","payload":{"body":"hi"}},"_type":"operator","_event":"online"}`)
		for _, tc := range []struct {
			what string
			h    http.Header
		}{
			{"missing", http.Header{}},
			{"empty", http.Header{name: {""}}},
			{"wrong", http.Header{name: {"wrong"}}},
			{"one character off", http.Header{name: {tok[:len(tok)-1] + "x"}}},
			{"longer", http.Header{name: {tok + "x"}}},
			{"in another header", http.Header{"Authorization": {"Bearer " + tok}}},
		} {
			tokenCases++
			status, _, err := post(route, body, tc.h)
			if err == nil && (status == http.StatusForbidden || status == http.StatusUnauthorized) {
				refused++
				continue
			}
			t.Errorf("token %s on %s: status %d %v, want 401 or 403", tc.what, route, status, err)
		}
	}
	// Timing probe: a wrong token sharing no prefix against one sharing
	// all but the last byte. Reported, not asserted: a shared machine's
	// noise is larger than any difference a constant-time compare leaves.
	probe := func(tok string) time.Duration {
		var total time.Duration
		for range 200 {
			h := http.Header{"SECURITY-TOKEN": {tok}}
			_, took, _ := post(routeWebhook, []byte(`{}`), h)
			total += took
		}
		return total / 200
	}
	far := probe(strings.Repeat("z", len(webhookToken)))
	near := probe(webhookToken[:len(webhookToken)-1] + "z")

	// A normal conversation still goes through, and its bodies are logged nowhere.
	l := &load{Conversations: 8, Workers: 4, Pause: 10 * time.Millisecond, Seed: 0x6a0}
	ex, healed := drive(t, l, c.URL, 0, nil)
	slow.Wait()
	r, _ := settle(t, w, fmt.Sprintf("nats://127.0.0.1:%d", port), ex, healed, recoveryBound(env))
	r.Recovery = 0

	logged, _ := os.ReadFile(c.Log)
	secrets := []string{webhookToken, apiToken, outboundToken, inboundToken, addonToken, writeKey,
		base64.StdEncoding.EncodeToString([]byte(writeKey + ":")), "question about my", "Reply 1 to fxm", "Still there?", "transcript-only line", "hello, this is not JSON"}
	var leaked []string
	for _, s := range secrets {
		if bytes.Contains(logged, []byte(s)) {
			leaked = append(leaked, s)
		}
	}
	if len(leaked) > 0 {
		t.Errorf("the log holds %q", leaked)
	}
	r.Case, r.Load = "6 hostile input", fmt.Sprintf("%d malformed requests (13 kinds × 5 routes), %d token probes, 2 slow clients, then %s", corpus, tokenCases, l)
	r.Note = fmt.Sprintf("tokens refused %d of %d; timing probe: far %.0f µs, near %.0f µs; slow header cut after %s, slow body after %s; log %d bytes, secrets or bodies found %d",
		refused, tokenCases, float64(far.Microseconds()), float64(near.Microseconds()), slowHeader(), slowBody(), len(logged), len(leaked))
	report(t, r)
	assertClean(t, r, false, false)
	if !c.Alive() {
		t.Fatal("chattap is not running after the hostile input")
	}
}

// slowClient opens a connection that sends a request's headers (or, with
// body, its body) one byte a second, and measures when chattap cuts it
// off. It fails the test if chattap keeps it open past the bound its
// server sets (ReadHeaderTimeout 10 s, ReadTimeout 1 min) plus 5 s.
func slowClient(t *testing.T, wg *sync.WaitGroup, addr string, body bool) func() time.Duration {
	var took time.Duration
	bound := 15 * time.Second
	if body {
		bound = 65 * time.Second
	}
	wg.Go(func() {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Errorf("slow client: %v", err)
			return
		}
		defer conn.Close()
		start := time.Now()
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nSECURITY-TOKEN: %s\r\n", routeWebhook, addr, webhookToken)
		drip := []byte("X-Slow: " + strings.Repeat("a", 200))
		if body {
			_, _ = io.WriteString(conn, head+"\r\n")
			drip = bytes.Repeat([]byte("{"), 1000)
		}
		closed := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, bufio.NewReader(conn))
			close(closed)
		}()
		for _, b := range drip {
			if _, err := conn.Write([]byte{b}); err != nil {
				break
			}
			select {
			case <-closed:
			case <-time.After(time.Second):
				if time.Since(start) < bound {
					continue
				}
			}
			break
		}
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
		}
		took = time.Since(start)
		if took > bound {
			t.Errorf("slow client (body %v) still connected after %s", body, took.Round(time.Second))
		}
	})
	return func() time.Duration { return took.Round(100 * time.Millisecond) }
}
