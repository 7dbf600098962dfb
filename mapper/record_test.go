package mapper_test

import (
	"fmt"
	"testing"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRunnerSplitsRecords stores the scenarios as version 2 records of up
// to four events each, beside version 1 Observations on the same stream:
// every event of a record is mapped, in order, as the pure Mapper maps
// the Observations spec.ReadRaw reads from it; every record is acked; and
// the same records replayed under other Nats-Msg-Ids change nothing, as
// their Observation ids are derived from the record's.
func TestRunnerSplitsRecords(t *testing.T) {
	s := brokertest.Start(t)
	obs := scenarioObservations(t, "chatbot_conversation", "chatbot_replies_and_api", "channel_conversation", "addon_chat_session")
	var records []*spec.Record
	var split []*spec.Observation
	for i := 0; i < len(obs); i += 4 {
		chunk := obs[i:min(i+4, len(obs))]
		rec := spec.NewRecord(fmt.Sprintf("rec-%d", i), chunk[0].ReceivedAt, 200, chunk)
		records = append(records, rec)
		read, err := spec.ReadRaw(rec.AppendJSON(nil))
		if err != nil {
			t.Fatal(err)
		}
		for j := range read {
			split = append(split, &read[j])
		}
	}
	v1 := scenarioObservations(t, "addon_chat_meta")
	_, reg := startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 4})
	publish := func(prefix string) {
		for _, rec := range records {
			if _, err := s.JS.Publish(t.Context(), rec.Subject(), rec.AppendJSON(nil), jetstream.WithMsgID(prefix+rec.ID)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("")
	publishRaw(t, s.JS, v1, nil)
	waitMapped(t, s.JS)
	events := eventsOnStream(t, s.JS)
	compareByContact(t, expectedByContact(t, append(split, v1...)), byContact(t, events))
	if n := reg.Gather("chattap_mapper_observations_total", nil); n != float64(len(split)+len(v1)) {
		t.Errorf("%v observations counted, want %d", n, len(split)+len(v1))
	}

	publish("replay-")
	waitMapped(t, s.JS)
	if again := eventsOnStream(t, s.JS); len(again) != len(events) {
		t.Errorf("replayed records added %d events", len(again)-len(events))
	}
}
