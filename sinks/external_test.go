package sinks_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/sinks/sinkstest"
	"github.com/chattap/chattap/spec"
)

// funcSink is a hand-written fake Sink whose outcome a test decides.
type funcSink struct {
	name    string
	deliver func(sinks.Delivery) error
}

func (s *funcSink) Name() string { return s.name }
func (s *funcSink) Deliver(_ context.Context, d sinks.Delivery, done func(error)) {
	done(s.deliver(d))
}
func (s *funcSink) Close(context.Context) error { return nil }

// TestOnExternalServer runs the runner, the DLQ and tail against the
// machine's own nats-server (2.9 on these machines): every consumer
// config must be one that server understands.
func TestOnExternalServer(t *testing.T) {
	url := brokertest.ExternalURL(t)
	_, js := brokertest.ConnectEnsured(t, url)
	name := fmt.Sprintf("ext%d", time.Now().UnixNano())
	var mu sync.Mutex
	got := map[string]bool{}
	sink := &funcSink{name: name, deliver: func(d sinks.Delivery) error {
		if d.Message.Properties[spec.PropMessageBody] == "poison" {
			return sinks.Permanent(fmt.Errorf("refused"))
		}
		mu.Lock()
		got[d.ID()] = true
		mu.Unlock()
		return nil
	}}
	o := fast()
	o.Start = "new"
	startRunner(t, js, o, sink)
	t.Cleanup(func() { _ = js.DeleteConsumer(context.Background(), spec.StreamEvents, sinks.ConsumerName(name)) })

	var tailed syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _, _ = sinks.Tail(ctx, js, &tailed, sinks.TailOptions{Follow: true}) }()
	time.Sleep(200 * time.Millisecond) // the tail's consumer is in place

	events := sinkstest.Events(name, 5)
	events[1].Properties[spec.PropMessageBody] = "poison"
	publish(t, js, events...)
	waitUntil(t, 10*time.Second, "4 deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 4 })
	waitUntil(t, 10*time.Second, "a dead letter", func() bool { return len(dlq(t, js, sinks.DLQFilter{Sink: name})) == 1 })
	waitUntil(t, 10*time.Second, "5 tailed lines", func() bool { return bytes.Count(tailed.Bytes(), []byte(name+"-")) >= 5 })
	if n, err := sinks.DropDLQ(t.Context(), js, sinks.DLQFilter{Sink: name, All: true}); err != nil || n != 1 {
		t.Errorf("DropDLQ: %d, %v", n, err)
	}
}
