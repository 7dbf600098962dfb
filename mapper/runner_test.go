package mapper_test

import (
	"context"
	"encoding/json"
	"fmt"
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

// TestRunnerKeepsContactsAcrossConversations maps one contact's
// conversations through the runner: an identify only where a
// conversation told something new of the contact, none for a second
// conversation that repeats what is known, and the Contact stored in the
// conversations bucket. One worker keeps the conversations in stream
// order, which decides which of them announces the news. The contact's
// conversations are on different partitions, which are mapped in no
// order relative to each other, so the Observations are stored on the
// legacy subjects here: one consumer, in stream order.
func TestRunnerKeepsContactsAcrossConversations(t *testing.T) {
	s := brokertest.Start(t)
	obs := scenarioObservations(t, "identify_per_contact")
	startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 1})
	publishOn(t, s.JS, obs, nil, (*spec.Observation).Subject)
	waitMapped(t, s.JS)
	compareByContact(t, expectedByContact(t, obs), byContact(t, eventsOnStream(t, s.JS)))
	identifies := 0
	for _, m := range messagesOnStream(t, s.JS) {
		if m.Type == spec.TypeIdentify {
			identifies++
		}
	}
	if identifies != 3 {
		t.Errorf("%d identifies, want 3: the first conversation, its contact_update, the new email", identifies)
	}
	kv, err := s.JS.KeyValue(t.Context(), spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(t.Context(), mapper.ContactStateKey("userlike-contact:48213"))
	if err != nil {
		t.Fatalf("contact state: %v", err)
	}
	ct, err := mapper.DecodeContact(entry.Value())
	if err != nil {
		t.Fatal(err)
	}
	if ct.UserID != "CRM-00042" || ct.Traits[spec.TraitEmail] != "maria.weber@example.org" || ct.Traits[spec.TraitName] != "Maria Schmidt-Weber" {
		t.Errorf("stored contact %+v", ct)
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
	for _, cfg := range (mapper.RunnerOptions{}).Lanes() {
		if err := s.JS.DeleteConsumer(ctx, spec.StreamRaw, cfg.Durable); err != nil {
			t.Fatal(err)
		}
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
	for _, m := range messagesOnStream(t, s.JS) {
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

// TestRunnerRetriesWhileEventsAreUnavailable removes CHATTAP_EVENTS, so every
// publish fails, and brings it back: the Observation must be retried in
// place, not acked, and mapped once the stream is back.
func TestRunnerRetriesWhileEventsAreUnavailable(t *testing.T) {
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

// TestLanesOnExternalServer declares the runner's consumers (pinned
// priority groups, nats-server 2.11 and later) on a separate nats-server,
// on a stream of the test's own so that other tests sharing that server
// are not disturbed.
func TestLanesOnExternalServer(t *testing.T) {
	url := brokertest.ExternalURL(t)
	nc, js := brokertest.Connect(t, url)
	name := fmt.Sprintf("MAPPER_TEST_%d", time.Now().UnixNano())
	prefix := strings.ToLower(name) + "."
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ">"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	for range 2 {
		for _, cfg := range (mapper.RunnerOptions{}).Lanes() {
			cfg.FilterSubject = strings.Replace(cfg.FilterSubject, spec.SubjectRawPrefix, prefix, 1)
			for i := range cfg.FilterSubjects {
				cfg.FilterSubjects[i] = strings.Replace(cfg.FilterSubjects[i], spec.SubjectRawPrefix, prefix, 1)
			}
			c, err := js.CreateOrUpdateConsumer(ctx, name, cfg)
			if err != nil {
				t.Fatalf("consumer %s on server %s: %v", cfg.Durable, nc.ConnectedServerVersion(), err)
			}
			if got := c.CachedInfo().Config; got.PriorityPolicy != jetstream.PriorityPolicyPinned || got.PinnedTTL != cfg.PinnedTTL {
				t.Fatalf("consumer %s: priority policy %v, pinned TTL %v; want pinned, %v", cfg.Durable, got.PriorityPolicy, got.PinnedTTL, cfg.PinnedTTL)
			}
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
