package ingest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type streamLine struct {
	Kind    string          `json:"k"`
	Subject string          `json:"subject"`
	Record  string          `json:"record"`
	Data    json.RawMessage `json:"data"`
}

func startDebugger(t *testing.T) (*httptest.Server, jetstream.JetStream, *ingest.Debugger) {
	t.Helper()
	s := brokertest.Start(t)
	dbg := ingest.NewDebugger(ingest.DebuggerDeps{JS: s.JS})
	if err := dbg.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.AdminToken = "adm"
	srv, err := ingest.New(ingest.Deps{Options: o, Debugger: dbg})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	// As serve's server has, but short: a stream outlives it.
	hs.Config.ReadTimeout = 300 * time.Millisecond
	hs.Start()
	t.Cleanup(func() { dbg.Close(); hs.Close() })
	return hs, s.JS, dbg
}

func publishEvent(t *testing.T, js jetstream.JetStream, record, messageID string) {
	t.Helper()
	msg := &nats.Msg{Subject: "chattap.events.live_chat_message_sent", Header: nats.Header{spec.HeaderRecord: []string{record}},
		Data: []byte(`{"type":"track","event":"Live Chat Message Sent","messageId":"` + messageID + `"}`)}
	if _, err := js.PublishMsg(t.Context(), msg, jetstream.WithMsgID(messageID)); err != nil {
		t.Fatal(err)
	}
}

func TestDebuggerStreamsBacklogThenLive(t *testing.T) {
	hs, js, _ := startDebugger(t)
	if _, err := js.Publish(t.Context(), "chattap.raw.chatbot.webhook.message", []byte(`{"v":1,"id":"obs-1","source":"chatbot.webhook"}`), jetstream.WithMsgID("obs-1")); err != nil {
		t.Fatal(err)
	}
	publishEvent(t, js, "obs-1", "m-1")

	for _, path := range []string{"/debugger/stream", "/debugger/state"} {
		for _, auth := range []string{"", "Bearer wrong", "adm"} {
			req, _ := http.NewRequest(http.MethodGet, hs.URL+path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("GET %s with Authorization %q: %d, want 403", path, auth, resp.StatusCode)
			}
		}
	}
	if resp, err := http.Get(hs.URL + "/debugger"); err != nil || resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("the page without a token: %v %v", resp, err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/debugger/stream", nil)
	req.Header.Set("Authorization", "Bearer adm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	next := func() streamLine {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("stream ended: %v", lines.Err())
		}
		var l streamLine
		if err := json.Unmarshal(lines.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", lines.Text(), err)
		}
		return l
	}
	if l := next(); l.Kind != "record" || !strings.Contains(string(l.Data), `"obs-1"`) {
		t.Errorf("first backlog line: %+v", l)
	}
	if l := next(); l.Kind != "event" || l.Record != "obs-1" || !strings.Contains(string(l.Data), `"m-1"`) {
		t.Errorf("second backlog line: %+v", l)
	}
	if l := next(); l.Kind != "live" {
		t.Errorf("after the backlog: %+v, want live", l)
	}
	time.Sleep(600 * time.Millisecond) // past the server's ReadTimeout
	publishEvent(t, js, "obs-2", "m-2")
	if l := next(); l.Kind != "event" || l.Record != "obs-2" || l.Subject != "chattap.events.live_chat_message_sent" {
		t.Errorf("live line: %+v", l)
	}

	// A sink that has taken nothing yet, with one dead letter.
	if _, err := js.CreateOrUpdateConsumer(t.Context(), spec.StreamEvents, jetstream.ConsumerConfig{Durable: "sink-file", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), spec.DLQSubject("file"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	var state struct {
		Events []ingest.EventCount `json:"events"`
		Stored uint64              `json:"events_stored"`
		Sinks  []ingest.SinkState  `json:"sinks"`
	}
	// The counts come from the debugger's own subscription, which may
	// still be taking m-2 in when the first answer is made: ask again
	// until both count, or the deadline says they never will.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		req, _ = http.NewRequest(http.MethodGet, hs.URL+"/debugger/state", nil)
		req.Header.Set("Authorization", "Bearer adm")
		sr, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(sr.Body).Decode(&state)
		sr.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if (len(state.Events) == 1 && state.Events[0].Minute >= 2) || time.Now().After(deadline) {
			break
		}
	}
	// Start subscribed before either event was published: both count.
	if len(state.Events) != 1 || state.Events[0].Event != "Live Chat Message Sent" || state.Events[0].Minute != 2 || state.Stored != 2 {
		t.Errorf("state: %+v", state)
	}
	if len(state.Sinks) != 1 || state.Sinks[0].Name != "file" || state.Sinks[0].Lag != 2 || state.Sinks[0].DeadLetters != 1 {
		t.Errorf("sinks: %+v, want file with 2 to take and 1 dead letter", state.Sinks)
	}
}

// TestDebuggerCloseEndsStreams: an open stream never ends by itself, so
// shutting the HTTP server down relies on Close ending it.
func TestDebuggerCloseEndsStreams(t *testing.T) {
	hs, _, dbg := startDebugger(t)
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/debugger/stream", nil)
	req.Header.Set("Authorization", "Bearer adm")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"live"`) {
		t.Fatalf("first line %q, want live", lines.Text())
	}
	ended := make(chan struct{})
	go func() {
		for lines.Scan() {
		}
		close(ended)
	}()
	dbg.Close()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream was still open 5s after Close")
	}
}
