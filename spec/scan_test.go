package spec_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/chattap/chattap/spec"
)

// scanSeeds are the cases where a hand-written reader could part ways
// with encoding/json.
var scanSeeds = []string{
	`{"info":{"cid":"chatbot::258:a5"},"packet":{"name":"message","payload":{"body":"hi"}}}`,
	`{"info":{"cid":258},"packet":{"event":"start"}}`,
	`{"info":{"cid":null},"packet":{"name":null,"event":"click"}}`,
	`{"INFO":{"CID":"x"},"Packet":{"NAME":"upper"}}`,
	`{"info":{"cid":"a"},"info":{"approach_mode":"normal"},"info":{"cid":"b"}}`,
	`{"info":"not an object","packet":["no"],"x":{"info":{"cid":"nested"}}}`,
	`{"info":{"cid":{"id":1}},"packet":{"name":[1,2]}}`,
	`{"info":{"c\u0069d":"escaped key","cid":"\u00e9t\u00e9 \"q\""}}`,
	`{"pac\u212aet":{"name":"kelvin"}}`,
	"{\"info\":{\"cid\":\"bad \xff utf8\"},\"packet\":{\"name\":\"caf\xc3\xa9\"}}",
	`{"info":{"cid":true},"packet":{"name":-1.5e3}}`,
	`  {"packet" : { "name" : "spaced" } }  `,
	`{"packet":{"name":"a"}} trailing`,
	`{"packet":`,
	`[]`, `[{}, null, {"packet":{"name":"m"}}, { }]`, `[1, "two", [3]]`, `{}`, `null`, ``, `"str"`, `[{"a":1},]`,
	`[{"packet":{"name":"message","payload":{"body":"]}\"[{"}}}]`,
	"\u00a0[{\"packet\":{\"name\":\"nbsp\"}}]\u0085",
}

func FuzzScanMatchesSpec(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkHead(t, data)
		checkSplit(t, data)
	})
}

func TestScanMatchesSpec(t *testing.T) {
	for _, s := range scanSeeds {
		checkHead(t, []byte(s))
		checkSplit(t, []byte(s))
	}
}

func checkHead(t *testing.T, data []byte) {
	t.Helper()
	ev, werr := spec.DecodeChatbotEvent(data)
	h, err := spec.DecodeChatbotHead(data)
	if fmt.Sprint(err) != fmt.Sprint(werr) {
		t.Fatalf("%q: error %v, DecodeChatbotEvent says %v", data, err, werr)
	}
	if err != nil {
		return
	}
	if h.Cid != ev.Info.Cid || string(h.Name) != ev.Name() {
		t.Fatalf("%q: read cid %q name %q, DecodeChatbotEvent reads %q %q", data, h.Cid, h.Name, ev.Info.Cid, ev.Name())
	}
}

// checkSplit holds SplitChatbotEvents, which reads a list in one pass, to
// SplitEvents and DecodeChatbotHead on each of its events.
func checkSplit(t *testing.T, data []byte) {
	t.Helper()
	want, werr := spec.SplitEvents(data)
	got, err := spec.SplitChatbotEvents(data)
	if fmt.Sprint(err) != fmt.Sprint(werr) {
		t.Fatalf("%q: error %v, SplitEvents says %v", data, err, werr)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d events, SplitEvents says %d", data, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Raw, want[i]) {
			t.Fatalf("%q: event %d is %q, SplitEvents says %q", data, i, got[i].Raw, want[i])
		}
		if got[i].Err == nil && !json.Valid(got[i].Raw) {
			t.Fatalf("%q: event %d read without error but is not JSON", data, i)
		}
		checkHead(t, got[i].Raw)
		wh, werr := spec.DecodeChatbotHead(want[i])
		if got[i].Head != wh || fmt.Sprint(got[i].Err) != fmt.Sprint(werr) {
			t.Fatalf("%q: event %d reads %+v (%v) in a list, %+v (%v) alone", data, i, got[i].Head, got[i].Err, wh, werr)
		}
	}
}
