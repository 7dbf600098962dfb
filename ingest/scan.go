package ingest

import (
	"bytes"
	"encoding/json"

	"github.com/chattap/chattap/spec"
)

// The taps need only two things of a Chatbot API event: its conversation
// (info.cid) and its name (packet.name, else packet.event); the payload is
// kept verbatim. spec.DecodeChatbotEvent and spec.SplitEvents decode
// everything with reflection, and the profile of BenchmarkTapWebhook showed
// them as a sixth of the tap's CPU: encoding/json scans a reply four times
// (validate and split the list, then validate and decode each event) and
// allocates for every field. The scanners here validate once with
// json.Valid and then only walk the bytes, reading exactly the fields
// spec would, with the same rules: key names matched as encoding/json
// matches them (exact, else case-insensitively), the last of duplicate
// keys winning, values of an unexpected type ignored, and spec.Str's
// reading of scalars. Anything they do not handle themselves (invalid
// JSON, a body that is not a list, escaped or non-ASCII text) goes to spec,
// so errors and edge cases are spec's own.

// chatbotHead is what the taps read of a Chatbot API event.
type chatbotHead struct {
	cid, name, event spec.Str
}

// Name is the event's name, as spec.ChatbotEvent.Name.
func (h *chatbotHead) Name() string {
	if h.name != "" {
		return string(h.name)
	}
	return string(h.event)
}

// decodeChatbotHead reads data as spec.DecodeChatbotEvent would. valid
// says data is already known to be valid JSON.
func decodeChatbotHead(data []byte, valid bool) (chatbotHead, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' || (!valid && !json.Valid(trimmed)) {
		ev, err := spec.DecodeChatbotEvent(data)
		return chatbotHead{cid: ev.Info.Cid, name: ev.Packet.Name, event: ev.Packet.Event}, err
	}
	var h chatbotHead
	s := walker{b: trimmed}
	s.object(func(key []byte, escaped bool, val []byte) {
		switch {
		case val[0] != '{':
		case keyIs(key, escaped, "info"):
			(&walker{b: val}).object(func(key []byte, escaped bool, val []byte) {
				if keyIs(key, escaped, "cid") {
					h.cid = readStr(val)
				}
			})
		case keyIs(key, escaped, "packet"):
			(&walker{b: val}).object(func(key []byte, escaped bool, val []byte) {
				switch {
				case keyIs(key, escaped, "name"):
					h.name = readStr(val)
				case keyIs(key, escaped, "event"):
					h.event = readStr(val)
				}
			})
		}
	})
	return h, nil
}

// splitEvents is spec.SplitEvents. A list is split here, its events
// aliasing body; valid reports that each event is valid JSON.
func splitEvents(body []byte) (events []json.RawMessage, valid bool, err error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '[' || !json.Valid(trimmed) {
		events, err = spec.SplitEvents(body)
		return events, false, err
	}
	s := walker{b: trimmed}
	s.array(func(e []byte) {
		if isEmptyObject(e) || bytes.Equal(e, []byte("null")) {
			return
		}
		events = append(events, e)
	})
	return events, true, nil
}

func isEmptyObject(b []byte) bool {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	return len(bytes.TrimSpace(b[1:len(b)-1])) == 0
}

// keyIs matches a key as encoding/json matches it to a field's name:
// exactly, else under Unicode case folding (bytes.EqualFold). An escaped
// key is unescaped first.
func keyIs(key []byte, escaped bool, name string) bool {
	if escaped || !plainASCII(key) {
		var k string
		if json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k) != nil {
			return false
		}
		key = []byte(k)
	}
	return string(key) == name || bytes.EqualFold(key, []byte(name))
}

// readStr reads a value as spec.Str does; a plain ASCII string without
// escapes, the usual case, without allocating more than the string.
func readStr(val []byte) spec.Str {
	if len(val) >= 2 && val[0] == '"' && plainASCII(val[1:len(val)-1]) {
		return spec.Str(val[1 : len(val)-1])
	}
	var s spec.Str
	_ = s.UnmarshalJSON(val)
	return s
}

func plainASCII(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

// walker walks JSON already known to be valid.
type walker struct {
	b []byte
	i int
}

func (w *walker) space() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// value skips the value at w.i and returns its bytes.
func (w *walker) value() []byte {
	start := w.i
	switch w.b[w.i] {
	case '"':
		w.str()
	case '{', '[':
		depth := 0
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case '"':
				w.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			w.i++
			if depth == 0 {
				break
			}
		}
	default:
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return w.b[start:w.i]
			}
			w.i++
		}
	}
	return w.b[start:w.i]
}

// str skips the string at w.i and reports whether it held an escape.
func (w *walker) str() (escaped bool) {
	w.i++ // opening quote
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case '\\':
			escaped = true
			w.i += 2
			continue
		case '"':
			w.i++
			return escaped
		}
		w.i++
	}
	return escaped
}

// object calls fn with each member of the object at w.i: its key without
// the quotes, whether the key holds an escape, and its value.
func (w *walker) object(fn func(key []byte, escaped bool, val []byte)) {
	w.space()
	w.i++ // {
	for {
		w.space()
		if w.b[w.i] == '}' {
			w.i++
			return
		}
		start := w.i
		escaped := w.str()
		key := w.b[start+1 : w.i-1]
		w.space()
		w.i++ // :
		w.space()
		fn(key, escaped, w.value())
		w.space()
		if w.b[w.i] == ',' {
			w.i++
		}
	}
}

// array calls fn with each element of the array at w.i.
func (w *walker) array(fn func(elem []byte)) {
	w.space()
	w.i++ // [
	for {
		w.space()
		if w.b[w.i] == ']' {
			w.i++
			return
		}
		fn(w.value())
		w.space()
		if w.b[w.i] == ',' {
			w.i++
		}
	}
}
