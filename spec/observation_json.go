package spec

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends o as JSON to dst. Unlike encoding/json, which compacts
// a json.RawMessage, it writes Payload byte for byte, so the stored
// Observation keeps the original event verbatim (Payload must be valid
// JSON; decoders only set it when it is). It allocates nothing beyond dst.
func (o *Observation) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(o.V), 10)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, o.ID)
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, string(o.Source))
	dst = append(dst, `,"kind":`...)
	dst = appendString(dst, o.Kind)
	dst = append(dst, `,"received_at":"`...)
	dst = o.ReceivedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	if o.ConversationID != "" {
		dst = append(dst, `,"conversation_id":`...)
		dst = appendString(dst, o.ConversationID)
	}
	if o.Exchange != "" {
		dst = append(dst, `,"exchange":`...)
		dst = appendString(dst, o.Exchange)
	}
	if o.Index != 0 {
		dst = append(dst, `,"index":`...)
		dst = strconv.AppendInt(dst, int64(o.Index), 10)
	}
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(o.Status), 10)
	if o.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, o.Error)
	}
	if len(o.Payload) > 0 {
		dst = append(dst, `,"payload":`...)
		dst = append(dst, o.Payload...)
	}
	if len(o.PayloadRaw) > 0 {
		dst = append(dst, `,"payload_raw":"`...)
		dst = appendBase64(dst, o.PayloadRaw)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping what JSON requires and
// replacing invalid UTF-8 with U+FFFD, as encoding/json does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const base64Std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// appendBase64 appends standard, padded base64, which is how encoding/json
// reads a []byte back.
func appendBase64(dst, src []byte) []byte {
	for len(src) >= 3 {
		v := uint(src[0])<<16 | uint(src[1])<<8 | uint(src[2])
		dst = append(dst, base64Std[v>>18&0x3f], base64Std[v>>12&0x3f], base64Std[v>>6&0x3f], base64Std[v&0x3f])
		src = src[3:]
	}
	switch len(src) {
	case 1:
		v := uint(src[0]) << 16
		dst = append(dst, base64Std[v>>18&0x3f], base64Std[v>>12&0x3f], '=', '=')
	case 2:
		v := uint(src[0])<<16 | uint(src[1])<<8
		dst = append(dst, base64Std[v>>18&0x3f], base64Std[v>>12&0x3f], base64Std[v>>6&0x3f], '=')
	}
	return dst
}
