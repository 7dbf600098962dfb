package mapper_test

import (
	"encoding/json"
	"testing"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
)

// TestRunnerNamesTheRecordOfEachEvent reads spec.HeaderRecord back from
// every event on CHATTAP_EVENTS: it must be the id of the Observation the
// event was mapped from, which is what links the two in the debugger.
func TestRunnerNamesTheRecordOfEachEvent(t *testing.T) {
	s := brokertest.Start(t)
	obs := scenarioObservations(t, "chatbot_conversation", "channel_conversation")
	startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 2})
	publishRaw(t, s.JS, obs, nil)
	waitMapped(t, s.JS)

	// What each Observation yields on its own, keyed by messageId.
	m, err := mapper.New(mapper.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	from := map[string]string{}
	states := map[string]mapper.State{}
	for _, o := range obs {
		out, next, err := m.Map(o, states[o.ConversationID], spec.DefaultSettings)
		if err != nil {
			continue
		}
		states[o.ConversationID] = next
		for _, msg := range out {
			from[msg.MessageID] = o.ID
		}
	}

	st, err := s.JS.Stream(t.Context(), spec.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs == 0 {
		t.Fatal("nothing mapped")
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		var msg spec.Message
		if err := json.Unmarshal(raw.Data, &msg); err != nil {
			t.Fatal(err)
		}
		got, want := raw.Header.Get(spec.HeaderRecord), from[msg.MessageID]
		if want == "" {
			t.Fatalf("event %d (%s) is not one the scenarios map to", seq, msg.MessageID)
		}
		if got != want {
			t.Errorf("event %d (%s %s): %s %q, want %q", seq, msg.Type, msg.Event, spec.HeaderRecord, got, want)
		}
	}
}
