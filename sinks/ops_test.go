package sinks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/sinks/sinkstest"
	"github.com/chattap/chattap/spec"
)

func TestDLQListDropReplay(t *testing.T) {
	srv := brokertest.Start(t)
	rcv := sinkstest.NewReceiver(t, writeKey)
	var refuse atomic.Bool
	refuse.Store(true)
	rcv.SetRespond(func(int, []spec.Message) (int, http.Header) {
		if refuse.Load() {
			return http.StatusBadRequest, nil
		}
		return 0, nil
	})
	events := sinkstest.Events("dlq", 4)
	publish(t, srv.JS, events...)
	r, err := sinks.NewRunner(srv.JS, fast(), sinks.Deps{}, newWebhook(t, rcv, fast()))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "4 dead letters", func() bool { return len(dlq(t, srv.JS, sinks.DLQFilter{})) == 4 })
	if err := r.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	n, err := sinks.ListDLQ(t.Context(), srv.JS, sinks.DLQFilter{Sink: "webhook"}, &out)
	if err != nil || n != 4 {
		t.Fatalf("ListDLQ: %d, %v", n, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var first sinks.DLQEntry
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || len(lines) != 4 {
		t.Fatalf("ListDLQ printed %q: %v", out.String(), err)
	}
	if first.Sink != "webhook" || first.ID == "" || first.Reason == "" || first.Attempts != 1 || first.Time.IsZero() || first.Type == "" {
		t.Errorf("entry %+v", first)
	}
	if n, _ := sinks.ListDLQ(t.Context(), srv.JS, sinks.DLQFilter{Sink: "segment"}, &out); n != 0 {
		t.Errorf("segment has %d dead letters, want 0", n)
	}

	if _, err := sinks.DropDLQ(t.Context(), srv.JS, sinks.DLQFilter{}); !errors.Is(err, sinks.ErrNoSelection) {
		t.Errorf("DropDLQ without a selection: %v", err)
	}
	if n, err := sinks.DropDLQ(t.Context(), srv.JS, sinks.DLQFilter{Sequences: []uint64{first.Sequence}}); err != nil || n != 1 {
		t.Fatalf("DropDLQ by sequence: %d, %v", n, err)
	}

	refuse.Store(false)
	wh := newWebhook(t, rcv, fast())
	defer wh.Close(context.Background())
	left := dlq(t, srv.JS, sinks.DLQFilter{})
	res, err := sinks.ReplayDLQ(t.Context(), srv.JS, []sinks.Sink{wh}, sinks.DLQFilter{IDs: []string{left[0].ID}}, sinks.ReplayOptions{})
	if err != nil || res.Delivered != 1 || rcv.Count(left[0].ID) != 1 {
		t.Fatalf("ReplayDLQ by id: %+v, %v", res, err)
	}
	res, err = sinks.ReplayDLQ(t.Context(), srv.JS, nil, sinks.DLQFilter{All: true}, sinks.ReplayOptions{})
	if err != nil || res.Skipped != 2 {
		t.Errorf("ReplayDLQ without the sink: %+v, %v", res, err)
	}
	res, err = sinks.ReplayDLQ(t.Context(), srv.JS, []sinks.Sink{wh}, sinks.DLQFilter{Sink: "webhook", All: true}, sinks.ReplayOptions{})
	if err != nil || res.Delivered != 2 || res.Failed != 0 {
		t.Fatalf("ReplayDLQ all: %+v, %v", res, err)
	}
	if left := dlq(t, srv.JS, sinks.DLQFilter{}); len(left) != 0 {
		t.Errorf("%d dead letters left after replay", len(left))
	}
	if rcv.Unique() != 3 || rcv.Count(first.ID) != 0 {
		t.Errorf("receiver has %d events (dropped one: %d)", rcv.Unique(), rcv.Count(first.ID))
	}
}

func TestReplayHistory(t *testing.T) {
	srv := brokertest.Start(t)
	events := sinkstest.Events("hist", 10)
	publish(t, srv.JS, events...)
	replay := func(r sinks.Range) []string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "out.jsonl")
		s, err := sinks.NewFile(sinks.FileOptions{Path: path}, fast(), sinks.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := sinks.Replay(t.Context(), srv.JS, s, r, sinks.ReplayOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, line := range strings.Split(strings.TrimSpace(string(readFile(t, path))), "\n") {
			var m spec.Message
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			ids = append(ids, m.MessageID)
		}
		if res.Delivered != len(ids) {
			t.Errorf("result %+v for %d lines", res, len(ids))
		}
		return ids
	}
	if got := replay(sinks.Range{FromSeq: 3, ToSeq: 7}); strings.Join(got, " ") != "hist-2 hist-3 hist-4 hist-5 hist-6" {
		t.Errorf("sequences 3-7: %v", got)
	}
	if got := replay(sinks.Range{Since: time.Hour}); len(got) != 10 {
		t.Errorf("since 1h: %v", got)
	}
	if got := replay(sinks.Range{From: time.Now().Add(-time.Hour), Subject: spec.SubjectEventsPrefix + "identify"}); len(got) != 2 {
		t.Errorf("identifies: %v", got)
	}
	if _, err := sinks.Replay(t.Context(), srv.JS, nil, sinks.Range{}, sinks.ReplayOptions{}); err == nil {
		t.Error("Replay without a range succeeded")
	}
}

func TestTail(t *testing.T) {
	srv := brokertest.Start(t)
	events := sinkstest.Events("tail", 5)
	publish(t, srv.JS, events[:3]...)
	var out syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := sinks.Tail(ctx, srv.JS, &out, sinks.TailOptions{All: true, Follow: true})
		done <- err
	}()
	publish(t, srv.JS, events[3:]...)
	waitUntil(t, 5*time.Second, "5 lines", func() bool { return len(linesByID(out.Bytes())) == 5 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Tail: %v", err)
	}
	if got := bytes.Count(out.Bytes(), []byte("\n")); got != 5 {
		t.Errorf("%d lines, want 5", got)
	}
}

// TestTailWithoutFollowStopsAtTheEnd reads what is stored and returns, and
// narrows to one conversation.
func TestTailWithoutFollowStopsAtTheEnd(t *testing.T) {
	srv := brokertest.Start(t)
	events := sinkstest.Events("stored", 4)
	events[2].Properties[spec.PropConversationID] = "c-other"
	publish(t, srv.JS, events...)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	n, err := sinks.Tail(ctx, srv.JS, &out, sinks.TailOptions{})
	if err != nil || n != 4 || len(linesByID(out.Bytes())) != 4 {
		t.Fatalf("Tail: %d, %v\n%s", n, err, out.String())
	}
	out.Reset()
	n, err = sinks.Tail(ctx, srv.JS, &out, sinks.TailOptions{Conversation: "c-other"})
	if err != nil || n != 1 || !strings.Contains(out.String(), events[2].MessageID) {
		t.Fatalf("Tail -conversation: %d, %v\n%s", n, err, out.String())
	}
	out.Reset()
	if n, err := sinks.Tail(ctx, srv.JS, &out, sinks.TailOptions{Raw: true}); err != nil || n != 0 || out.Len() != 0 {
		t.Errorf("Tail of an empty CHATTAP_RAW: %d, %v, %q", n, err, out.String())
	}
	record := `{"v":1,"id":"r1","source":"addon","kind":"operator.online","payload":{"_type":"operator","_event":"online"}}`
	if _, err := srv.JS.Publish(ctx, "chattap.raw.addon.operator.online", []byte(record)); err != nil {
		t.Fatal(err)
	}
	if n, err := sinks.Tail(ctx, srv.JS, &out, sinks.TailOptions{Subject: "chattap.raw.>"}); err != nil || n != 1 || out.String() != record+"\n" {
		t.Errorf("Tail of chattap.raw.> does not read CHATTAP_RAW: %d, %v, %q", n, err, out.String())
	}
}
