package mapper

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/chattap/chattap/spec"
)

// lookup returns the first non-empty scalar found at one of the dotted
// paths of a JSON object, "" when none holds one. It is for fields whose
// name only configuration knows (CHATTAP_USER_ID_FIELD), so it decodes
// no deeper than a path goes.
func lookup(raw []byte, paths ...string) string {
	// Most payloads do not hold the field at all: seeing that its name is
	// nowhere in the bytes is far cheaper than decoding them.
	mentioned := false
	for _, p := range paths {
		leaf := p[strings.LastIndexByte(p, '.')+1:]
		if i := bytes.Index(raw, []byte(leaf)); i > 0 && raw[i-1] == '"' && i+len(leaf) < len(raw) && raw[i+len(leaf)] == '"' {
			mentioned = true
			break
		}
	}
	if !mentioned {
		return ""
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return ""
	}
	for _, p := range paths {
		if s := walk(top, p); s != "" {
			return s
		}
	}
	return ""
}

func walk(obj map[string]json.RawMessage, path string) string {
	for {
		key, rest, nested := strings.Cut(path, ".")
		v, ok := obj[key]
		if !ok {
			return ""
		}
		if !nested {
			var s spec.Str
			_ = s.UnmarshalJSON(v)
			return string(s)
		}
		obj = nil
		if json.Unmarshal(v, &obj) != nil || obj == nil {
			return ""
		}
		path = rest
	}
}

// unmarshalLenient decodes what fits of a JSON value into v: a field of
// an unexpected type is skipped, the way Userlike's payloads need.
func unmarshalLenient(data []byte, v any) bool {
	if len(data) == 0 {
		return false
	}
	err := json.Unmarshal(data, v)
	if _, ok := err.(*json.UnmarshalTypeError); ok {
		return true
	}
	return err == nil
}

// isObject reports whether data is a JSON object, at a glance: the
// tolerant decoders take anything else for an empty one.
func isObject(data []byte) bool {
	data = bytes.TrimSpace(data)
	return len(data) > 0 && data[0] == '{'
}
