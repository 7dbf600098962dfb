package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chattap/chattap/spec"
)

// TestReturningChannelContactReachesSegment: a Custom Channel contact
// whose conversation ended writes again, and later writes once more after
// the conversation's state was forgotten (CHATTAP_CONVERSATION_TTL). Each
// time a conversation of its own begins, and its Started reaches Segment:
// three Started with three messageIds and three conversation_ids.
func TestReturningChannelContactReachesSegment(t *testing.T) {
	rec := &segmentReceiver{}
	seg := httptest.NewServer(rec)
	defer seg.Close()
	channel := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{}`)
	}))
	defer channel.Close()
	in := start(t, "CHATTAP_SEGMENT_WRITE_KEY=wk", "CHATTAP_SEGMENT_ENDPOINT="+seg.URL, "CHATTAP_SINK_FLUSH_INTERVAL=20ms",
		"CHATTAP_CHANNEL_INBOUND_URL="+channel.URL, "CHATTAP_CHANNEL_OUTBOUND_URL="+channel.URL,
		"CHATTAP_CONVERSATION_TTL=1s", "CHATTAP_FILE_SINK_PATH=")
	post := func(path, body string) {
		t.Helper()
		if code, answer := in.post(t, path, body, nil); code != 200 {
			t.Fatalf("%s: %d %s", path, code, answer)
		}
	}
	starts := func(want int) []spec.Message {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, _ := rec.received()
			var out []spec.Message
			for _, m := range got {
				if m.Event == spec.EventConversationStarted {
					out = append(out, m)
				}
			}
			if len(out) >= want || time.Now().After(deadline) {
				return out
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	post("/userlike/channel/inbound", `{"contact_id":"eve@example.org","message":{"body":"hi"}}`)
	post("/userlike/channel/outbound", `{"contact_id":"eve@example.org","message":{"event":"conversation_ended"}}`)
	post("/userlike/channel/inbound", `{"contact_id":"eve@example.org","message":{"body":"me again"}}`)
	starts(2)
	time.Sleep(2500 * time.Millisecond) // past the TTL: the state is forgotten
	post("/userlike/channel/inbound", `{"contact_id":"eve@example.org","message":{"body":"and again, days later"}}`)
	got := starts(3)
	if len(got) != 3 {
		t.Fatalf("Segment received %d Started, want 3", len(got))
	}
	ids, convs := map[string]bool{}, map[any]bool{}
	for _, m := range got {
		ids[m.MessageID] = true
		convs[m.Properties[spec.PropConversationID]] = true
	}
	if len(ids) != 3 || len(convs) != 3 {
		t.Errorf("Started messageIds %v and conversation_ids %v: want three of each", ids, convs)
	}
}
