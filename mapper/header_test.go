package mapper_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRunnerNamesTheRecordOfEachEvent reads spec.HeaderRecord back from
// every event on CHATTAP_EVENTS: it must be the id of the CHATTAP_RAW
// message the event was mapped from (a version 2 record's exchange id, a
// version 1 Observation's own id), which is what links the two in the
// debugger.
func TestRunnerNamesTheRecordOfEachEvent(t *testing.T) {
	s := brokertest.Start(t)
	chat := scenarioObservations(t, "chatbot_conversation")
	v1 := scenarioObservations(t, "channel_conversation")
	startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 2})

	// Which record each Observation is read from, and so each message.
	var mapped []*spec.Observation
	for i := 0; i < len(chat); i += 3 {
		rec := spec.NewRecord(fmt.Sprintf("exchange-%d", i), chat[i].ReceivedAt, 200, chat[i:min(i+3, len(chat))])
		if _, err := s.JS.Publish(t.Context(), rec.Subject(), rec.AppendJSON(nil), jetstream.WithMsgID(rec.ID)); err != nil {
			t.Fatal(err)
		}
		read, err := spec.ReadRaw(rec.AppendJSON(nil))
		if err != nil {
			t.Fatal(err)
		}
		for j := range read {
			mapped = append(mapped, &read[j])
		}
	}
	publishRaw(t, s.JS, v1, nil)
	waitMapped(t, s.JS)

	m, err := mapper.New(mapper.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	from := map[string]string{}
	states := map[string]mapper.State{}
	for _, o := range append(mapped, v1...) {
		out, next, err := m.Map(o, states[o.ConversationID], spec.DefaultSettings)
		if err != nil {
			continue
		}
		states[o.ConversationID] = next
		record := o.Record
		if record == "" { // a version 1 Observation is its own record
			record = o.ID
		}
		for _, msg := range out {
			from[msg.MessageID] = record
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
	seen := map[string]bool{}
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
		seen[strings.SplitN(got, "-", 2)[0]] = true
	}
	if !seen["exchange"] || len(seen) < 2 {
		t.Errorf("events came from %v: want both version 2 records and version 1 Observations", seen)
	}
}
