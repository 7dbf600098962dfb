package spec_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chattap/chattap/spec"
)

// plainScalar is FindScalar's reference: the whole object decoded, each
// path walked, the first non-empty scalar taken.
func plainScalar(raw []byte, paths ...string) string {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return ""
	}
	for _, p := range paths {
		cur := doc
		for key := range strings.SplitSeq(p, ".") {
			obj, _ := cur.(map[string]any)
			cur = obj[key]
		}
		var s string
		switch v := cur.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		case bool:
			s = "false"
			if v {
				s = "true"
			}
		}
		if s != "" {
			return s
		}
	}
	return ""
}

func FuzzFindScalar(f *testing.F) {
	for _, s := range []string{
		`{"external_customer_id":"CRM-1"}`,
		`{"note":"external_customer_idx","external_customer_id":"late"}`,
		`{"info":{"contact":{"external_customer_id":42}}}`,
		`{"custom":{"crm":{"id":true}},"id":"x"}`,
		`{"ext\u0065rnal_customer_id":"escaped key"}`,
		`{"a":null,"b":{"a":"nested"},"a":""}`,
		`{"id":1.5e3,"id":"last wins"}`,
		`[1,2]`, `not json`, `{"id":`,
	} {
		f.Add([]byte(s), "external_customer_id", "info.contact.external_customer_id")
	}
	f.Fuzz(func(t *testing.T, raw []byte, p1, p2 string) {
		if p1 == "" || p2 == "" || !json.Valid(raw) || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			return
		}
		if got, want := spec.FindScalar(raw, p1, p2), plainScalar(raw, p1, p2); got != want {
			t.Fatalf("FindScalar(%q, %q, %q) = %q, the plain reading says %q", raw, p1, p2, got, want)
		}
	})
}
