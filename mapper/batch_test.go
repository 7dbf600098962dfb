package mapper_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// botMessage is a chatbot webhook message of conversation c.
func botMessage(c, i int, at time.Time) *spec.Observation {
	cid := fmt.Sprintf("chatbot::1:%032x", c)
	body := fmt.Sprintf(`{"info":{"cid":%q,"contact":{"id":%d}},"packet":{"name":"message","payload":{"body":"message %d"}}}`, cid, c, i)
	return &spec.Observation{V: 1, ID: fmt.Sprintf("obs-%d-%d", c, i), Source: spec.SourceChatbotWebhook, Kind: "message",
		ReceivedAt: at.Add(time.Duration(i) * time.Second), ConversationID: cid, Status: 200, Payload: json.RawMessage(body)}
}

// TestRunnerBatchesAConversation has a backlog waiting when the runner
// starts, so each worker takes many Observations of one conversation at
// once: the messages must be exactly those of mapping them one by one, in
// order, and the State must have been written fewer times than there are
// Observations (else nothing was batched and this test proves nothing).
func TestRunnerBatchesAConversation(t *testing.T) {
	s := brokertest.Start(t)
	obs := scenarioObservations(t, "chatbot_conversation", "channel_conversation", "addon_chat_session", "chatbot_replies_and_api")
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i := range 40 {
		obs = append(obs, botMessage(1, i, at))
	}
	publishRaw(t, s.JS, obs, nil)
	startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 2})
	waitMapped(t, s.JS)
	compareByContact(t, expectedByContact(t, obs), byContact(t, eventsOnStream(t, s.JS)))

	st, err := s.JS.Stream(t.Context(), "KV_"+spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if writes := info.State.LastSeq; writes == 0 || writes >= uint64(len(obs))/2 {
		t.Errorf("%d state writes for %d observations: not batched", writes, len(obs))
	}
}

// TestRunnerReadsStateWrittenElsewhere changes a conversation's State in
// the bucket behind the runner's back, as another replica would, between
// two Observations: the second must be mapped on the bucket's State, not
// on the one the runner wrote and remembers.
func TestRunnerReadsStateWrittenElsewhere(t *testing.T) {
	s := brokertest.Start(t)
	startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 1})
	const cid = "chatbot::1:cafe"
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	webhook := func(id, packet string) *spec.Observation {
		return &spec.Observation{V: 1, ID: id, Source: spec.SourceChatbotWebhook, Kind: "message", ReceivedAt: at, ConversationID: cid, Status: 200,
			Payload: json.RawMessage(`{"info":{"cid":"` + cid + `","contact":{"id":7}},"packet":` + packet + `}`)}
	}
	reply := &spec.Observation{V: 1, ID: "reply", Source: spec.SourceChatbotReply, Kind: "bubbles", ReceivedAt: at, ConversationID: cid, Status: 200,
		Payload: json.RawMessage(`{"packet":{"name":"bubbles","payload":{"body":"Choose","options":[{"label":"Old one"},{"label":"Old two"}]}}}`)}
	publishRaw(t, s.JS, []*spec.Observation{webhook("hello", `{"name":"message","payload":{"body":"hi"}}`), reply}, nil)
	waitMapped(t, s.JS)

	ctx := t.Context()
	kv, err := s.JS.KeyValue(ctx, spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, mapper.StateKey(cid))
	if err != nil {
		t.Fatal(err)
	}
	st, err := mapper.DecodeState(e.Value())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Options) != 2 || st.Options[1] != "Old two" {
		t.Fatalf("stored options %q", st.Options)
	}
	st.Options = []string{"New one", "New two"}
	b, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, mapper.StateKey(cid), b, e.Revision()); err != nil {
		t.Fatal(err)
	}

	publishRaw(t, s.JS, []*spec.Observation{webhook("click", `{"name":"click","payload":{"option":2}}`)}, nil)
	waitMapped(t, s.JS)
	var bodies []string
	for _, m := range messagesOnStream(t, s.JS) {
		if m.MessageID == "click-ev" {
			body, _ := m.Properties[spec.PropMessageBody].(string)
			bodies = append(bodies, body)
		}
	}
	if len(bodies) != 1 || bodies[0] != "New two" {
		t.Errorf("click mapped to %q, want [\"New two\"]: the runner mapped on a State the bucket no longer holds", bodies)
	}
}

// TestTwoRunnersInterleaveOnFewConversations gives two replicas a backlog
// of few conversations with many Observations each, in short batches.
// Before partitions were pinned both took Observations of the same
// conversation at once and lost compare-and-set races; now one replica
// owns each partition, so there must be no race at all, and every message
// must be on CHATTAP_EVENTS exactly once and every conversation started
// once.
func TestTwoRunnersInterleaveOnFewConversations(t *testing.T) {
	s := brokertest.Start(t)
	const conversations, perConversation = 3, 80
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	var obs []*spec.Observation
	for i := range perConversation {
		for c := range conversations {
			obs = append(obs, botMessage(c, i, at))
		}
	}
	var regs []*metrics.Registry
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
		// Few workers and a small ack window: each replica takes short
		// batches, so both keep coming back to the same conversations.
		_, reg := startRunner(t, js, nil, mapper.RunnerOptions{Workers: 1, MaxAckPending: 8})
		regs = append(regs, reg)
	}
	// Both replicas are waiting before the first Observation is stored.
	for _, o := range obs {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.JS.PublishAsync(rawSubject(o), b, jetstream.WithMsgID(o.ID)); err != nil {
			t.Fatal(err)
		}
	}
	<-s.JS.PublishAsyncComplete()
	waitMapped(t, s.JS)

	started, sent := map[string]int{}, map[string]int{}
	for _, m := range messagesOnStream(t, s.JS) {
		cid, _ := m.Properties[spec.PropConversationID].(string)
		switch m.Event {
		case spec.EventConversationStarted:
			started[cid]++
		case spec.EventMessageSent:
			body, _ := m.Properties[spec.PropMessageBody].(string)
			sent[cid+"|"+body]++
		}
	}
	for c := range conversations {
		cid := fmt.Sprintf("chatbot::1:%032x", c)
		if started[cid] != 1 {
			t.Errorf("%s: %d Started, want 1", cid, started[cid])
		}
		for i := range perConversation {
			if n := sent[fmt.Sprintf("%s|message %d", cid, i)]; n != 1 {
				t.Errorf("%s: message %d sent %d times, want once", cid, i, n)
			}
		}
	}
	// JetStream drops a second Started or Sent by its messageId, so the
	// stream alone would hide a lost compare-and-set: the stored State must
	// hold every Observation and every message exactly once.
	kv, err := s.JS.KeyValue(t.Context(), spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	for c := range conversations {
		cid := fmt.Sprintf("chatbot::1:%032x", c)
		e, err := kv.Get(t.Context(), mapper.StateKey(cid))
		if err != nil {
			t.Fatal(err)
		}
		st, err := mapper.DecodeState(e.Value())
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Applied) != perConversation || len(st.Seen) != perConversation {
			t.Errorf("%s: state holds %d observations and %d messages, want %d of each", cid, len(st.Applied), len(st.Seen), perConversation)
		}
		for i := range perConversation {
			if id := fmt.Sprintf("obs-%d-%d", c, i); !st.HasApplied(id) {
				t.Errorf("%s: %s missing from the state", cid, id)
			}
		}
	}
	var conflicts, mapped float64
	for _, reg := range regs {
		conflicts += reg.Gather("chattap_mapper_state_conflicts_total", nil)
		mapped += reg.Gather("chattap_mapper_observations_total", map[string]string{"result": metrics.MapperMapped})
	}
	t.Logf("%v compare-and-set conflicts, %v observations mapped", conflicts, mapped)
	if conflicts != 0 {
		t.Errorf("%v compare-and-set conflicts: two replicas mapped one partition at once", conflicts)
	}
	if mapped != conversations*perConversation {
		t.Errorf("%v observations mapped, want %d", mapped, conversations*perConversation)
	}
}

// TestWriteAfterPurgeIsNoConflict: a purged conversation's key holds a
// marker; the next write must go over it without being counted, and
// without the re-map and re-publish a conflict costs.
func TestWriteAfterPurgeIsNoConflict(t *testing.T) {
	s := brokertest.Start(t)
	_, reg := startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 1})
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	publishRaw(t, s.JS, []*spec.Observation{botMessage(1, 0, at)}, nil)
	waitMapped(t, s.JS)
	kv, err := s.JS.KeyValue(t.Context(), spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	key := mapper.StateKey(botMessage(1, 0, at).ConversationID)
	if err := kv.Purge(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	publishRaw(t, s.JS, []*spec.Observation{botMessage(1, 1, at.Add(time.Second))}, nil)
	waitMapped(t, s.JS)
	if n := reg.Gather("chattap_mapper_state_conflicts_total", nil); n != 0 {
		t.Errorf("%v state conflicts counted after a purge, want 0", n)
	}
	entry, err := kv.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("state after the write over the purge marker: %v", err)
	}
	st, err := mapper.DecodeState(entry.Value())
	if err != nil || !st.Started {
		t.Errorf("state %+v (%v), want the conversation written again", st, err)
	}
}
