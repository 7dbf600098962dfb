package spec

import (
	"bytes"
	"encoding/json"
	"strings"
)

// FindScalar returns the first non-empty scalar (read as Str reads it)
// found at one of the dotted paths of a JSON object, "" when none holds
// one. It is for fields whose name only configuration knows, such as the
// contact field of the userId, so it decodes no deeper than a path goes.
func FindScalar(raw []byte, paths ...string) string {
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
		if s := walkScalar(top, p); s != "" {
			return s
		}
	}
	return ""
}

func walkScalar(obj map[string]json.RawMessage, path string) string {
	for {
		key, rest, nested := strings.Cut(path, ".")
		v, ok := obj[key]
		if !ok {
			return ""
		}
		if !nested {
			var s Str
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
