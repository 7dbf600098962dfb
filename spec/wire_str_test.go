package spec

import (
	"encoding/json"
	"testing"
)

// TestStrFastPathMatchesDecoder checks plainString against encoding/json
// on strings with and without escapes, invalid UTF-8 and broken quoting.
func TestStrFastPathMatchesDecoder(t *testing.T) {
	for _, in := range []string{`""`, `"abc"`, `"Grüße"`, `"a\"b"`, `"a\\b"`, `"\u00e9"`, "\"a\xffb\"", `"abc`, `"a"b"`, "\"tab\there\"", `"{not an object}"`} {
		var want string
		if json.Unmarshal([]byte(in), &want) != nil {
			want = ""
		}
		var got Str
		if err := got.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if string(got) != want {
			t.Errorf("Str(%s) = %q, encoding/json says %q", in, got, want)
		}
	}
}
