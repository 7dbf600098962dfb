package sinks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/sinks/sinkstest"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchDeliver measures end-to-end delivery: events published on
// CHATTAP_EVENTS, pulled by the sink's durable consumer, sent to a local
// Segment-compatible receiver, acked. One iteration is a burst of 1,000
// events, delivered and acked.
func benchDeliver(b *testing.B, newSink func(*sinkstest.Receiver, sinks.DeliveryOptions) sinks.Sink) {
	const burst = 1000
	srv := brokertest.Start(b)
	rcv := sinkstest.NewReceiver(b, writeKey)
	o := sinks.DeliveryOptions{BatchSize: 250, FlushInterval: 5 * time.Millisecond, MaxInFlight: 2000, AckWait: time.Minute}
	sink := newSink(rcv, o)
	startRunner(b, srv.JS, o, sink)
	template := sinkstest.Events("bench", 5)
	c, err := srv.JS.Consumer(b.Context(), spec.StreamEvents, sinks.ConsumerName(sink.Name()))
	if err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	sent := 0
	start := time.Now()
	for b.Loop() {
		for range burst {
			m := template[sent%len(template)]
			m.MessageID = fmt.Sprintf("bench-%d", sent)
			data, _ := json.Marshal(m)
			msg := nats.NewMsg(spec.EventSubject(&m))
			msg.Data = data
			if _, err := srv.JS.PublishMsgAsync(msg, jetstream.WithMsgID(m.MessageID)); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		for rcv.Unique() < sent {
			time.Sleep(200 * time.Microsecond)
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "events/s")
	// Every event acked, not only received.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		info, err := c.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkDeliverSegment(b *testing.B) {
	benchDeliver(b, func(r *sinkstest.Receiver, o sinks.DeliveryOptions) sinks.Sink {
		s, err := sinks.NewSegment(sinks.SegmentOptions{WriteKey: writeKey, Endpoint: r.URL, Timeout: 5 * time.Second}, o, sinks.Deps{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

func BenchmarkDeliverWebhook(b *testing.B) {
	benchDeliver(b, func(r *sinkstest.Receiver, o sinks.DeliveryOptions) sinks.Sink {
		s, err := sinks.NewWebhook(sinks.WebhookOptions{URL: r.URL + "/v1/batch", Headers: "Authorization: " + sinkstest.BasicAuth(writeKey), Timeout: 5 * time.Second}, o, sinks.Deps{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}
