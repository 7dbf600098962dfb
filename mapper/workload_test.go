package mapper_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// workload is n conversations of every family, five records each, in the
// order the taps would store them (conversations interleaved):
//   - Custom Channel: the contact writes, an operator answers, the
//     operator ends it, the contact comes back (a new conversation
//     instance), the operator answers again;
//   - add-on: a message each way, then the end with a transcript of both
//     and one more line, then conversation.ended;
//   - Chatbot: a message, the bot's answer, the bot ending it, and two
//     more messages of the contact after the end.
//
// Mapped in order, each conversation (instance) has exactly one Started
// and one Ended; any reordering shows as a missing or extra event, a
// phantom instance or a message filed under the wrong one.
func workload(n int) []*spec.Observation {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	per := make([][]*spec.Observation, n)
	for k := range n {
		base := at.Add(time.Duration(k) * time.Millisecond)
		rec := func(i int, src spec.Source, kind, cid, payload string) *spec.Observation {
			return &spec.Observation{V: 1, ID: fmt.Sprintf("w-%d-%d", k, i), Source: src, Kind: kind, ReceivedAt: base.Add(time.Duration(i) * time.Second),
				ConversationID: cid, Status: 200, Payload: json.RawMessage(payload)}
		}
		local := func(i int) string { return base.Add(time.Duration(i) * time.Second).Format("2006-01-02 15:04:05") }
		switch k % 3 {
		case 0:
			contact := fmt.Sprintf("c%d@example.org", k)
			cid := "channel::" + contact
			per[k] = []*spec.Observation{
				rec(0, spec.SourceChannelInbound, "message", cid, fmt.Sprintf(`{"contact_id":%q,"name":"Contact %d","message":{"body":"hi %d"}}`, contact, k, k)),
				rec(1, spec.SourceChannelOutbound, "message", cid, fmt.Sprintf(`{"contact_id":%q,"message":{"body":"hello %d","event":"message"},"operator_name":"Op","operator_id":7}`, contact, k)),
				rec(2, spec.SourceChannelOutbound, "message", cid, fmt.Sprintf(`{"contact_id":%q,"message":{"event":"conversation_ended"}}`, contact)),
				rec(3, spec.SourceChannelInbound, "message", cid, fmt.Sprintf(`{"contact_id":%q,"message":{"body":"back again %d"}}`, contact, k)),
				rec(4, spec.SourceChannelOutbound, "message", cid, fmt.Sprintf(`{"contact_id":%q,"message":{"body":"welcome back %d","event":"message"}}`, contact, k)),
			}
		case 1:
			sid := 900000 + k
			cid := fmt.Sprintf("userlike::%d", sid)
			per[k] = []*spec.Observation{
				rec(0, spec.SourceAddon, "chat_session.message_received", cid, fmt.Sprintf(`{"_type":"chat_session","_event":"message_received","session_id":%d,"message":"where is %d","sent_at":%q,"client_uuid":"u-%d","client_name":"Eva %d"}`, sid, k, local(0), k, k)),
				rec(1, spec.SourceAddon, "chat_session.message_sent", cid, fmt.Sprintf(`{"_type":"chat_session","_event":"message_sent","session_id":%d,"body":"it is here %d","sent_at":%q,"operator_current":{"id":311,"name":"Jonas"}}`, sid, k, local(1))),
				rec(2, spec.SourceAddon, "chat_session.end", cid, fmt.Sprintf(`{"_type":"chat_session","_event":"end","id":%d,"client_uuid":"u-%d","created_at":%q,"ended_at":%q,"messages":[{"message":"where is %d","sent_at":%q,"type":"co"},{"message":"it is here %d","sent_at":%q,"type":"oc"},{"message":"thanks %d","sent_at":%q,"type":"co"}]}`, sid, k, local(0), local(2), k, local(0), k, local(1), k, local(2))),
				rec(3, spec.SourceAddon, "conversation.ended", cid, fmt.Sprintf(`{"_type":"conversation","_event":"ended","session_id":%d}`, sid)),
				rec(4, spec.SourceAddon, "chat_session.message_received", cid, fmt.Sprintf(`{"_type":"chat_session","_event":"message_received","session_id":%d,"message":"thanks %d","sent_at":%q}`, sid, k, local(2))),
			}
		default:
			cid := fmt.Sprintf("chatbot::9:%032x", k)
			web := func(i int, body string) *spec.Observation {
				return rec(i, spec.SourceChatbotWebhook, "message", cid, fmt.Sprintf(`{"info":{"cid":%q,"contact":{"id":%d,"name":"Bot user %d"}},"packet":{"name":"message","payload":{"body":%q}}}`, cid, k, k, body))
			}
			per[k] = []*spec.Observation{
				web(0, fmt.Sprintf("question %d", k)),
				rec(1, spec.SourceChatbotReply, "message", cid, fmt.Sprintf(`{"info":{"cid":%q},"packet":{"name":"message","payload":{"body":"answer %d"}}}`, cid, k)),
				rec(2, spec.SourceChatbotReply, "end", cid, fmt.Sprintf(`{"info":{"cid":%q},"packet":{"name":"end","payload":{}}}`, cid)),
				web(3, fmt.Sprintf("still there %d?", k)),
				web(4, fmt.Sprintf("hello? %d", k)),
			}
		}
	}
	var out []*spec.Observation
	for i := range 5 {
		for k := range n {
			out = append(out, per[k][i])
		}
	}
	return out
}

// checkExact compares what is on CHATTAP_EVENTS with what mapping obs one
// by one, in order, makes: per contact, the same messages, byte for byte,
// each once (JetStream's order within a retried batch may differ, so the
// comparison is of the sorted lists). It also counts Started and Ended per
// conversation instance, for a failure that says what went wrong.
func checkExact(t *testing.T, js jetstream.JetStream, obs []*spec.Observation) {
	t.Helper()
	checkExactAs(t, js, obs, "test")
}

// checkExactAs is checkExact for events of a mapper of this version.
func checkExactAs(t *testing.T, js jetstream.JetStream, obs []*spec.Observation, version string) {
	t.Helper()
	want := expectedByContactAs(t, obs, version)
	got := byContact(t, eventsOnStream(t, js))
	total, bad := 0, 0
	for who, w := range want {
		g := slices.Clone(got[who])
		w = slices.Clone(w)
		total += len(w)
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			bad++
			if bad <= 3 {
				t.Errorf("%s: %d events, want %d\n got %s\nwant %s", who, len(g), len(w), strings.Join(g, "\n     "), strings.Join(w, "\n     "))
			}
		}
	}
	for who := range got {
		if _, ok := want[who]; !ok {
			t.Errorf("events of an unknown contact %s", who)
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d streams (a contact's conversation, or identify) have other events than mapping in order makes", bad, len(want))
	}
	started, ended := map[string]int{}, map[string]int{}
	for _, m := range messagesOnStream(t, js) {
		cid, _ := m.Properties[spec.PropConversationID].(string)
		switch m.Event {
		case spec.EventConversationStarted:
			started[cid]++
		case spec.EventConversationEnded:
			ended[cid]++
		}
	}
	for cid, n := range started {
		if n != 1 || strings.HasSuffix(cid, "#2") {
			t.Errorf("%s: %d Started", cid, n)
		}
	}
	for cid, n := range ended {
		if n != 1 {
			t.Errorf("%s: %d Ended", cid, n)
		}
	}
	t.Logf("%d events in %d streams (a contact's conversation, or identify), %d conversation instances started, as mapped in order", total, len(want), len(started))
}

// workloadRecords is workload stored as a tap stores it since version 2:
// one record per exchange. A Chatbot conversation's webhook message, the
// bot's answer and its end are one exchange (a record of three events);
// every other event is an exchange of its own. It returns the records
// and the Observations a mapper reads from them, in stream order.
func workloadRecords(t *testing.T, n int) ([]*spec.Record, []*spec.Observation) {
	t.Helper()
	obs := workload(n)
	byConv := map[string][]*spec.Observation{}
	var order []string
	for _, o := range obs {
		if _, ok := byConv[o.ConversationID]; !ok {
			order = append(order, o.ConversationID)
		}
		byConv[o.ConversationID] = append(byConv[o.ConversationID], o)
	}
	exchanges := make([][][]*spec.Observation, len(order))
	for i, cid := range order {
		c := byConv[cid]
		if strings.HasPrefix(cid, "chatbot::") {
			exchanges[i] = [][]*spec.Observation{c[0:3], c[3:4], c[4:5]}
			continue
		}
		for _, o := range c {
			exchanges[i] = append(exchanges[i], []*spec.Observation{o})
		}
	}
	var records []*spec.Record
	var split []*spec.Observation
	for round := 0; ; round++ {
		more := false
		for i := range order {
			if round >= len(exchanges[i]) {
				continue
			}
			more = true
			ex := exchanges[i][round]
			rec := spec.NewRecord(fmt.Sprintf("r-%d-%d", i, round), ex[0].ReceivedAt, 200, ex)
			records = append(records, rec)
			read, err := spec.ReadRaw(rec.AppendJSON(nil))
			if err != nil {
				t.Fatal(err)
			}
			for j := range read {
				split = append(split, &read[j])
			}
		}
		if !more {
			return records, split
		}
	}
}

// publishRecords stores records on CHATTAP_RAW as ingest does.
func publishRecords(t testing.TB, js jetstream.JetStream, records []*spec.Record) {
	t.Helper()
	for _, rec := range records {
		if _, err := js.Publish(t.Context(), rec.Subject(), rec.AppendJSON(nil), jetstream.WithMsgID(rec.ID)); err != nil {
			t.Fatalf("publish %s: %v", rec.ID, err)
		}
	}
}
