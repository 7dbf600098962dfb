package mapper_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

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

// publishRaw stores observations on CHATTAP_RAW as ingest does, on their
// conversation's partition, with their id as Nats-Msg-Id unless msgID
// says otherwise.
func publishRaw(t testing.TB, js jetstream.JetStream, obs []*spec.Observation, msgID func(*spec.Observation) string) {
	t.Helper()
	publishOn(t, js, obs, msgID, rawSubject)
}

// rawSubject is the subject ingest publishes an Observation on.
func rawSubject(o *spec.Observation) string {
	key := o.ConversationID
	if key == "" {
		key = o.ID
	}
	return spec.RawPartitionSubject(spec.Partition(key), o.Source, o.Kind)
}

// publishOn is publishRaw on the subjects subject chooses.
func publishOn(t testing.TB, js jetstream.JetStream, obs []*spec.Observation, msgID func(*spec.Observation) string, subject func(*spec.Observation) string) {
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
		if _, err := js.Publish(t.Context(), subject(o), b, jetstream.WithMsgID(id)); err != nil {
			t.Fatalf("publish %s: %v", o.ID, err)
		}
	}
}

// waitMapped waits until the mapper's consumers have acked everything on
// CHATTAP_RAW.
func waitMapped(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !allMapped(t, js) {
		if time.Now().After(deadline) {
			t.Fatal("mapper did not finish in 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allMapped reports whether every lane consumer has acked all it has. It
// compares the highest ack floor with the stream's last sequence (that
// lane then acked everything), and wants nothing pending or unacked on
// the others: a consumer's pending count is updated asynchronously by the
// server and may read 0 just after a publish, but not for a record stored
// before one already acked.
func allMapped(t testing.TB, js jetstream.JetStream) bool {
	t.Helper()
	st, err := js.Stream(t.Context(), spec.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var floor uint64
	for _, cfg := range (mapper.RunnerOptions{}).Lanes() {
		c, err := js.Consumer(t.Context(), spec.StreamRaw, cfg.Durable)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		if err != nil || info.NumAckPending > 0 || info.NumPending > 0 {
			return false
		}
		floor = max(floor, info.AckFloor.Stream)
	}
	return floor >= si.State.LastSeq
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

// messagesOnStream is eventsOnStream, decoded.
func messagesOnStream(t *testing.T, js jetstream.JetStream) []spec.Message {
	t.Helper()
	raw := eventsOnStream(t, js)
	out := make([]spec.Message, len(raw))
	for i, e := range raw {
		if err := json.Unmarshal(e, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// expectedByContact maps the scenarios in order with the pure Mapper,
// keeping contacts across conversations as the runner does, and
// returns each anonymous user's messages of each conversation as JSON, in order (streamKey): the runner
// keeps one conversation's order but may interleave conversations.
func expectedByContact(t *testing.T, obs []*spec.Observation) map[string][]string {
	t.Helper()
	return expectedByContactAs(t, obs, "test")
}

// expectedByContactAs is expectedByContact for a mapper of this version.
func expectedByContactAs(t *testing.T, obs []*spec.Observation, version string) map[string][]string {
	t.Helper()
	m, err := mapper.New(mapper.Options{Version: version})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]mapper.State{}
	contacts := map[string]mapper.Contact{}
	want := map[string][]string{}
	for _, o := range obs {
		st := states[o.ConversationID]
		key := m.ContactKey(o, st)
		out, next, ct, ctChanged, err := m.MapContact(o, st, contacts[key], spec.DefaultSettings)
		if err != nil {
			continue
		}
		states[o.ConversationID] = next
		if ctChanged && key != "" {
			contacts[key] = ct
		}
		for i := range out {
			b, _ := json.Marshal(&out[i])
			k := streamKey(&out[i])
			want[k] = append(want[k], string(b))
		}
	}
	return want
}

// streamKey is what the runner keeps in order on CHATTAP_EVENTS: a
// contact's events of one conversation. Conversations are mapped
// concurrently, so two conversations of one contact interleave in any
// order; an identify, which names no conversation, is compared on its
// own (by messageId).
func streamKey(m *spec.Message) string {
	if m.Type == spec.TypeIdentify {
		return m.AnonymousID + " identify " + m.MessageID
	}
	cid, _ := m.Properties[spec.PropConversationID].(string)
	return m.AnonymousID + " " + cid
}

func byContact(t *testing.T, events []json.RawMessage) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for _, e := range events {
		var m spec.Message
		if err := json.Unmarshal(e, &m); err != nil {
			t.Fatal(err)
		}
		k := streamKey(&m)
		got[k] = append(got[k], string(e))
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
