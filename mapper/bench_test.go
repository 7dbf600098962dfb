package mapper_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// benchObservations is a mix that follows real traffic: a bot conversation
// (webhook message, two reply events), an add-on message and a Custom
// Channel message, each mapped against the State of a conversation some
// twenty events in, as the runner does.
func benchObservations(b *testing.B, m *mapper.Mapper) ([]*spec.Observation, []mapper.State) {
	b.Helper()
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	obs := []*spec.Observation{
		{Source: spec.SourceChatbotWebhook, Kind: "message", ConversationID: "chatbot::258:a56785fb6fb84edd890905913b0c0821",
			Payload: json.RawMessage(`{"info":{"approach_mode":"normal","cid":"chatbot::258:a56785fb6fb84edd890905913b0c0821","contact":{"id":48213,"name":"Maria Schmidt","email":"maria@example.org","external_customer_id":"CRM-00042","locale":"de_DE"},"context":{"step":3},"conversation":{"id":99123},"widget":{"id":7001,"name":"Support DE"}},"packet":{"name":"message","payload":{"body":"Hello, I have a question about my balance."}}}`)},
		{Source: spec.SourceChatbotReply, Kind: "message", ConversationID: "chatbot::258:a56785fb6fb84edd890905913b0c0821", Index: 1,
			Payload: json.RawMessage(`{"info":{"cid":"chatbot::258:a56785fb6fb84edd890905913b0c0821","context":{"step":4}},"packet":{"name":"message","payload":{"body":"Sure! What is your customer number?"}}}`)},
		{Source: spec.SourceChatbotReply, Kind: "bubbles", ConversationID: "chatbot::258:a56785fb6fb84edd890905913b0c0821", Index: 2,
			Payload: json.RawMessage(`{"packet":{"name":"bubbles","payload":{"body":"Or choose:","options":[{"label":"Check balance","value":"b"},{"label":"Talk to a human","value":"h"}]}}}`)},
		{Source: spec.SourceAddon, Kind: "chat_session.message_received", ConversationID: "userlike::5550123",
			Payload: json.RawMessage(`{"_type":"chat_session","_event":"message_received","session_id":5550123,"id":88812001,"message":"Where is my order?","sent_at":"2026-11-20 15:00:10","client_name":"Eva Muster","client_uuid":"c0ffee00-1111-4222-8333-444455556666","chat_widget":{"id":12,"name":"Website DE"},"operator_current":{"id":311,"name":"Jonas Weber"}}`)},
		{Source: spec.SourceChannelInbound, Kind: "message", ConversationID: "channel::maria@example.org",
			Payload: json.RawMessage(`{"contact_id":"maria@example.org","name":"Maria Schmidt","message":{"body":"Hi, my parcel did not arrive."}}`)},
	}
	states := make([]mapper.State, len(obs))
	for i, o := range obs {
		o.V, o.Status, o.ReceivedAt = 1, 200, at
		// Warm the conversation up with twenty earlier events.
		for n := range 20 {
			warm := *o
			warm.ID = fmt.Sprintf("warm-%d-%d", i, n)
			_, next, err := m.Map(&warm, states[i], spec.DefaultSettings)
			if err != nil {
				b.Fatal(err)
			}
			states[i] = next
		}
		o.ID = fmt.Sprintf("0193c5e4-8a7b-7c01-9d2e-3f4a5b6c7d%02d", i)
	}
	return obs, states
}

func BenchmarkMap(b *testing.B) {
	m, err := mapper.New(mapper.Options{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	obs, states := benchObservations(b, m)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		i := n % len(obs)
		if _, _, err := m.Map(obs[i], states[i], spec.DefaultSettings); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "obs/s")
}

// BenchmarkRunner measures the whole mapper stage on the embedded
// JetStream: read state, map, publish, write state, ack, for records
// spread over 500 conversations, on their partitions: events=1 is a
// webhook message whose bot answered nothing (one record is one
// Observation, as a version 1 Observation was), events=3 a webhook message
// with a bot reply of two messages (one record, three Observations). Its
// figures are records/s and cpu-µs/record; ns/op is only the cost of
// publishing the input.
func BenchmarkRunner(b *testing.B) {
	for _, events := range []int{1, 3} {
		b.Run(fmt.Sprintf("events=%d", events), func(b *testing.B) { benchmarkRunner(b, events) })
	}
}

func benchmarkRunner(b *testing.B, events int) {
	s := brokertest.Start(b)
	m, err := mapper.New(mapper.Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := mapper.NewRunner(s.JS, m, nil, nil, nil, mapper.RunnerOptions{})
	if err := r.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Stop(context.Background()) })
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	n := 0
	b.ReportAllocs()
	// b.Loop times only the publishing; the stage's rate is up to the
	// last ack, so the clock here runs until then. The process's CPU time
	// per record (the embedded server's included) says the same with less
	// of the noise of a shared machine.
	start, cpu0 := time.Now(), cpuTime(b)
	var data []byte
	for b.Loop() {
		cid := fmt.Sprintf("chatbot::1:%032x", n%500)
		obs := []*spec.Observation{{Source: spec.SourceChatbotWebhook, Kind: "message", ConversationID: cid,
			Payload: json.RawMessage(`{"info":{"cid":"` + cid + `","contact":{"id":1}},"packet":{"name":"message","payload":{"body":"hello"}}}`)}}
		for i := 1; i < events; i++ {
			obs = append(obs, &spec.Observation{Source: spec.SourceChatbotReply, Kind: "message", ConversationID: cid, Index: i,
				Payload: json.RawMessage(`{"info":{"cid":"` + cid + `"},"packet":{"name":"message","payload":{"body":"answer ` + strconv.Itoa(i) + `"}}}`)})
		}
		rec := spec.NewRecord(fmt.Sprintf("bench-%d", n), at, 200, obs)
		data = rec.AppendJSON(data[:0])
		if _, err := s.JS.PublishAsync(rec.Subject(), slices.Clone(data), jetstream.WithMsgID(rec.ID)); err != nil {
			b.Fatal(err)
		}
		n++
	}
	<-s.JS.PublishAsyncComplete()
	// Every event yields a Message Sent or Received (a conversation's
	// first also a Started): wait for them with one cheap call, then for
	// the last acks with the seventeen consumers' (asking those all along
	// would cost more than the stage).
	stream, err := s.JS.Stream(b.Context(), spec.StreamEvents)
	if err != nil {
		b.Fatal(err)
	}
	for want := uint64(events*n + min(n, 500)); ; time.Sleep(5 * time.Millisecond) {
		info, err := stream.Info(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs >= want {
			break
		}
	}
	for !allMapped(b, s.JS) {
		time.Sleep(5 * time.Millisecond)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(n), "cpu-µs/record")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
