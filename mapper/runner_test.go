package mapper_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// startRunner runs a mapper Runner on js until the test ends.
func startRunner(t *testing.T, js jetstream.JetStream, settings func() spec.Settings, o mapper.RunnerOptions) (*mapper.Runner, *metrics.Registry) {
	t.Helper()
	m, err := mapper.New(mapper.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.New()
	r := mapper.NewRunner(js, m, settings, slog.New(slog.DiscardHandler), metrics.NewMapper(reg), o)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("stop runner: %v", err)
		}
	})
	return r, reg
}

// publishRaw stores observations on CHATTAP_RAW as ingest does, with
// their id as Nats-Msg-Id unless msgID says otherwise.
func publishRaw(t *testing.T, js jetstream.JetStream, obs []*spec.Observation, msgID func(*spec.Observation) string) {
	t.Helper()
	for _, o := range obs {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		id := o.ID
		if msgID != nil {
			id = msgID(o)
		}
		if _, err := js.Publish(t.Context(), o.Subject(), b, jetstream.WithMsgID(id)); err != nil {
			t.Fatalf("publish %s: %v", o.ID, err)
		}
	}
}

// waitMapped waits until the mapper consumer has acked everything on
// CHATTAP_RAW. It compares the ack floor with the stream's last sequence:
// the consumer's pending count is updated asynchronously by the server and
// may read 0 just after a publish.
func waitMapped(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := js.Stream(t.Context(), spec.StreamRaw)
		if err != nil {
			t.Fatal(err)
		}
		si, err := st.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		c, err := js.Consumer(t.Context(), spec.StreamRaw, spec.ConsumerMapper)
		if err == nil {
			info, err := c.Info(t.Context())
			if err == nil && info.AckFloor.Stream >= si.State.LastSeq && info.NumAckPending == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("mapper did not finish in 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventsOnStream returns every message on CHATTAP_EVENTS, in stream order.
func eventsOnStream(t *testing.T, js jetstream.JetStream) []json.RawMessage {
	t.Helper()
	st, err := js.Stream(t.Context(), spec.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []json.RawMessage
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("get event %d: %v", seq, err)
		}
		var msg spec.Message
		if err := json.Unmarshal(m.Data, &msg); err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		if want := spec.EventSubject(&msg); m.Subject != want {
			t.Errorf("event %d on %s, want %s", seq, m.Subject, want)
		}
		if m.Header.Get(jetstream.MsgIDHeader) != msg.MessageID {
			t.Errorf("event %d: Nats-Msg-Id %q, messageId %q", seq, m.Header.Get(jetstream.MsgIDHeader), msg.MessageID)
		}
		out = append(out, m.Data)
	}
	return out
}

// expectedByContact maps the scenarios in order with the pure Mapper and
// returns each anonymous user's messages as JSON, in order: the runner
// keeps one conversation's order but may interleave conversations.
func expectedByContact(t *testing.T, obs []*spec.Observation) map[string][]string {
	t.Helper()
	m, err := mapper.New(mapper.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]mapper.State{}
	want := map[string][]string{}
	for _, o := range obs {
		out, next, err := m.Map(o, states[o.ConversationID], spec.DefaultSettings)
		if err != nil {
			continue
		}
		states[o.ConversationID] = next
		for i := range out {
			b, _ := json.Marshal(&out[i])
			want[out[i].AnonymousID] = append(want[out[i].AnonymousID], string(b))
		}
	}
	return want
}

func byContact(t *testing.T, events []json.RawMessage) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for _, e := range events {
		var m spec.Message
		if err := json.Unmarshal(e, &m); err != nil {
			t.Fatal(err)
		}
		got[m.AnonymousID] = append(got[m.AnonymousID], string(e))
	}
	return got
}

func scenarioObservations(t *testing.T, names ...string) []*spec.Observation {
	t.Helper()
	var all []*spec.Observation
	for _, n := range names {
		sc := readScenario(t, filepath.Join("testdata", "scenarios", n+".json"))
		for _, o := range sc.Observations {
			fillConversation(o)
			all = append(all, o)
		}
	}
	return all
}

func compareByContact(t *testing.T, want, got map[string][]string) {
	t.Helper()
	for who, w := range want {
		g := got[who]
		if len(g) != len(w) {
			t.Errorf("%s: %d messages on CHATTAP_EVENTS, want %d", who, len(g), len(w))
			continue
		}
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("%s: message %d\n got %s\nwant %s", who, i, g[i], w[i])
			}
		}
	}
	for who := range got {
		if _, ok := want[who]; !ok {
			t.Errorf("unexpected messages for %s: %v", who, got[who])
		}
	}
}

func TestRunnerPublishesWhatMapMakes(t *testing.T) {
	s := brokertest.Start(t)
	obs := scenarioObservations(t, "chatbot_conversation", "channel_conversation", "addon_chat_meta", "addon_not_a_session")
	_, reg := startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 4})
	publishRaw(t, s.JS, obs, nil)
	waitMapped(t, s.JS)
	compareByContact(t, expectedByContact(t, obs), byContact(t, eventsOnStream(t, s.JS)))
	if n := reg.Gather("chattap_mapper_observations_total", map[string]string{"result": metrics.MapperUnmappable}); n != 4 {
		t.Errorf("unmappable observations counted: %v, want 4", n)
	}
}

// TestRunnerRedeliveryAndReplay maps a conversation, then has every
// Observation delivered again three ways: redelivered from scratch by a
// new consumer (state already written), replayed under new Nats-Msg-Ids
// (beyond RAW's duplicate window), and replayed after the conversation
// state was lost (the messages come again with the same messageIds and
// CHATTAP_EVENTS drops them). None may add or change a message.
func TestRunnerRedeliveryAndReplay(t *testing.T) {
	s := brokertest.Start(t)
	obs := scenarioObservations(t, "chatbot_conversation", "addon_chat_session")
	r, _ := startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 2})
	publishRaw(t, s.JS, obs, nil)
	waitMapped(t, s.JS)
	first := eventsOnStream(t, s.JS)
	if len(first) == 0 {
		t.Fatal("nothing mapped")
	}
	assertUnchanged := func(step string) {
		t.Helper()
		got := eventsOnStream(t, s.JS)
		if len(got) != len(first) {
			t.Fatalf("%s: %d events, had %d", step, len(got), len(first))
		}
		for i := range got {
			if string(got[i]) != string(first[i]) {
				t.Fatalf("%s: event %d changed", step, i)
			}
		}
	}

	ctx := t.Context()
	stop, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.Stop(stop); err != nil {
		t.Fatal(err)
	}
	if err := s.JS.DeleteConsumer(ctx, spec.StreamRaw, spec.ConsumerMapper); err != nil {
		t.Fatal(err)
	}
	startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 3})
	waitMapped(t, s.JS)
	assertUnchanged("redelivery of every observation")

	publishRaw(t, s.JS, obs, func(o *spec.Observation) string { return "replay-" + o.ID })
	waitMapped(t, s.JS)
	assertUnchanged("replay beyond the raw duplicate window")

	kv, err := s.JS.KeyValue(ctx, spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range obs {
		if o.ConversationID != "" {
			_ = kv.Purge(ctx, mapper.StateKey(o.ConversationID))
		}
	}
	publishRaw(t, s.JS, obs, func(o *spec.Observation) string { return "lost-state-" + o.ID })
	waitMapped(t, s.JS)
	assertUnchanged("replay after the state was lost, within the events duplicate window")
}

// TestTwoRunnersNeverStartTwice runs two replicas on one durable consumer,
// each on its own connection, over many short conversations whose
// Observations arrive at once, and counts Started per conversation.
func TestTwoRunnersNeverStartTwice(t *testing.T) {
	s := brokertest.Start(t)
	for range 2 {
		nc, err := s.Connect("replica")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		startRunner(t, js, nil, mapper.RunnerOptions{Workers: 8})
	}
	const conversations, perConversation = 40, 6
	var obs []*spec.Observation
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i := range perConversation {
		for c := range conversations {
			cid := fmt.Sprintf("chatbot::1:%032x", c)
			body := fmt.Sprintf(`{"info":{"cid":%q,"contact":{"id":%d}},"packet":{"name":"message","payload":{"body":"message %d"}}}`, cid, c, i)
			obs = append(obs, &spec.Observation{V: 1, ID: fmt.Sprintf("obs-%d-%d", c, i), Source: spec.SourceChatbotWebhook, Kind: "message",
				ReceivedAt: at.Add(time.Duration(i) * time.Second), ConversationID: cid, Status: 200, Payload: json.RawMessage(body)})
		}
	}
	var wg sync.WaitGroup
	for part := range 4 {
		wg.Go(func() {
			for i := part; i < len(obs); i += 4 {
				publishRaw(t, s.JS, obs[i:i+1], nil)
			}
		})
	}
	wg.Wait()
	waitMapped(t, s.JS)
	started, sent := map[string]int{}, map[string]int{}
	for _, e := range eventsOnStream(t, s.JS) {
		var m spec.Message
		if err := json.Unmarshal(e, &m); err != nil {
			t.Fatal(err)
		}
		cid, _ := m.Properties[spec.PropConversationID].(string)
		switch m.Event {
		case spec.EventConversationStarted:
			started[cid]++
		case spec.EventMessageSent:
			sent[cid]++
		}
	}
	for c := range conversations {
		cid := fmt.Sprintf("chatbot::1:%032x", c)
		if started[cid] != 1 || sent[cid] != perConversation {
			t.Errorf("%s: %d Started, %d Sent; want 1 and %d", cid, started[cid], sent[cid], perConversation)
		}
	}
}

func TestRunnerRecordOffAcksAndEmitsNothing(t *testing.T) {
	s := brokertest.Start(t)
	off := func() spec.Settings { return spec.Settings{RecordLiveChatEvents: false} }
	_, reg := startRunner(t, s.JS, off, mapper.RunnerOptions{})
	obs := scenarioObservations(t, "chatbot_conversation")
	publishRaw(t, s.JS, obs, nil)
	waitMapped(t, s.JS)
	if got := eventsOnStream(t, s.JS); len(got) != 0 {
		t.Errorf("recording off, yet %d events", len(got))
	}
	if n := reg.Gather("chattap_mapper_observations_total", map[string]string{"result": metrics.MapperRecordOff}); int(n) != len(obs) {
		t.Errorf("record_off counted %v, want %d", n, len(obs))
	}
}

// TestRunnerNaksWhileEventsAreUnavailable removes CHATTAP_EVENTS, so every
// publish fails, and brings it back: the Observation must be naked, not
// acked, and mapped once the stream is back.
func TestRunnerNaksWhileEventsAreUnavailable(t *testing.T) {
	s := brokertest.Start(t)
	ctx := t.Context()
	if err := s.JS.DeleteStream(ctx, spec.StreamEvents); err != nil {
		t.Fatal(err)
	}
	_, reg := startRunner(t, s.JS, nil, mapper.RunnerOptions{PublishTimeout: 500 * time.Millisecond})
	obs := scenarioObservations(t, "chatbot_conversation")[:2]
	publishRaw(t, s.JS, obs, nil)
	deadline := time.Now().Add(10 * time.Second)
	for reg.Gather("chattap_mapper_observations_total", map[string]string{"result": metrics.MapperRetry}) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no nak while CHATTAP_EVENTS is missing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := broker.Ensure(ctx, s.JS, broker.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	waitMapped(t, s.JS)
	got := eventsOnStream(t, s.JS)
	var names []string
	for _, e := range got {
		var m spec.Message
		_ = json.Unmarshal(e, &m)
		names = append(names, m.Type+":"+m.Event)
	}
	// A publish that failed half way may have stored some of the
	// messages; the retry adds the rest, so the set is exact but not
	// necessarily its order.
	slices.Sort(names)
	want := "identify:,track:Live Chat Conversation Started,track:Live Chat Message Sent"
	if strings.Join(names, ",") != want {
		t.Errorf("after recovery: %s\nwant %s", strings.Join(names, ","), want)
	}
}

// TestConsumerConfigOnExternalServer declares the runner's consumer on the
// machine's own nats-server (2.9 here), on a stream of the test's own so
// that other tests sharing that server are not disturbed.
func TestConsumerConfigOnExternalServer(t *testing.T) {
	url := brokertest.ExternalURL(t)
	nc, err := broker.Connect(url, "chattap-mapper-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("MAPPER_TEST_%d", time.Now().UnixNano())
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name) + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	for range 2 {
		if _, err := js.CreateOrUpdateConsumer(ctx, name, mapper.RunnerOptions{}.ConsumerConfig()); err != nil {
			t.Fatalf("consumer on server %s: %v", nc.ConnectedServerVersion(), err)
		}
	}
}

func TestRunnerStopIsIdempotent(t *testing.T) {
	s := brokertest.Start(t)
	m, err := mapper.New(mapper.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := mapper.NewRunner(s.JS, m, nil, nil, nil, mapper.RunnerOptions{})
	if err := r.Stop(t.Context()); err != nil {
		t.Fatalf("stop before start: %v", err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
	for range 2 {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		if err := r.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		cancel()
	}
}
