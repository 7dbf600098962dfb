package mapper_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// botExchange is a contact's webhook and the bot's reply events, as
// Observations of one exchange in conversation cid.
func botExchange(cid, id string, at time.Time, start bool, body string, replies ...string) []*spec.Observation {
	name, payload := "message", `{"body":"`+body+`"}`
	if start {
		name, payload = "start", `{}`
	}
	out := []*spec.Observation{{
		V: 1, ID: id, Source: spec.SourceChatbotWebhook, Kind: name, ReceivedAt: at, ConversationID: cid,
		Exchange: id, Status: 200,
		Payload: json.RawMessage(`{"info":{"cid":"` + cid + `","contact":{"name":"Ada ` + cid + `"}},"packet":{"name":"` + name + `","payload":` + payload + `}}`),
	}}
	for i, r := range replies {
		kind, p := "message", `{"body":"`+r+`"}`
		if r == "end" {
			kind, p = "end", `{}`
		}
		out = append(out, &spec.Observation{
			V: 1, ID: fmt.Sprintf("%s-r%d", id, i+1), Source: spec.SourceChatbotReply, Kind: kind,
			ReceivedAt: at.Add(time.Duration(i+1) * time.Millisecond), ConversationID: cid, Exchange: id, Index: i + 1, Status: 200,
			Payload: json.RawMessage(`{"packet":{"name":"` + kind + `","payload":` + p + `}}`),
		})
	}
	return out
}

// twoConversations is a bot conversation "c-a" that starts, asks and ends,
// and a shorter "c-b", interleaved on CHATTAP_RAW.
func twoConversations() [][]*spec.Observation {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	return [][]*spec.Observation{
		botExchange("c-a", "a1", t0, true, "", "Hi, I am the bot."),
		botExchange("c-b", "b1", t0.Add(time.Second), false, "Hello?", "Hello!"),
		botExchange("c-a", "a2", t0.Add(2*time.Second), false, "My balance?", "It is 42."),
		botExchange("c-a", "a3", t0.Add(90*time.Second), false, "Thanks", "end"),
		botExchange("c-b", "b2", t0.Add(100*time.Second), false, "Bye", "end"),
	}
}

func flatten(ex [][]*spec.Observation) []*spec.Observation {
	var out []*spec.Observation
	for _, e := range ex {
		out = append(out, e...)
	}
	return out
}

// mapAll is what the conversations yield when every Observation is mapped
// with recording on, in order, as messageIds in stream order.
func mapAll(t *testing.T, obs []*spec.Observation) []string {
	t.Helper()
	var ids []string
	for _, msgs := range expectedByContact(t, obs) {
		for _, m := range msgs {
			var msg spec.Message
			if err := json.Unmarshal([]byte(m), &msg); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, msg.MessageID)
		}
	}
	slices.Sort(ids)
	return ids
}

func idsOnEvents(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	var ids []string
	for _, m := range messagesOnStream(t, js) {
		ids = append(ids, m.MessageID)
	}
	slices.Sort(ids)
	return ids
}

// bucketSnapshot is every key of chattap_conversations with its revision
// and value, byte for byte.
func bucketSnapshot(t *testing.T, js jetstream.JetStream) map[string]string {
	t.Helper()
	kv, err := js.KeyValue(t.Context(), spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	snap := map[string]string{}
	for k := range keys.Keys() {
		e, err := kv.Get(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		snap[k] = fmt.Sprintf("%d:%s", e.Revision(), e.Value())
	}
	return snap
}

func newMapper(t *testing.T) *mapper.Mapper {
	t.Helper()
	m, err := mapper.New(mapper.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRemapDeliversWhatRecordingOffMissedOnce maps two conversations live
// with recording off for their first exchanges, then remaps everything:
// CHATTAP_EVENTS gains exactly the events the conversations would have had
// with recording on that it lacked, each once (what the live mapping made
// instead, such as an identify at the first exchange mapped, stays), and a
// second remap adds nothing. The running mapper's conversation bucket
// stays byte-identical.
func TestRemapDeliversWhatRecordingOffMissedOnce(t *testing.T) {
	s := brokertest.Start(t)
	var record atomic.Bool
	startRunner(t, s.JS, func() spec.Settings { return spec.Settings{RecordLiveChatEvents: record.Load()} }, mapper.RunnerOptions{Workers: 2})
	ex := twoConversations()
	publishRaw(t, s.JS, flatten(ex[:3]), nil)
	waitMapped(t, s.JS)
	record.Store(true)
	publishRaw(t, s.JS, flatten(ex[3:]), nil)
	waitMapped(t, s.JS)

	live := idsOnEvents(t, s.JS)
	want := mapAll(t, flatten(ex))
	if len(live) == 0 || len(live) >= len(want) {
		t.Fatalf("live mapping made %d events of the %d recording on would: the test needs some, not all", len(live), len(want))
	}
	before := bucketSnapshot(t, s.JS)
	conversations := 0
	for k := range before {
		if strings.HasPrefix(k, "c.") {
			conversations++
		}
	}
	if conversations != 2 {
		t.Fatalf("bucket holds %d conversations, want 2: %v", conversations, before)
	}

	var missing, union []string
	for _, id := range want {
		if !slices.Contains(live, id) {
			missing = append(missing, id)
		}
	}
	union = append(append(union, live...), missing...)
	slices.Sort(union)

	res, err := mapper.Remap(t.Context(), s.JS, newMapper(t), spec.DefaultSettings, mapper.RemapRange{FromSeq: 1}, mapper.RemapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOnEvents(t, s.JS); !slices.Equal(got, union) {
		t.Errorf("after remap CHATTAP_EVENTS holds\n %v\nwant each of\n %v\nonce", got, union)
	}
	res.Events = nil
	if res.Produced != len(want) || res.AlreadyOnEvents != len(want)-len(missing) || res.Published != len(missing) || res.RecordsInRange != len(flatten(ex)) || res.Conversations != 2 {
		t.Errorf("result %+v, want %d produced, %d already there, %d published, %d records", res, len(want), len(want)-len(missing), len(missing), len(flatten(ex)))
	}
	if after := bucketSnapshot(t, s.JS); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("remap changed the conversation bucket:\nbefore %v\nafter  %v", before, after)
	}

	again, err := mapper.Remap(t.Context(), s.JS, newMapper(t), spec.DefaultSettings, mapper.RemapRange{FromSeq: 1}, mapper.RemapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Published != 0 || again.Duplicates != 0 || again.AlreadyOnEvents != len(want) || len(again.Events) != 0 {
		again.Events = nil
		t.Errorf("second remap: %+v, want nothing published and all %d found", again, len(want))
	}
	if got := idsOnEvents(t, s.JS); !slices.Equal(got, union) {
		t.Errorf("after a second remap CHATTAP_EVENTS holds %v", got)
	}
}

// TestRemapRangeMapsFromTheConversationsFirstRecord selects the last
// exchange of a conversation only: its events are mapped on the State of
// everything before it (no second Started, the duration counted from the
// conversation's start), and only they are published.
func TestRemapRangeMapsFromTheConversationsFirstRecord(t *testing.T) {
	s := brokertest.Start(t)
	ex := twoConversations()
	publishRaw(t, s.JS, flatten(ex), nil)
	last := uint64(len(flatten(ex[:3])) + 1) // a3, its reply "end" and b2's exchange follow
	res, err := mapper.Remap(t.Context(), s.JS, newMapper(t), spec.DefaultSettings, mapper.RemapRange{FromSeq: last, ToSeq: last + 1}, mapper.RemapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := messagesOnStream(t, s.JS)
	var names []string
	for _, m := range got {
		names = append(names, m.Event)
	}
	if want := []string{spec.EventMessageSent, spec.EventConversationEnded}; !slices.Equal(names, want) {
		t.Fatalf("published %v, want %v", names, want)
	}
	if d := got[1].Properties[spec.PropConversationDuration]; d != float64(90) {
		t.Errorf("conversation_duration %v, want 90 (from the first record, outside the range)", d)
	}
	if got[0].MessageID != "a3-ev" || got[1].Properties[spec.PropConversationID] != "c-a" {
		t.Errorf("published %+v", got)
	}
	if res.RecordsInRange != 2 || res.Conversations != 1 || res.RecordsRead != 6 || res.Published != 2 {
		res.Events = nil
		t.Errorf("result %+v, want 2 records in range of 1 conversation, its 6 records read, 2 published", res)
	}
}

func TestRemapConversationAndDryRun(t *testing.T) {
	s := brokertest.Start(t)
	ex := twoConversations()
	publishRaw(t, s.JS, flatten(ex), nil)
	var bOnly []*spec.Observation
	for _, o := range flatten(ex) {
		if o.ConversationID == "c-b" {
			bOnly = append(bOnly, o)
		}
	}
	want := mapAll(t, bOnly)

	dry, err := mapper.Remap(t.Context(), s.JS, newMapper(t), spec.DefaultSettings, mapper.RemapRange{Conversation: "c-b"}, mapper.RemapOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOnEvents(t, s.JS); len(got) != 0 {
		t.Fatalf("a dry run published %v", got)
	}
	var dryIDs []string
	for _, e := range dry.Events {
		var m spec.Message
		if err := json.Unmarshal(e, &m); err != nil {
			t.Fatal(err)
		}
		dryIDs = append(dryIDs, m.MessageID)
	}
	slices.Sort(dryIDs)
	if !slices.Equal(dryIDs, want) || dry.Published != 0 || !dry.DryRun || dry.Conversations != 1 {
		t.Errorf("dry run: %+v with %v, want %v and nothing published", dry, dryIDs, want)
	}

	res, err := mapper.Remap(t.Context(), s.JS, newMapper(t), spec.DefaultSettings, mapper.RemapRange{Conversation: "c-b"}, mapper.RemapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOnEvents(t, s.JS); !slices.Equal(got, want) || res.Published != len(want) {
		t.Errorf("remap of c-b published %v (%+v), want %v", got, res, want)
	}
	for i, e := range eventsOnStream(t, s.JS) {
		if !bytes.Equal(e, dry.Events[i]) {
			t.Errorf("event %d differs from the dry run's:\n%s\n%s", i, e, dry.Events[i])
		}
	}

	none, err := mapper.Remap(t.Context(), s.JS, newMapper(t), spec.DefaultSettings, mapper.RemapRange{Conversation: "c-never"}, mapper.RemapOptions{})
	if err != nil || none.Conversations != 0 || none.Produced != 0 || none.RecordsRead != 0 {
		t.Errorf("remap of a conversation never recorded: %+v, %v", none, err)
	}

	// Recording off today: nothing to produce, nothing published.
	off, err := mapper.Remap(t.Context(), s.JS, newMapper(t), spec.Settings{}, mapper.RemapRange{FromSeq: 1}, mapper.RemapOptions{})
	if err != nil || off.Produced != 0 || off.Published != 0 {
		t.Errorf("remap with recording off: %+v, %v", off, err)
	}
}

// TestRemapLeavesWhatTheLiveMapperHasNotReached stops at the live
// mapper's ack floor: it will map what lies beyond itself.
func TestRemapLeavesWhatTheLiveMapperHasNotReached(t *testing.T) {
	s := brokertest.Start(t)
	publishRaw(t, s.JS, flatten(twoConversations()), nil)
	if _, err := s.JS.CreateOrUpdateConsumer(t.Context(), spec.StreamRaw, jetstream.ConsumerConfig{Durable: spec.ConsumerMapper, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	res, err := mapper.Remap(t.Context(), s.JS, newMapper(t), spec.DefaultSettings, mapper.RemapRange{FromSeq: 1}, mapper.RemapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.RecordsInRange != 0 || res.Published != 0 || res.LeftToLiveMapper != len(flatten(twoConversations())) {
		t.Errorf("remap before the live mapper acked anything: %+v", res)
	}
	one, err := mapper.Remap(t.Context(), s.JS, newMapper(t), spec.DefaultSettings, mapper.RemapRange{Conversation: "c-a"}, mapper.RemapOptions{})
	if err != nil || one.RecordsInRange != 0 || one.Published != 0 || one.LeftToLiveMapper != 6 {
		t.Errorf("remap of c-a before the live mapper acked anything: %+v, %v", one, err)
	}
	if got := idsOnEvents(t, s.JS); len(got) != 0 {
		t.Errorf("published %v", got)
	}
}

// TestRemapIsTheLiveMappingRecordingOn maps one store live with recording
// off and remaps it, and another with the same records live with
// recording on: both end with the same events, byte for byte. The two
// conversations are of one contact, whose identify the live mapper keeps
// across them, and so does remap: each sends it once. Which conversation
// carries it live depends on which the runner maps first (conversations
// are mapped concurrently; remap takes stream order), so identifies are
// compared by contact.
func TestRemapIsTheLiveMappingRecordingOn(t *testing.T) {
	obs := flatten(twoConversations())
	for _, o := range obs {
		o.Payload = json.RawMessage(strings.NewReplacer(`"contact":{"name":"Ada c-a"}`, `"contact":{"id":"48213","name":"Ada"}`,
			`"contact":{"name":"Ada c-b"}`, `"contact":{"id":"48213","name":"Ada"}`).Replace(string(o.Payload)))
	}
	mapped := func(record bool) map[string]string {
		s := brokertest.Start(t)
		startRunner(t, s.JS, func() spec.Settings { return spec.Settings{RecordLiveChatEvents: record} }, mapper.RunnerOptions{Workers: 1})
		publishRaw(t, s.JS, obs, nil)
		waitMapped(t, s.JS)
		if !record {
			if _, err := mapper.Remap(t.Context(), s.JS, newMapper(t), spec.DefaultSettings, mapper.RemapRange{FromSeq: 1}, mapper.RemapOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		out := map[string]string{}
		for _, e := range eventsOnStream(t, s.JS) {
			var m spec.Message
			if err := json.Unmarshal(e, &m); err != nil {
				t.Fatal(err)
			}
			if _, twice := out[m.MessageID]; twice {
				t.Errorf("%s is on CHATTAP_EVENTS twice", m.MessageID)
			}
			out[m.MessageID] = string(e)
		}
		return out
	}
	live, remapped := mapped(true), mapped(false)
	// The second conversation alone, on a store mapped live: its contact's
	// identify was announced by the first, which remap maps too.
	s := brokertest.Start(t)
	startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 1})
	publishRaw(t, s.JS, obs, nil)
	waitMapped(t, s.JS)
	res, err := mapper.Remap(t.Context(), s.JS, newMapper(t), spec.DefaultSettings, mapper.RemapRange{Conversation: "c-b"}, mapper.RemapOptions{})
	if err != nil || res.Produced == 0 || res.Published != 0 || res.Conversations != 1 {
		res.Events = nil
		t.Errorf("remap of c-b after c-a of the same contact, all delivered live: %+v, %v; want nothing published", res, err)
	}
	identifies := func(events map[string]string) int {
		n := 0
		for id, e := range events {
			if strings.Contains(e, `"type":"identify"`) {
				n++
				delete(events, id)
			}
		}
		return n
	}
	if l, r := identifies(live), identifies(remapped); l != 1 || r != 1 {
		t.Errorf("identifies for one contact in two conversations: %d live, %d remapped; want 1 each", l, r)
	}
	for id, e := range live {
		if remapped[id] != e {
			t.Errorf("%s\n live    %s\n remap   %s", id, e, remapped[id])
		}
	}
	for id := range remapped {
		if _, ok := live[id]; !ok {
			t.Errorf("remap made %s, the live mapping did not: %s", id, remapped[id])
		}
	}
}

// TestRemapFollowsTheLiveMappersPartitionConsumers gives CHATTAP_RAW the
// consumers of a mapper that maps by partition: a retired "mapper" that
// acked nothing, a partition's that reads none of these records, and the
// legacy one, which acked the first four. Remap selects those four.
func TestRemapFollowsTheLiveMappersPartitionConsumers(t *testing.T) {
	s := brokertest.Start(t)
	obs := flatten(twoConversations())
	publishOn(t, s.JS, obs, nil, func(o *spec.Observation) string { return o.Subject() }) // version 1's own subjects
	declare := func(name string, filters []string) jetstream.Consumer {
		t.Helper()
		c, err := s.JS.CreateOrUpdateConsumer(t.Context(), spec.StreamRaw, jetstream.ConsumerConfig{Durable: name, FilterSubjects: filters, AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	declare(spec.ConsumerMapper, nil)
	declare(spec.ConsumerMapper+"-00", []string{spec.RawPartitionFilter(0)})
	legacy := declare(spec.ConsumerMapper+"-legacy", spec.RawLegacyFilters)
	batch, err := legacy.Fetch(4, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	for msg := range batch.Messages() {
		if err := msg.DoubleAck(t.Context()); err != nil {
			t.Fatal(err)
		}
		acked++
	}
	if acked != 4 {
		t.Fatalf("acked %d records, want 4", acked)
	}
	res, err := mapper.Remap(t.Context(), s.JS, newMapper(t), spec.DefaultSettings, mapper.RemapRange{FromSeq: 1}, mapper.RemapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.RecordsInRange != 4 || res.LeftToLiveMapper != len(obs)-4 || res.Conversations != 2 {
		res.Events = nil
		t.Errorf("remap: %+v, want the 4 records the legacy consumer acked, %d left to it", res, len(obs)-4)
	}
	want := mapAll(t, obs[:4])
	if got := idsOnEvents(t, s.JS); !slices.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
}

func TestRemapRangeValidate(t *testing.T) {
	now := time.Now()
	for name, r := range map[string]mapper.RemapRange{
		"nothing":           {},
		"two starts":        {Since: time.Hour, FromSeq: 3},
		"to without from":   {To: now, Conversation: "c"},
		"to-seq before":     {FromSeq: 9, ToSeq: 3},
		"to-seq alone":      {ToSeq: 3, Conversation: "c"},
		"to before from":    {From: now, To: now.Add(-time.Hour)},
		"negative duration": {Since: -time.Hour, Conversation: "c"},
	} {
		if err := r.Validate(); err == nil {
			t.Errorf("%s: %+v accepted", name, r)
		}
	}
	for name, r := range map[string]mapper.RemapRange{
		"since":          {Since: time.Hour},
		"conversation":   {Conversation: "c"},
		"seq and conv":   {FromSeq: 2, ToSeq: 2, Conversation: "c"},
		"from and to":    {From: now.Add(-time.Hour), To: now},
		"from, no to":    {From: now},
		"since and conv": {Since: time.Hour, Conversation: "c"},
	} {
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := mapper.Remap(t.Context(), nil, nil, spec.DefaultSettings, mapper.RemapRange{}, mapper.RemapOptions{}); err == nil {
		t.Errorf("Remap of no range: %v", err)
	}
}

// BenchmarkRemap measures a remap of a whole store: 10,000 records of
// 2,000 bot conversations (a webhook message and its reply each), with
// every event they yield already on CHATTAP_EVENTS, as after a first
// remap. Each op reads CHATTAP_RAW from its start, maps every
// conversation, and reads the headers of all of CHATTAP_EVENTS: the cost
// of the second remap, which publishes nothing.
func BenchmarkRemap(b *testing.B) {
	s := brokertest.Start(b)
	m, err := mapper.New(mapper.Options{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	var futures []jetstream.PubAckFuture
	for i := range 10_000 {
		cid := fmt.Sprintf("chatbot::1:bench-%d", i%2000)
		at := t0.Add(time.Duration(i) * time.Millisecond)
		rec := spec.NewRecord(fmt.Sprintf("x%d", i), at, 200, botExchange(cid, "", at, false, "What is my balance?", "It is 42."))
		f, err := s.JS.PublishAsync(rec.Subject(), rec.AppendJSON(nil), jetstream.WithMsgID(rec.ID))
		if err != nil {
			b.Fatal(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.Fatal(err)
		}
	}
	first, err := mapper.Remap(b.Context(), s.JS, m, spec.DefaultSettings, mapper.RemapRange{FromSeq: 1}, mapper.RemapOptions{})
	if err != nil || first.Published == 0 {
		b.Fatalf("first remap: %v, %d published", err, first.Published)
	}
	b.ReportAllocs()
	var res mapper.RemapResult
	for b.Loop() {
		res, err = mapper.Remap(b.Context(), s.JS, m, spec.DefaultSettings, mapper.RemapRange{FromSeq: 1}, mapper.RemapOptions{})
		if err != nil || res.Published != 0 {
			b.Fatalf("remap: %v, %d published", err, res.Published)
		}
	}
	per := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(res.RecordsRead)/per, "records/s")
	b.ReportMetric(float64(res.EventsScanned)/per, "events-scanned/s")
	b.ReportMetric(float64(res.EventsScanned), "events/op")
}
