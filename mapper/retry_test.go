package mapper_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
)

// TestFailedRecordIsRetriedInPlace makes one chosen record fail: its
// event is larger than CHATTAP_EVENTS takes (a publish failure), or the
// state bucket refuses every write for a while (a bucket failure). While
// it fails, nothing later of its conversation may be mapped; once the
// stream or bucket takes it again, every conversation has exactly the
// events of mapping in order: no event twice, none after Ended that does
// not belong there.
func TestFailedRecordIsRetriedInPlace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream func() string
	}{
		{"publish", func() string { return spec.StreamEvents }},
		{"bucket", func() string { return "KV_" + spec.BucketConversations }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := brokertest.Start(t)
			ctx := t.Context()
			obs := workload(30)
			// The chosen record: the operator's first answer in the
			// first Custom Channel conversation, made long.
			chosen := obs[30]
			if chosen.ID != "w-0-1" {
				t.Fatalf("chosen record is %s", chosen.ID)
			}
			long := strings.Repeat("long answer ", 400)
			chosen.Payload = json.RawMessage(fmt.Sprintf(`{"contact_id":"c0@example.org","message":{"body":%q,"event":"message"},"operator_name":"Op","operator_id":7}`, long))

			st, err := s.JS.Stream(ctx, tc.stream())
			if err != nil {
				t.Fatal(err)
			}
			cfg := st.CachedInfo().Config
			limit := cfg
			limit.MaxMsgSize = 2048
			if tc.name == "bucket" {
				limit.MaxMsgSize = 16
			}
			if _, err := s.JS.UpdateStream(ctx, limit); err != nil {
				t.Fatal(err)
			}
			_, reg := startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 4, PublishTimeout: time.Second})
			publishRaw(t, s.JS, obs, nil)
			waitFor(t, 10*time.Second, func() bool {
				return reg.Gather("chattap_mapper_observations_total", map[string]string{"result": metrics.MapperRetry}) >= 2
			})
			// (A failed state write comes after its group's messages
			// were published, so only a publish failure leaves nothing
			// of the conversation after the chosen record.)
			for _, m := range messagesOnStream(t, s.JS) {
				if tc.name == "publish" && m.AnonymousID != "" && strings.HasPrefix(fmt.Sprint(m.Properties[spec.PropConversationID]), "channel::c0@example.org") &&
					(m.Event == spec.EventConversationEnded || m.Event == spec.EventMessageReceived) {
					t.Errorf("while its answer fails, the conversation went on: %s %s", m.Event, m.MessageID)
				}
			}
			if _, err := s.JS.UpdateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			waitMapped(t, s.JS)
			checkExact(t, s.JS, obs)
			t.Logf("%v retries", reg.Gather("chattap_mapper_observations_total", map[string]string{"result": metrics.MapperRetry}))
		})
	}
}

// TestReturningContactAfterTTL lets a Custom Channel conversation end and
// its State expire; the contact's next message must open a conversation
// of its own, whose Started is stored (not dropped as a duplicate of the
// first one's).
func TestReturningContactAfterTTL(t *testing.T) {
	s := brokertest.StartIn(t, t.TempDir(), brokerOptionsTTL(time.Second))
	startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 2})
	obs := workload(1)
	first := obs[:3] // hi, hello, ended
	publishRaw(t, s.JS, first, nil)
	waitMapped(t, s.JS)
	kv, err := s.JS.KeyValue(t.Context(), spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	key := mapper.StateKey(first[0].ConversationID)
	waitFor(t, 10*time.Second, func() bool {
		_, err := kv.Get(t.Context(), key)
		return err != nil
	})
	back := *obs[3]
	back.ReceivedAt = back.ReceivedAt.Add(time.Hour)
	publishRaw(t, s.JS, []*spec.Observation{&back}, nil)
	waitMapped(t, s.JS)
	var starts []spec.Message
	for _, m := range messagesOnStream(t, s.JS) {
		if m.Event == spec.EventConversationStarted {
			starts = append(starts, m)
		}
	}
	if len(starts) != 2 {
		t.Fatalf("%d Started stored, want 2 (the first conversation's and the returning contact's)", len(starts))
	}
	a, b := starts[0], starts[1]
	if a.MessageID == b.MessageID || a.Properties[spec.PropConversationID] == b.Properties[spec.PropConversationID] {
		t.Errorf("the returning contact's conversation shares the first one's identity: %s %v, %s %v", a.MessageID, a.Properties[spec.PropConversationID], b.MessageID, b.Properties[spec.PropConversationID])
	}
	if !b.Timestamp.Equal(back.ReceivedAt) {
		t.Errorf("second Started at %v, want %v", b.Timestamp, back.ReceivedAt)
	}
}

func brokerOptionsTTL(ttl time.Duration) broker.StreamOptions {
	return broker.StreamOptions{ConversationTTL: ttl}
}
