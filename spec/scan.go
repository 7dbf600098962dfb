package spec

import (
	"bytes"
	"encoding/json"
)

// The taps need only two things of a Chatbot API event: its conversation
// (info.cid) and its name (packet.name, else packet.event); the payload is
// kept verbatim. DecodeChatbotEvent and SplitEvents decode everything with
// reflection, and the profile of ingest's BenchmarkTapWebhook showed them
// as a sixth of the tap's CPU: encoding/json scans a reply four times
// (validate and split the list, then validate and decode each event) and
// allocates for every field. DecodeChatbotHead and SplitChatbotEvents
// validate once with json.Valid and then only walk the bytes, reading
// exactly the fields DecodeChatbotEvent would, with the same rules: key
// names matched as encoding/json matches them (exact, else
// case-insensitively), the last of duplicate keys winning, values of an
// unexpected type ignored, and Str's reading of scalars. Anything they do
// not handle themselves (invalid JSON, a body that is not a list, escaped
// or non-ASCII text) goes to the plain decoders, so errors and edge cases
// are theirs. FuzzScanMatchesSpec holds them to the plain decoders.

// ChatbotHead is what a tap reads of a Chatbot API event: the fields of
// ChatbotEvent that name its conversation and its event.
type ChatbotHead struct {
	// Cid is info.cid.
	Cid Str
	// Name is the event's name, as ChatbotEvent.Name gives it:
	// packet.name, else packet.event.
	Name Str
}

// DecodeChatbotHead reads info.cid, packet.name and packet.event of one
// Chatbot API event, with the results and the error DecodeChatbotEvent
// gives, without decoding the rest.
func DecodeChatbotHead(data []byte) (ChatbotHead, error) {
	return decodeChatbotHead(data, false)
}

// HeadedEvent is one event of a body that holds several, verbatim, with
// its head, or the error DecodeChatbotEvent gives for it.
type HeadedEvent struct {
	Raw  json.RawMessage
	Head ChatbotHead
	Err  error
}

// SplitChatbotEvents is SplitEvents followed by DecodeChatbotHead on each
// event, with the same results, in one pass over a list: a list is split
// here, its events aliasing body and known to be valid JSON.
func SplitChatbotEvents(body []byte) ([]HeadedEvent, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '[' || !json.Valid(trimmed) {
		events, err := SplitEvents(body)
		if err != nil {
			return nil, err
		}
		out := make([]HeadedEvent, len(events))
		for i, raw := range events {
			h, err := decodeChatbotHead(raw, false)
			out[i] = HeadedEvent{Raw: raw, Head: h, Err: err}
		}
		return out, nil
	}
	// Counted first, so the list is allocated once at its size.
	n := 0
	(&walker{b: trimmed}).array(func(e []byte) {
		if !emptyObject(e) && !bytes.Equal(e, []byte("null")) {
			n++
		}
	})
	out := make([]HeadedEvent, 0, n)
	s := walker{b: trimmed}
	s.array(func(e []byte) {
		if emptyObject(e) || bytes.Equal(e, []byte("null")) {
			return
		}
		h, err := decodeChatbotHead(e, true)
		out = append(out, HeadedEvent{Raw: e, Head: h, Err: err})
	})
	return out, nil
}

// decodeChatbotHead reads data as DecodeChatbotEvent would. valid says
// data is already known to be valid JSON.
func decodeChatbotHead(data []byte, valid bool) (ChatbotHead, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' || (!valid && !json.Valid(trimmed)) {
		ev, err := DecodeChatbotEvent(data)
		return ChatbotHead{Cid: ev.Info.Cid, Name: Str(ev.Name())}, err
	}
	var h ChatbotHead
	var name, event Str
	s := walker{b: trimmed}
	s.object(func(key []byte, escaped bool, val []byte) {
		switch {
		case val[0] != '{':
		case keyIs(key, escaped, "info"):
			(&walker{b: val}).object(func(key []byte, escaped bool, val []byte) {
				if keyIs(key, escaped, "cid") {
					h.Cid = readStr(val)
				}
			})
		case keyIs(key, escaped, "packet"):
			(&walker{b: val}).object(func(key []byte, escaped bool, val []byte) {
				switch {
				case keyIs(key, escaped, "name"):
					name = readStr(val)
				case keyIs(key, escaped, "event"):
					event = readStr(val)
				}
			})
		}
	})
	h.Name = name
	if h.Name == "" {
		h.Name = event
	}
	return h, nil
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

// readStr reads a value as Str does; a plain ASCII string without
// escapes, the usual case, without allocating more than the string.
func readStr(val []byte) Str {
	if len(val) >= 2 && val[0] == '"' && plainASCII(val[1:len(val)-1]) {
		return Str(val[1 : len(val)-1])
	}
	var s Str
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
