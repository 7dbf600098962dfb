package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// Str is a scalar from the wire read as a string: a JSON string as it is, a
// number or a boolean as its literal, and null, an object or an array as "".
// Userlike sends ids as numbers in one place and strings in another.
type Str string

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (s *Str) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		*s = ""
		return nil
	}
	switch b[0] {
	case '"':
		if v, ok := plainString(b); ok {
			*s = Str(v)
			return nil
		}
		var v string
		if json.Unmarshal(b, &v) != nil {
			*s = ""
			return nil
		}
		*s = Str(v)
	case '{', '[', 'n':
		*s = ""
	default: // number, true, false
		*s = Str(b)
	}
	return nil
}

// plainString is the fast path of a JSON string without escapes, which
// is what nearly every id and text is: the same result as json.Unmarshal
// without a second decoder. ok is false for anything it is not sure of.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[len(b)-1] != '"' {
		return "", false
	}
	inner := b[1 : len(b)-1]
	for _, c := range inner {
		if c == '"' || c == '\\' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// String returns s as a string.
func (s Str) String() string { return string(s) }

// Int reads s as an integer; ok is false when it is not one.
func (s Str) Int() (n int64, ok bool) {
	n, err := strconv.ParseInt(string(s), 10, 64)
	return n, err == nil
}

// decodeLenient decodes a JSON object into v, keeping every field that fits
// and skipping the ones of an unexpected type, the way encoding/json already
// does when it reports an UnmarshalTypeError. Only malformed JSON, or JSON
// that is not an object, is an error.
func decodeLenient(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return ErrNotObject
	}
	err := json.Unmarshal(data, v)
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return nil
	}
	return err
}

// ErrNotObject is returned for a payload that is valid JSON but not an object.
var ErrNotObject = errors.New("payload is not a JSON object")

// SplitEvents splits a body that holds zero or more JSON events: an empty
// body, null or {} hold none, an object holds itself, and an array holds
// each of its elements (an empty object in an array is skipped). Each event
// is returned verbatim. A body that is not JSON is an error.
func SplitEvents(body []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil, nil
	}
	switch trimmed[0] {
	case '{':
		if !json.Valid(trimmed) {
			return nil, errors.New("reply is not valid JSON")
		}
		if emptyObject(trimmed) {
			return nil, nil
		}
		return []json.RawMessage{trimmed}, nil
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, err
		}
		out := list[:0]
		for _, e := range list {
			e = bytes.TrimSpace(e)
			if emptyObject(e) || bytes.Equal(e, []byte("null")) {
				continue
			}
			out = append(out, e)
		}
		return out, nil
	}
	if !json.Valid(trimmed) {
		return nil, errors.New("reply is not valid JSON")
	}
	return nil, ErrNotObject
}

func emptyObject(b []byte) bool {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	return len(bytes.TrimSpace(b[1:len(b)-1])) == 0
}
