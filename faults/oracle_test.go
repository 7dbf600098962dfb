//go:build faults

package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// record is one message of a stream as the oracle reads it.
type record struct {
	Seq    uint64
	Header nats.Header
	Data   []byte
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
		out = append(out, record{Seq: seq, Header: m.Header, Data: m.Data})
	}
	return out
}

// locate says, for each id, where it is on CHATTAP_EVENTS and
// CHATTAP_DLQ (as the Nats-Msg-Id, or in the body): a missing event the
// mapper never stored is a different defect from one a sink never
// delivered.
func locate(t *testing.T, url string, ids []string) map[string]string {
	t.Helper()
	where := map[string]string{}
	for _, stream := range []string{spec.StreamEvents, spec.StreamDLQ} {
		for _, r := range readStream(t, url, stream) {
			for _, id := range ids {
				if r.Header.Get(jetstream.MsgIDHeader) == id || bytes.Contains(r.Data, []byte(id)) {
					where[id] += fmt.Sprintf("%s seq %d (Nats-Msg-Id %q) ", stream, r.Seq, r.Header.Get(jetstream.MsgIDHeader))
				}
			}
		}
	}
	for _, id := range ids {
		if where[id] == "" {
			where[id] = "on neither " + spec.StreamEvents + " nor " + spec.StreamDLQ
		}
	}
	return where
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
	Events map[string]projection // by messageId, every type but identify
	// Identifies are the identifies of the mapping in stream order, by
	// messageId. They are compared by what they say, not one by one: see
	// compareIdentifies.
	Identifies map[string]announced
	// Identity is, by the messageId an identify of each Observation would
	// have, the contact's identity in its conversation after it: what an
	// identify from that Observation may say.
	Identity map[string]announced
	// Final is each contact's Contact after the last record: the newest
	// value of each trait, which the destination must end with.
	Final   map[string]mapper.Contact
	Order   map[string][]string // conversation_id → the events' names, in order
	Markers map[string]int      // exchange marker → records holding it
	From    map[string]uint64   // messageId → the sequence of the record it came from
	Records int
	Version int // the records' schema version
}

func mapRecords(t *testing.T, recs []record) *oracle {
	t.Helper()
	m, err := mapper.New(mapper.Options{Version: mapperVersion})
	if err != nil {
		t.Fatal(err)
	}
	o := &oracle{Events: map[string]projection{}, Order: map[string][]string{}, Markers: map[string]int{}, From: map[string]uint64{},
		Identifies: map[string]announced{}, Identity: map[string]announced{}, Final: map[string]mapper.Contact{}, Records: len(recs)}
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
					o.Final[key] = nextCt
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
			if next.AnonymousID != "" {
				o.Identity[obs.ID+"-id"] = announced{AnonymousID: next.AnonymousID, UserID: next.UserID, Traits: next.Traits}
			}
			o.add(out, r.Seq)
		}
	}
	return o
}

// add keeps the messages of one Observation.
func (o *oracle) add(out []spec.Message, seq uint64) {
	for _, msg := range out {
		if msg.Type == spec.TypeIdentify {
			o.Identifies[msg.MessageID] = announcedBy(&msg)
			o.From[msg.MessageID] = seq
			continue
		}
		b, _ := json.Marshal(msg)
		p := project(b)
		if _, dup := o.Events[msg.MessageID]; dup {
			continue // a once-per-conversation id JetStream keeps once
		}
		o.Events[msg.MessageID] = p
		o.From[msg.MessageID] = seq
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
	MissingIDs                                   []string
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
	identifies := map[string][]byte{}
	for id, data := range got {
		if project(data).Type == spec.TypeIdentify {
			identifies[id] = data
		}
	}
	compareIdentifies(&v, o, identifies)
	for id, want := range o.Events {
		data, ok := got[id]
		if !ok {
			v.Missing++
			v.MissingIDs = append(v.MissingIDs, id)
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
		if _, identify := identifies[id]; identify {
			continue
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

// announced is what an identify says: whose it is, its userId and traits,
// and its timestamp (Unix ms).
type announced struct {
	AnonymousID, UserID string
	Traits              map[string]string
	At                  int64
}

func announcedBy(m *spec.Message) announced {
	a := announced{AnonymousID: m.AnonymousID, UserID: m.UserID, At: m.Timestamp.UnixMilli(), Traits: map[string]string{}}
	for k, v := range m.Traits {
		s, _ := v.(string)
		a.Traits[k] = s
	}
	return a
}

// compareIdentifies checks the identifies received by what they say, not
// one by one against the oracle's. The live mapper maps each partition of
// CHATTAP_RAW in order, but the partitions not in step with one another,
// while the oracle maps the whole stream in order; a contact's
// conversations sit in different partitions, so which of them announces a
// trait first can differ (mapper.Contact says why that is right). What
// must hold, and is checked:
//
//   - every identify received is one an Observation of the stream could
//     make: its messageId is an Observation's, and its anonymousId,
//     userId and every trait are what that Observation's conversation
//     knew (else wrong);
//   - nothing the oracle announced is lost: each trait value and userId
//     of each of its identifies was received in an identify of the
//     contact, or a value at least as new was (else missing; an identify
//     of the oracle's is delivered when all it said was);
//   - each contact ends where the oracle's does: for every trait, the
//     received identifies with the latest timestamp that carry it carry
//     its newest value (else wrong). The timestamp, not the arrival: the
//     sinks deliver at least once and not in order (a retried batch comes
//     after later ones), and each identify is stamped with the event that
//     made the change.
func compareIdentifies(v *verdict, o *oracle, got map[string][]byte) {
	v.Expected += len(o.Identifies)
	recv := map[string][]announced{} // by anonymousId
	type last struct {
		ts     int64
		values []string // of the identifies stamped ts
	}
	latest := map[string]map[string]last{} // anonymousId → trait → the latest stamped
	ids := slices.Sorted(maps.Keys(got))
	for _, id := range ids {
		var m spec.Message
		if err := json.Unmarshal(got[id], &m); err != nil {
			v.Wrong++
			v.example("unreadable identify %s: %v", id, err)
			continue
		}
		a := announcedBy(&m)
		may, ok := o.Identity[id]
		switch {
		case !ok:
			v.Wrong++
			v.example("unexpected identify %s from no Observation of the stream", id)
			continue
		case a.AnonymousID != may.AnonymousID || a.UserID != "" && a.UserID != may.UserID:
			v.Wrong++
			v.example("wrong identify %s: anonymousId %q userId %q, its conversation knew %q %q", id, a.AnonymousID, a.UserID, may.AnonymousID, may.UserID)
			continue
		}
		bad := false
		for k, val := range a.Traits {
			if may.Traits[k] != val {
				bad = true
				v.Wrong++
				v.example("wrong identify %s: %s %q, its conversation knew %q", id, k, val, may.Traits[k])
			}
		}
		if bad {
			continue
		}
		recv[a.AnonymousID] = append(recv[a.AnonymousID], a)
		if latest[a.AnonymousID] == nil {
			latest[a.AnonymousID] = map[string]last{}
		}
		for k, val := range a.Traits {
			switch l, seen := latest[a.AnonymousID][k]; {
			case !seen || a.At > l.ts:
				latest[a.AnonymousID][k] = last{ts: a.At, values: []string{val}}
			case a.At == l.ts:
				l.values = append(l.values, val)
				latest[a.AnonymousID][k] = l
			}
		}
	}
	covered := func(anon, key, val string, at int64) bool {
		for _, a := range recv[anon] {
			said := a.Traits[key]
			if key == "$user_id" {
				said = a.UserID
			}
			if said != "" && (said == val || a.At >= at) {
				return true
			}
		}
		return false
	}
	for _, id := range slices.Sorted(maps.Keys(o.Identifies)) {
		want := o.Identifies[id]
		lost := []string{}
		if want.UserID != "" && !covered(want.AnonymousID, "$user_id", want.UserID, want.At) {
			lost = append(lost, "userId "+want.UserID)
		}
		for k, val := range want.Traits {
			if !covered(want.AnonymousID, k, val, want.At) {
				lost = append(lost, k+" "+val)
			}
		}
		if len(lost) > 0 {
			v.Missing++
			v.MissingIDs = append(v.MissingIDs, id)
			v.example("missing %s identify of %s: %s neither received nor made old by a newer value", id, want.AnonymousID, strings.Join(lost, ", "))
			continue
		}
		v.Delivered++
	}
	for anon, ct := range o.Final {
		for k, val := range ct.Traits {
			if l, ok := latest[anon][k]; ok && slices.ContainsFunc(l.values, func(got string) bool { return got != val }) {
				v.Wrong++
				v.example("wrong final %s of %s: the latest identify says %q, the newest value is %q", k, anon, l.values, val)
			}
		}
	}
}
