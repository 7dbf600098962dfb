//go:build faults

package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// record is one message of CHATTAP_RAW as the oracle reads it.
type record struct {
	Seq  uint64
	Data []byte
}

// readStream reads every message of a stream, in order.
func readStream(t *testing.T, url, stream string) []record {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	var out []record
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			if strings.Contains(err.Error(), "not found") {
				continue
			}
			t.Fatalf("stream %s seq %d: %v", stream, seq, err)
		}
		out = append(out, record{Seq: seq, Data: m.Data})
	}
	return out
}

// streamMsgs is how many messages a stream holds, or -1.
func streamMsgs(url, stream string) int {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return -1
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return -1
	}
	info, err := s.Info(ctx)
	if err != nil {
		return -1
	}
	return int(info.State.Msgs)
}

// oracle is chattap's own mapping of the recorded exchanges, done in the
// test process from empty state with the default options: what a
// fault-free run yields from the same records.
type oracle struct {
	Events  map[string]projection // by messageId
	Order   map[string][]string   // conversation_id → the events' names, in order
	Markers map[string]int        // exchange marker → records holding it
	Records int
	Version int // the records' schema version
}

func mapRecords(t *testing.T, recs []record) *oracle {
	t.Helper()
	m, err := mapper.New(mapper.Options{Version: mapperVersion})
	if err != nil {
		t.Fatal(err)
	}
	o := &oracle{Events: map[string]projection{}, Order: map[string][]string{}, Markers: map[string]int{}, Records: len(recs)}
	states := map[string]mapper.State{}
	contacts := map[string]mapper.Contact{}
	set := spec.Settings{RecordLiveChatEvents: true}
	for _, r := range recs {
		seen := map[string]bool{}
		for _, mk := range markerRE.FindAll(r.Data, -1) {
			if !seen[string(mk)] {
				seen[string(mk)] = true
				o.Markers[string(mk)]++
			}
		}
		list, err := spec.ReadRaw(r.Data)
		if err != nil {
			t.Fatalf("CHATTAP_RAW seq %d: %v", r.Seq, err)
		}
		for i := range list {
			obs := &list[i]
			o.Version = obs.V
			// Contacts are kept across conversations, as the runner keeps
			// them in the bucket: a contact's later conversation (the next
			// load of a case, with the same contact ids) announces only what
			// changed.
			st := states[obs.ConversationID]
			var out []spec.Message
			var next mapper.State
			var err error
			if key := m.ContactKey(obs, st); key != "" && obs.ConversationID != "" {
				var nextCt mapper.Contact
				var changed bool
				out, next, nextCt, changed, err = m.MapContact(obs, st, contacts[key], set)
				if err == nil && changed {
					contacts[key] = nextCt
				}
			} else {
				out, next, err = m.Map(obs, st, set)
			}
			if err != nil {
				continue // unmappable: the runner acks it and maps nothing either
			}
			if obs.ConversationID != "" {
				states[obs.ConversationID] = next
			}
			o.add(out)
		}
	}
	return o
}

// add keeps the messages of one Observation.
func (o *oracle) add(out []spec.Message) {
	for _, msg := range out {
		b, _ := json.Marshal(msg)
		p := project(b)
		if _, dup := o.Events[msg.MessageID]; dup {
			continue // a once-per-conversation id JetStream keeps once
		}
		o.Events[msg.MessageID] = p
		o.Order[p.Conversation] = append(o.Order[p.Conversation], p.Event)
	}
}

// projection is what of a Segment message the comparison looks at: every
// field chattap sets, normalised so that the Segment sink's re-encoding
// (analytics-go) compares equal when the content is.
type projection struct {
	Type, Event, UserID, AnonymousID string
	Timestamp                        int64 // Unix ms
	Properties, Traits, Context      string
	Conversation                     string
}

func project(data []byte) projection {
	var m struct {
		Type        string         `json:"type"`
		Event       string         `json:"event"`
		UserID      string         `json:"userId"`
		AnonymousID string         `json:"anonymousId"`
		Timestamp   time.Time      `json:"timestamp"`
		Properties  map[string]any `json:"properties"`
		Traits      map[string]any `json:"traits"`
		Context     struct {
			Traits map[string]any `json:"traits"`
		} `json:"context"`
	}
	_ = json.Unmarshal(data, &m)
	canon := func(v map[string]any) string {
		if len(v) == 0 {
			return ""
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	conv, _ := m.Properties["conversation_id"].(string)
	return projection{Type: m.Type, Event: m.Event, UserID: m.UserID, AnonymousID: m.AnonymousID, Timestamp: m.Timestamp.UnixMilli(),
		Properties: canon(m.Properties), Traits: canon(m.Traits), Context: canon(m.Context.Traits), Conversation: conv}
}

// verdict compares what the receiver holds with the oracle.
type verdict struct {
	Expected, Delivered, Missing, Doubled, Wrong int
	Lost                                         int // accepted exchanges with no record
	Examples                                     []string
	perKind                                      map[string]int
}

// example keeps the first few findings of each kind (the format's first word).
func (v *verdict) example(format string, args ...any) {
	if v.perKind == nil {
		v.perKind = map[string]int{}
	}
	kind, _, _ := strings.Cut(format, " ")
	if v.perKind[kind]++; v.perKind[kind] <= 3 {
		v.Examples = append(v.Examples, fmt.Sprintf(format, args...))
	}
}

// compare checks the receiver's messages against the oracle: each
// expected messageId once with the oracle's content, nothing else, every
// conversation's events in the oracle's sequence of names (Started once,
// Ended at most once, no phantom conversation), and every accepted
// exchange recorded.
func compare(o *oracle, got map[string][]byte, counts map[string]int, exchanges []exchange) verdict {
	v := verdict{Expected: len(o.Events)}
	for id, want := range o.Events {
		data, ok := got[id]
		if !ok {
			v.Missing++
			v.example("missing %s %s in %s", id, want.Event, want.Conversation)
			continue
		}
		v.Delivered++
		if p := project(data); p != want {
			v.Wrong++
			v.example("wrong %s: got %+v want %+v", id, p, want)
		}
	}
	byConv := map[string][]string{}
	var ids []string
	for id := range got {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if counts[id] > 1 {
			v.Doubled += counts[id] - 1
		}
		if _, ok := o.Events[id]; !ok {
			v.Wrong++
			p := project(got[id])
			v.example("unexpected %s %s in %s", id, p.Event, p.Conversation)
		}
	}
	for id, data := range got {
		p := project(data)
		if p.Conversation != "" {
			byConv[p.Conversation] = append(byConv[p.Conversation], id)
		}
	}
	for conv, names := range o.Order {
		gotIDs := byConv[conv]
		starts, ends := 0, 0
		for _, id := range gotIDs {
			switch project(got[id]).Event {
			case spec.EventConversationStarted:
				starts++
			case spec.EventConversationEnded:
				ends++
			}
		}
		wantStarts := count(names, spec.EventConversationStarted)
		if starts > wantStarts || ends > count(names, spec.EventConversationEnded) {
			v.Wrong++
			v.example("conversation %s: %d Started and %d Ended, want %d and %d", conv, starts, ends, wantStarts, count(names, spec.EventConversationEnded))
		}
	}
	for _, ex := range exchanges {
		if ex.Accepted() && o.Markers[ex.Marker] == 0 {
			v.Lost++
			v.example("accepted exchange %s on %s at %s has no record", ex.Marker, ex.Route, ex.At.Format("15:04:05.000"))
		}
	}
	return v
}

func count(names []string, name string) int {
	n := 0
	for _, x := range names {
		if x == name {
			n++
		}
	}
	return n
}

// messages is the receiver's accepted messages as bytes.
func messages(w *world) map[string][]byte {
	out := map[string][]byte{}
	for id, raw := range w.recv.Messages() {
		out[id] = raw
	}
	return out
}
