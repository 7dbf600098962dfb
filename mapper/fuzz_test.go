package mapper_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
)

// FuzzMap maps an arbitrary payload on every source, twice in a row on one
// conversation, and checks that Map never panics (its own recover would
// hide one, so a "panic:" reason fails too), that every message is one
// Segment accepts, and that the mapping is deterministic.
func FuzzMap(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "scenarios", "*.json"))
	for _, file := range files {
		sc := readScenario(f, file)
		for _, o := range sc.Observations {
			f.Add(sourceIndex(o.Source), o.Kind, o.ConversationID, o.Status, []byte(o.Payload), []byte(`{"packet":{"name":"click","payload":{"option":2}}}`))
		}
	}
	f.Add(uint8(0), "message", "", 200, []byte(`{"info":{"cid":null,"contact":{"id":{"x":1}}},"packet":{"name":7}}`), []byte(`[]`))
	f.Add(uint8(5), "chat_session.end", "userlike::1", 200, []byte(`{"_type":"chat_session","_event":"end","id":1,"created_at":"0000-01-01 00:00:00","ended_at":"9999-12-31 23:59:59","duration":"-1","rate":"NaN"}`), []byte(`{}`))

	m, err := mapper.New(mapper.Options{Version: "fuzz", ExtendedEvents: "forwarded,option_selected,rated"})
	if err != nil {
		f.Fatal(err)
	}
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, src uint8, kind, conv string, status int, payload, second []byte) {
		var st mapper.State
		var ct mapper.Contact
		for i, p := range [][]byte{payload, second} {
			obs := &spec.Observation{V: 1, ID: "fuzz-" + string(rune('a'+i)), Source: spec.Sources[int(src)%len(spec.Sources)],
				Kind: kind, ReceivedAt: at.Add(time.Duration(i) * time.Second), ConversationID: conv, Status: status, Payload: p}
			out, next, err := m.Map(obs, st, spec.DefaultSettings)
			var ue *mapper.UnmappableError
			if errors.As(err, &ue) && strings.HasPrefix(ue.Reason, "panic:") {
				t.Fatalf("Map panicked: %s", ue.Reason)
			}
			again, _, _ := m.Map(obs, st, spec.DefaultSettings)
			a, _ := json.Marshal(out)
			b, _ := json.Marshal(again)
			if !bytes.Equal(a, b) {
				t.Fatalf("Map is not deterministic:\n%s\n%s", a, b)
			}
			// The same with the contact kept apart, as a runner with a
			// contact store maps: deterministic, and the Contact
			// round-trips through its encoding.
			withCt, _, nextCt, ctChanged, errCt := m.MapContact(obs, st, ct, spec.DefaultSettings)
			againCt, _, _, _, _ := m.MapContact(obs, st, ct, spec.DefaultSettings)
			a, _ = json.Marshal(withCt)
			b, _ = json.Marshal(againCt)
			if !bytes.Equal(a, b) || (err == nil) != (errCt == nil) {
				t.Fatalf("MapContact is not deterministic, or disagrees with Map on failing:\n%s\n%s", a, b)
			}
			for j := range withCt {
				checkMessage(t, &withCt[j])
			}
			if ctChanged {
				enc, err := nextCt.Encode()
				if err != nil {
					t.Fatalf("contact does not encode: %v", err)
				}
				back, err := mapper.DecodeContact(enc)
				if err != nil {
					t.Fatalf("contact does not decode: %v", err)
				}
				ct = back
			}
			for j := range out {
				checkMessage(t, &out[j])
			}
			enc, err := next.Encode()
			if err != nil {
				t.Fatalf("state does not encode: %v", err)
			}
			if _, err := mapper.DecodeState(enc); err != nil {
				t.Fatalf("state does not decode: %v", err)
			}
			st = next
		}
	})
}

func checkMessage(t *testing.T, msg *spec.Message) {
	t.Helper()
	if err := msg.Validate(); err != nil {
		t.Fatalf("invalid message %+v: %v", msg, err)
	}
	if msg.Type == spec.TypeTrack && !spec.KnownEvent(msg.Event) {
		t.Fatalf("unknown event %q", msg.Event)
	}
	if len(msg.MessageID) > spec.MaxMessageIDLen || msg.AnonymousID == "" {
		t.Fatalf("messageId %q, anonymousId %q", msg.MessageID, msg.AnonymousID)
	}
	if _, err := json.Marshal(msg); err != nil {
		t.Fatalf("message does not encode: %v", err)
	}
}

func sourceIndex(s spec.Source) uint8 {
	for i, x := range spec.Sources {
		if x == s {
			return uint8(i)
		}
	}
	return 0
}
