package sinks_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/sinks/sinkstest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// normalize replaces what changes with every request (sentAt,
// analytics-go's batch messageId) and keeps the events' bytes as sent.
func normalize(t *testing.T, body []byte) []byte {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	env["sentAt"] = json.RawMessage(`"<sentAt>"`)
	if _, ok := env["messageId"]; ok {
		env["messageId"] = json.RawMessage(`"<batch>"`)
	}
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot:  %s\nwant: %s", name, got, want)
	}
}

// deliverEvents hands n events to s one after the other, waits for them,
// and closes s.
func deliverEvents(t *testing.T, s sinks.Sink, n int) {
	t.Helper()
	errs := make(chan error, n)
	for i, m := range sinkstest.Events("golden", n) {
		s.Deliver(t.Context(), sinkstest.Delivery(t, m, uint64(i+1)), func(err error) { errs <- err })
	}
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no outcome")
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWireBodies pins what each sink puts on the wire for the same five
// events (one batch each).
func TestWireBodies(t *testing.T) {
	o := fast()
	o.BatchSize = 5
	o.FlushInterval = time.Second

	t.Run("segment", func(t *testing.T) {
		rcv := sinkstest.NewReceiver(t, writeKey)
		deliverEvents(t, newSegment(t, rcv, o), 5)
		bodies, headers := rcv.Bodies()
		if len(bodies) != 1 {
			t.Fatalf("%d requests, want 1 batch", len(bodies))
		}
		if got := headers[0].Get("Authorization"); got != sinkstest.BasicAuth(writeKey) {
			t.Errorf("Authorization %q", got)
		}
		golden(t, "segment.golden.json", append(normalize(t, bodies[0]), '\n'))
		for i, m := range sinkstest.Events("golden", 5) {
			want := sinkstest.Delivery(t, m, uint64(i+1)).Raw
			if got := rcv.Messages()[m.MessageID]; !sinkstest.SameJSON(got, want) {
				t.Errorf("analytics-go changed %s:\ngot  %s\nwant %s", m.MessageID, got, want)
			}
		}
	})

	t.Run("webhook", func(t *testing.T) {
		rcv := sinkstest.NewReceiver(t, writeKey)
		deliverEvents(t, newWebhook(t, rcv, o), 5)
		bodies, headers := rcv.Bodies()
		if len(bodies) != 1 {
			t.Fatalf("%d requests, want 1 batch", len(bodies))
		}
		mac := hmac.New(sha256.New, []byte("s3cret"))
		mac.Write(bodies[0])
		if got, want := headers[0].Get(sinks.SignatureHeader), "sha256="+hex.EncodeToString(mac.Sum(nil)); got != want {
			t.Errorf("signature %q, want %q", got, want)
		}
		if got := headers[0].Get("X-Source"); got != "chattap, tests" {
			t.Errorf("X-Source %q", got)
		}
		if got := headers[0].Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type %q", got)
		}
		golden(t, "webhook.golden.json", append(normalize(t, bodies[0]), '\n'))
	})

	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "events.jsonl")
		if err := os.WriteFile(path, []byte("{\"earlier\":true}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := sinks.NewFile(sinks.FileOptions{Path: path}, o, sinks.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		deliverEvents(t, s, 5)
		golden(t, "file.golden.jsonl", readFile(t, path))
	})
}
