package ingest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestStreamQueueSkipsInsteadOfBlocking(t *testing.T) {
	q := newStreamQueue()
	done := make(chan struct{})
	go func() {
		for range streamQueueLen + 25 {
			q.push(&nats.Msg{Subject: "chattap.events.x", Data: []byte(`{}`)})
		}
		// Over the byte bound even with room left in the count.
		q.take()
		q.push(&nats.Msg{Data: make([]byte, streamQueueBytes-10)})
		q.push(&nats.Msg{Data: make([]byte, 20)})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("push blocked on a reader that does not read")
	}
	msgs, skipped := q.take()
	if len(msgs) != 1 || skipped != 1 {
		t.Errorf("after the byte bound: %d queued, %d skipped; want 1 and 1", len(msgs), skipped)
	}
	for range streamQueueLen + 25 {
		q.push(&nats.Msg{Data: []byte(`{}`)})
	}
	msgs, skipped = q.take()
	if len(msgs) != streamQueueLen || skipped != 25 {
		t.Errorf("after the count bound: %d queued, %d skipped; want %d and 25", len(msgs), skipped, streamQueueLen)
	}
	if msgs, skipped := q.take(); len(msgs) != 0 || skipped != 0 {
		t.Errorf("take did not empty the queue: %d, %d", len(msgs), skipped)
	}
}

func TestWindowCountsTheLastMinuteAndHour(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var w window
	// Time only moves on: each step adds its events, then reads.
	for _, step := range []struct {
		at           time.Duration
		add          int
		minute, hour int
	}{
		{at: 0, add: 1, minute: 1, hour: 1},
		{at: 30 * time.Second, add: 1, minute: 2, hour: 2},
		{at: 50 * time.Second, add: 1, minute: 3, hour: 3},
		{at: 100 * time.Second, minute: 1, hour: 3}, // only 50s is within the last 60s
		{at: 10 * time.Minute, add: 2, minute: 2, hour: 5},
		{at: 59*time.Minute + 30*time.Second, add: 1, minute: 1, hour: 6},
		{at: 70 * time.Minute, minute: 0, hour: 1}, // 10:59 is within the hour ending 11:10; 10:00 and 10:10 are not
		{at: 3 * time.Hour, minute: 0, hour: 0},
	} {
		now := t0.Add(step.at)
		for range step.add {
			w.add(now)
		}
		m, h := w.counts(now)
		if m != step.minute || h != step.hour {
			t.Errorf("at +%v: %d in the last minute, %d in the last hour; want %d and %d", step.at, m, h, step.minute, step.hour)
		}
	}
}

func TestEventStatsCountsARepublishedEventOnce(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := newEventStats(now)
	msg := func(id string) *nats.Msg {
		return &nats.Msg{Subject: "chattap.events.live_chat_message_sent", Header: nats.Header{jetstream.MsgIDHeader: []string{id}},
			Data: []byte(`{"type":"track","event":"Live Chat Message Sent"}`)}
	}
	s.event(now, msg("a"))
	s.event(now, msg("a"))
	s.event(now, msg("b"))
	events, _, _, _ := s.snapshot(now)
	if len(events) != 1 || events[0].Event != "Live Chat Message Sent" || events[0].Minute != 2 || events[0].Hour != 2 {
		t.Errorf("got %+v, want Live Chat Message Sent twice", events)
	}
}
