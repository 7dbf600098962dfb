package mapper_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/chattap/chattap/mapper"
)

// TestStateEncodingIsStable pins the stored form of the hash lists: one
// JSON string, base64url without padding of the little-endian words, as
// every State already in a bucket holds them.
func TestStateEncodingIsStable(t *testing.T) {
	st := mapper.State{ConversationID: "c", Started: true, StartedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		Traits: map[string]string{"name": "Eva"}, Options: []string{"a"},
		Seen: mapper.Hashes{1, 1 << 63, 0xdeadbeefcafef00d}, Applied: mapper.Hashes{42}}
	b, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]mapper.Hashes{"seen": st.Seen, "applied": st.Applied} {
		raw := make([]byte, 0, 8*len(h))
		for _, v := range h {
			raw = binary.LittleEndian.AppendUint64(raw, v)
		}
		want, _ := json.Marshal(base64.RawURLEncoding.EncodeToString(raw))
		if string(fields[name]) != string(want) {
			t.Errorf("%s stored as %s, want %s", name, fields[name], want)
		}
	}
	back, err := mapper.DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, st) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, st)
	}
	for _, bad := range []string{`{"seen":"AQ"}`, `{"seen":"!!!!!!!!!!!"}`, `{"seen":12}`, `{"applied":"AQAAAAAAAA"}`} {
		if _, err := mapper.DecodeState([]byte(bad)); err == nil {
			t.Errorf("DecodeState(%s) accepted", bad)
		}
	}
	if st, err := mapper.DecodeState([]byte(`{"seen":"","applied":null}`)); err != nil || len(st.Seen) != 0 || len(st.Applied) != 0 {
		t.Errorf("empty lists: %+v, %v", st, err)
	}
}
