package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/sinks/sinkstest"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// remapBot answers a start with a greeting, "Bye" with a goodbye and the
// end of the conversation, and anything else with the balance.
func remapBot(t *testing.T) *httptest.Server {
	t.Helper()
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch {
		case strings.Contains(string(b), `"name":"start"`):
			_, _ = io.WriteString(w, `[{"packet":{"name":"message","payload":{"body":"Hi, I am the bot."}}}]`)
		case strings.Contains(string(b), `"body":"Bye"`):
			_, _ = io.WriteString(w, `[{"packet":{"name":"message","payload":{"body":"Goodbye."}}},{"packet":{"name":"end","payload":{}}}]`)
		default:
			_, _ = io.WriteString(w, `{"packet":{"name":"message","payload":{"body":"Your balance is 42."}}}`)
		}
	}))
	t.Cleanup(bot.Close)
	return bot
}

func contactSays(cid, packet string) string {
	return `{"info":{"cid":"` + cid + `","contact":{"name":"Ada"}},"packet":` + packet + `}`
}

// talk sends a whole conversation through the tap: start, a question, bye.
func talk(t *testing.T, in *instance, cid string) {
	t.Helper()
	for _, p := range []string{`{"name":"start","payload":{}}`, `{"name":"message","payload":{"body":"What is my balance?"}}`, `{"name":"message","payload":{"body":"Bye"}}`} {
		if code, body := in.post(t, "/userlike/webhook", contactSays(cid, p), nil); code != http.StatusOK {
			t.Fatalf("webhook: %d %s", code, body)
		}
	}
}

func eventCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(t.Context(), spec.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return si.State.Msgs
}

// wouldHave maps the conversation's records on CHATTAP_RAW in order with
// recording on, as a mapper that had recorded from the start would have:
// its events, in order.
func wouldHave(t *testing.T, js jetstream.JetStream, cid string) []spec.Message {
	t.Helper()
	m, err := mapper.New(mapper.Options{Version: versionString()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), spec.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var state mapper.State
	var out []spec.Message
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		obs, err := spec.ReadRaw(raw.Data)
		if err != nil {
			t.Fatal(err)
		}
		for i := range obs {
			if obs[i].ConversationID != cid {
				continue
			}
			msgs, next, err := m.Map(&obs[i], state, spec.DefaultSettings)
			if err != nil {
				t.Fatal(err)
			}
			state, out = next, append(out, msgs...)
		}
	}
	return out
}

func bucketState(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	kv, err := js.KeyValue(t.Context(), spec.BucketConversations)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for k := range keys.Keys() {
		e, err := kv.Get(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%s %d %s", k, e.Revision(), e.Value()))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// remap runs `chattap remap args…` against the store at natsURL and
// returns its stdout and its summary.
func remap(t *testing.T, natsURL string, args ...string) (string, mapper.RemapResult) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := run(ctx, append([]string{"remap"}, args...), []string{"CHATTAP_NATS_URL=" + natsURL}, &stdout, &stderr); err != nil {
		t.Fatalf("remap %v: %v\n%s", args, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	var res mapper.RemapResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("remap summary %q: %v", stderr.String(), err)
	}
	return stdout.String(), res
}

// TestRemapDeliversAConversationRecordedWhileOff is issue 11's test: with
// recording off a conversation goes through the tap and yields nothing;
// recording goes on, another conversation is delivered live; `chattap
// remap` then delivers exactly the events the first conversation would
// have had, once, at a Segment-compatible receiver, and nothing of the
// second again; a second remap adds nothing. A dry run before prints the
// same events and publishes nothing, and no remap touches the running
// mapper's conversation state.
func TestRemapDeliversAConversationRecordedWhileOff(t *testing.T) {
	rec := sinkstest.NewReceiver(t, "wk")
	natsAddr := brokertest.FreeAddr(t)
	natsURL := "nats://" + natsAddr
	in := start(t, "CHATTAP_NATS_LISTEN="+natsAddr, "CHATTAP_ADMIN_TOKEN=adm", "CHATTAP_BOT_WEBHOOK_URL="+remapBot(t).URL,
		"CHATTAP_SEGMENT_WRITE_KEY=wk", "CHATTAP_SEGMENT_ENDPOINT="+rec.URL, "CHATTAP_SINK_FLUSH_INTERVAL=20ms", "CHATTAP_FILE_SINK_PATH=",
		// Each exchange is stored before its answer, so a test reads all of
		// a conversation once talk returns.
		"CHATTAP_TAP_ACK=sync", "CHATTAP_TAP_ACK_TIMEOUT=5s")
	_, js := brokertest.Connect(t, natsURL)
	auth := map[string]string{"Authorization": "Bearer adm"}
	setRecording := func(on bool) {
		t.Helper()
		if code, body := in.do(t, http.MethodPut, "/admin/settings", fmt.Sprintf(`{"record_live_chat_events":%t}`, on), auth); code != http.StatusOK {
			t.Fatalf("PUT /admin/settings: %d %s", code, body)
		}
	}

	setRecording(false)
	talk(t, in, "c-while-off")
	waitMapperDone(t, natsURL, 20*time.Second)
	if n := eventCount(t, js); n != 0 {
		t.Fatalf("recording off, yet %d events on CHATTAP_EVENTS", n)
	}
	setRecording(true)
	talk(t, in, "c-live")
	live := wouldHave(t, js, "c-live")
	rec.WaitUnique(t, len(live), 20*time.Second)
	waitMapperDone(t, natsURL, 20*time.Second)

	want := wouldHave(t, js, "c-while-off")
	var names []string
	for _, m := range want {
		names = append(names, cmp.Or(m.Event, m.Type))
	}
	if got := strings.Join(names, "|"); got != "identify|Live Chat Conversation Started|Live Chat Message Received|Live Chat Message Sent|Live Chat Message Received|Live Chat Message Sent|Live Chat Message Received|Live Chat Conversation Ended" {
		t.Fatalf("the conversation would have had %s", got)
	}
	stateBefore := bucketState(t, js)
	eventsBefore := eventCount(t, js)

	out, dry := remap(t, natsURL, "--since", "1h", "--dry-run")
	var printed []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m spec.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("dry run printed %q: %v", line, err)
		}
		printed = append(printed, m.MessageID)
	}
	if !slices.Equal(printed, ids(want)) || dry.Published != 0 || eventCount(t, js) != eventsBefore {
		t.Fatalf("dry run printed %v (%+v, %d events on the stream, had %d), want %v and nothing published", printed, dry, eventCount(t, js), eventsBefore, ids(want))
	}

	_, res := remap(t, natsURL, "--since", "1h")
	if res.Published != len(want) || res.AlreadyOnEvents != len(live) || res.Produced != len(want)+len(live) || res.Conversations != 2 {
		t.Errorf("remap summary %+v, want %d published, %d already on CHATTAP_EVENTS", res, len(want), len(live))
	}
	rec.WaitUnique(t, len(live)+len(want), 20*time.Second)
	got := rec.Messages()
	for _, m := range want {
		if rec.Count(m.MessageID) != 1 {
			t.Errorf("%s (%s) reached the receiver %d times", m.MessageID, cmp.Or(m.Event, m.Type), rec.Count(m.MessageID))
			continue
		}
		var at spec.Message
		if err := json.Unmarshal(got[m.MessageID], &at); err != nil {
			t.Fatal(err)
		}
		if at.Event != m.Event || !at.Timestamp.Equal(m.Timestamp) || at.Properties[spec.PropMessageBody] != m.Properties[spec.PropMessageBody] || at.AnonymousID != m.AnonymousID {
			t.Errorf("receiver got %s as %+v, want %+v", m.MessageID, at, m)
		}
	}
	if after := bucketState(t, js); after != stateBefore {
		t.Errorf("remap changed chattap_conversations:\nbefore\n%s\nafter\n%s", stateBefore, after)
	}

	eventsAfter := eventCount(t, js)
	_, again := remap(t, natsURL, "--since", "1h")
	if again.Published != 0 || again.Duplicates != 0 || again.AlreadyOnEvents != len(want)+len(live) {
		t.Errorf("second remap %+v, want nothing published", again)
	}
	// Whatever a second remap sent would be on the stream by now.
	if n := eventCount(t, js); n != eventsAfter {
		t.Errorf("second remap: %d events on CHATTAP_EVENTS, had %d", n, eventsAfter)
	}
	time.Sleep(200 * time.Millisecond)
	if n := rec.Unique(); n != len(live)+len(want) {
		t.Errorf("receiver has %d distinct events, want %d", n, len(live)+len(want))
	}
	for id, n := range receiverCounts(rec, got) {
		if n != 1 {
			t.Errorf("%s reached the receiver %d times", id, n)
		}
	}
	if after := bucketState(t, js); after != stateBefore {
		t.Errorf("second remap changed chattap_conversations")
	}
}

func TestRemapRefusesAnEmptyRange(t *testing.T) {
	err := run(t.Context(), []string{"remap"}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "since") || !strings.Contains(err.Error(), "chattap remap -h") {
		t.Errorf("remap without a range: %v, want an error that says what to give and where to look", err)
	}
	var stderr bytes.Buffer
	if err := run(t.Context(), []string{"remap", "-h"}, nil, io.Discard, &stderr); err != nil || !strings.Contains(stderr.String(), "-dry-run") || !strings.Contains(stderr.String(), "chattap remap -from-seq 1200") {
		t.Errorf("remap -h: %v\n%s", err, stderr.String())
	}
	if err := run(t.Context(), []string{"remap", "--since", "1h", "--from-seq", "3"}, nil, io.Discard, io.Discard); err == nil {
		t.Error("remap with two starts was accepted")
	}
}

func ids(ms []spec.Message) []string {
	out := make([]string, len(ms))
	for i := range ms {
		out[i] = ms[i].MessageID
	}
	return out
}

func receiverCounts(rec *sinkstest.Receiver, got map[string]json.RawMessage) map[string]int {
	out := make(map[string]int, len(got))
	for id := range got {
		out[id] = rec.Count(id)
	}
	return out
}
