package mapper

// These tests drive handleBatch directly: the races they stage (another
// replica writing between a read and a write, CHATTAP_EVENTS failing
// between a write and a publish) cannot be timed from outside the runner.

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// settledMsg is a jetstream.Msg that remembers how it was settled.
type settledMsg struct {
	data []byte
	mu   sync.Mutex
	res  string
}

func (m *settledMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: 1}, nil
}
func (m *settledMsg) Data() []byte                     { return m.data }
func (m *settledMsg) Headers() nats.Header             { return nil }
func (m *settledMsg) Subject() string                  { return "chattap.raw.test" }
func (m *settledMsg) Reply() string                    { return "" }
func (m *settledMsg) Ack() error                       { return m.settle("ack") }
func (m *settledMsg) DoubleAck(context.Context) error  { return m.settle("ack") }
func (m *settledMsg) Nak() error                       { return m.settle("nak") }
func (m *settledMsg) NakWithDelay(time.Duration) error { return m.settle("nak") }
func (m *settledMsg) InProgress() error                { return nil }
func (m *settledMsg) Term() error                      { return m.settle("term") }
func (m *settledMsg) TermWithReason(string) error      { return m.settle("term") }

func (m *settledMsg) settle(s string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.res = s
	return nil
}

func (m *settledMsg) result() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.res
}

// deliver hands the Observations to r as one batch, as a worker would,
// and returns how each was settled.
func deliver(t *testing.T, r *Runner, cache *stateCache, obs ...*spec.Observation) []string {
	t.Helper()
	jobs := make([]job, len(obs))
	msgs := make([]*settledMsg, len(obs))
	for i, o := range obs {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = &settledMsg{data: b}
		jobs[i] = job{msg: msgs[i], obs: o, taken: time.Now()}
	}
	r.handleBatch(jobs, cache)
	res := make([]string, len(msgs))
	for i, m := range msgs {
		res[i] = m.result()
	}
	return res
}

// countingJS counts the publishes that go through it.
type countingJS struct {
	jetstream.JetStream
	n atomic.Int64
}

func (c *countingJS) PublishAsync(subj string, data []byte, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	c.n.Add(1)
	return c.JetStream.PublishAsync(subj, data, opts...)
}

// hookKV runs hook once, after the first Get returned.
type hookKV struct {
	jetstream.KeyValue
	once sync.Once
	hook func()
}

func (h *hookKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := h.KeyValue.Get(ctx, key)
	h.once.Do(h.hook)
	return e, err
}

// testRunner is a Runner whose workers are the test's own calls of
// handleBatch, on kv and on pub for publishing and writing.
func testRunner(t *testing.T, pub jetstream.JetStream, kv jetstream.KeyValue) *Runner {
	t.Helper()
	m, err := New(Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRunner(pub, m, nil, slog.New(slog.DiscardHandler), nil, RunnerOptions{PublishTimeout: 2 * time.Second})
	r.pub, r.store = pub, newStateStore(pub, kv)
	r.work, r.cancel = context.WithCancel(context.Background())
	t.Cleanup(r.cancel)
	return r
}

// outboxConversation is a bot conversation: the contact's first message
// (Started, identify with the contact's name, Sent) and the bot's reply.
func outboxConversation() (first, reply *spec.Observation) {
	const cid = "chatbot::1:beef"
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	first = &spec.Observation{V: 1, ID: "first", Source: spec.SourceChatbotWebhook, Kind: "message", ReceivedAt: at, ConversationID: cid, Status: 200,
		Payload: json.RawMessage(`{"info":{"cid":"` + cid + `","contact":{"id":7,"name":"Eva"}},"packet":{"name":"message","payload":{"body":"hi"}}}`)}
	reply = &spec.Observation{V: 1, ID: "reply", Source: spec.SourceChatbotReply, Kind: "message", ReceivedAt: at.Add(time.Second), ConversationID: cid, Status: 200,
		Payload: json.RawMessage(`{"packet":{"name":"message","payload":{"body":"Hello from the bot"}}}`)}
	return first, reply
}

// mappedInOrder is what one replica mapping obs in order makes, as the
// JSON it publishes.
func mappedInOrder(t *testing.T, obs ...*spec.Observation) []string {
	t.Helper()
	m, err := New(Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var st State
	var want []string
	for _, o := range obs {
		out, next, err := m.Map(o, st, spec.DefaultSettings)
		if err != nil {
			t.Fatal(err)
		}
		st = next
		for i := range out {
			b, err := json.Marshal(&out[i])
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, string(b))
		}
	}
	return want
}

func storedEvents(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	st, err := js.Stream(t.Context(), spec.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(m.Data))
	}
	return out
}

func sameEvents(t *testing.T, step string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events on CHATTAP_EVENTS, want %d:\n got %q\nwant %q", step, len(got), len(want), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: event %d\n got %s\nwant %s", step, i, got[i], want[i])
		}
	}
}

// TestStalePublishNeverEscapes stages the race of two replicas: ours
// reads the conversation's State, the other replica then maps and stores
// the contact's first message, and ours maps the bot's reply on the State
// it read, which knows neither the contact nor that the conversation
// started. Its write loses the compare-and-set; nothing of that stale
// mapping may reach CHATTAP_EVENTS, whose messages must be exactly those
// of one replica mapping both in order.
func TestStalePublishNeverEscapes(t *testing.T) {
	s := brokertest.Start(t)
	kv, err := s.JS.KeyValue(t.Context(), spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	first, reply := outboxConversation()
	other := testRunner(t, s.JS, kv)
	var otherRes []string
	raced := &hookKV{KeyValue: kv, hook: func() { otherRes = deliver(t, other, newStateCache(16), first) }}
	ours := testRunner(t, s.JS, raced)
	res := deliver(t, ours, newStateCache(16), reply)
	if len(otherRes) != 1 || otherRes[0] != "ack" || res[0] != "ack" {
		t.Fatalf("first %v, reply %v: want both acked", otherRes, res)
	}
	sameEvents(t, "after the race", storedEvents(t, s.JS), mappedInOrder(t, first, reply))
}

// TestPublishFailureAfterWriteDeliversOnce makes CHATTAP_EVENTS
// unavailable while the first Observation's State is written, so its
// messages stay in the State's outbox and it is naked. The reply comes
// before the redelivery: while the stream is missing it is naked too,
// without being applied; once the stream is back it publishes the
// outbox before its own messages. Every message must then be on
// CHATTAP_EVENTS exactly once and in order, whatever is delivered again,
// by this worker or by another one that knows nothing of it.
func TestPublishFailureAfterWriteDeliversOnce(t *testing.T) {
	s := brokertest.Start(t)
	ctx := t.Context()
	kv, err := s.JS.KeyValue(ctx, spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.JS.DeleteStream(ctx, spec.StreamEvents); err != nil {
		t.Fatal(err)
	}
	first, reply := outboxConversation()
	r := testRunner(t, s.JS, kv)
	cache := newStateCache(16)

	if res := deliver(t, r, cache, first); res[0] != "nak" {
		t.Fatalf("first with CHATTAP_EVENTS missing: %s, want nak", res[0])
	}
	e, err := kv.Get(ctx, StateKey(first.ConversationID))
	if err != nil {
		t.Fatalf("state after the failed publish: %v", err)
	}
	st, err := DecodeState(e.Value())
	if err != nil {
		t.Fatal(err)
	}
	if want := mappedInOrder(t, first); !st.HasApplied(first.ID) || len(st.Outbox) != len(want) {
		t.Fatalf("state applied %v, outbox of %d; want the first applied with its %d messages", st.HasApplied(first.ID), len(st.Outbox), len(want))
	}
	if res := deliver(t, r, cache, reply); res[0] != "nak" {
		t.Fatalf("reply with CHATTAP_EVENTS missing: %s, want nak", res[0])
	}

	if err := broker.Ensure(ctx, s.JS, broker.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	want := mappedInOrder(t, first, reply)
	if res := deliver(t, r, cache, reply); res[0] != "ack" {
		t.Fatalf("reply after recovery: %s, want ack", res[0])
	}
	sameEvents(t, "reply after recovery", storedEvents(t, s.JS), want)
	if res := deliver(t, r, cache, first, reply); res[0] != "ack" || res[1] != "ack" {
		t.Fatalf("redelivery: %v, want both acked", res)
	}
	sameEvents(t, "redelivery", storedEvents(t, s.JS), want)
	if res := deliver(t, testRunner(t, s.JS, kv), newStateCache(16), first, reply); res[0] != "ack" || res[1] != "ack" {
		t.Fatalf("redelivery to another worker: %v, want both acked", res)
	}
	sameEvents(t, "redelivery to another worker", storedEvents(t, s.JS), want)
}

// TestOutboxPublishedOnceByItsWriter: the worker that wrote a State and
// published its outbox does not publish it again when it maps the
// conversation's next Observation; a worker that does not know it was
// published does, and JetStream drops the copies.
func TestOutboxPublishedOnceByItsWriter(t *testing.T) {
	s := brokertest.Start(t)
	kv, err := s.JS.KeyValue(t.Context(), spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	first, reply := outboxConversation()
	nFirst, nReply := len(mappedInOrder(t, first)), len(mappedInOrder(t, first, reply))-len(mappedInOrder(t, first))

	pub := &countingJS{JetStream: s.JS}
	r := testRunner(t, pub, kv)
	cache := newStateCache(16)
	deliver(t, r, cache, first)
	deliver(t, r, cache, reply)
	// Each batch also writes its State through pub.
	if got, want := pub.n.Load(), int64(nFirst+nReply+2); got != want {
		t.Errorf("one worker: %d publishes, want %d (each message once, and two writes)", got, want)
	}

	pub.n.Store(0)
	third := *reply
	third.ID, third.ReceivedAt = "third", reply.ReceivedAt.Add(time.Second)
	third.Payload = json.RawMessage(`{"packet":{"name":"message","payload":{"body":"Anything else?"}}}`)
	deliver(t, testRunner(t, pub, kv), newStateCache(16), &third)
	nThird := len(mappedInOrder(t, first, reply, &third)) - nFirst - nReply
	if got, want := pub.n.Load(), int64(nReply+nThird+1); got != want {
		t.Errorf("another worker: %d publishes, want %d (the reply's outbox again, the third's messages, one write)", got, want)
	}
	sameEvents(t, "another worker", storedEvents(t, s.JS), mappedInOrder(t, first, reply, &third))
}

// TestOutboxStaysBounded lowers the outbox's bound below two messages: of
// a batch of one conversation, the Observations past the bound are naked
// and map later, in order; one Observation alone past it is published
// before its State is written, and the State carries no outbox.
func TestOutboxStaysBounded(t *testing.T) {
	defer func(n int) { maxOutboxBytes = n }(maxOutboxBytes)
	maxOutboxBytes = 1
	s := brokertest.Start(t)
	kv, err := s.JS.KeyValue(t.Context(), spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	first, reply := outboxConversation()
	r := testRunner(t, s.JS, kv)
	cache := newStateCache(16)
	if res := deliver(t, r, cache, first, reply); res[0] != "ack" || res[1] != "nak" {
		t.Fatalf("batch past the bound: %v, want the first acked and the reply naked", res)
	}
	sameEvents(t, "batch past the bound", storedEvents(t, s.JS), mappedInOrder(t, first))
	if res := deliver(t, r, cache, reply); res[0] != "ack" {
		t.Fatalf("reply again: %s, want ack", res[0])
	}
	sameEvents(t, "reply again", storedEvents(t, s.JS), mappedInOrder(t, first, reply))
	e, err := kv.Get(t.Context(), StateKey(first.ConversationID))
	if err != nil {
		t.Fatal(err)
	}
	st, err := DecodeState(e.Value())
	if err != nil || len(st.Outbox) != 0 || !st.HasApplied(reply.ID) {
		t.Errorf("state %+v (%v): want the reply applied and no outbox", st, err)
	}
}
