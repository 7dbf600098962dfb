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
	// A key written with escapes cannot be seen that way, so a payload
	// with any escape is decoded. FuzzFindScalar holds the shortcut to
	// the plain reading.
	if bytes.IndexByte(raw, '\\') < 0 && !mentionsAny(raw, paths) {
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

// mentionsAny reports whether one of the paths' last keys occurs in raw
// as a whole JSON string.
func mentionsAny(raw []byte, paths []string) bool {
	for _, p := range paths {
		leaf := p[strings.LastIndexByte(p, '.')+1:]
		if leaf == "" {
			return true // an empty key: nothing to look for, so decode
		}
		for rest, off := raw, 0; ; {
			i := bytes.Index(rest, []byte(leaf))
			if i < 0 {
				break
			}
			at := off + i
			if at > 0 && raw[at-1] == '"' && at+len(leaf) < len(raw) && raw[at+len(leaf)] == '"' {
				return true
			}
			off = at + 1
			rest = raw[off:]
		}
	}
	return false
}
