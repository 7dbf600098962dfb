package spec_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/spec"
)

// validate checks doc against the subset of JSON Schema that chattap's
// schemas use: type, const, enum, required, properties,
// additionalProperties, anyOf, minLength, maxLength, minimum, maximum,
// pattern, items, minItems.
func validate(schema map[string]any, doc any, path string) error {
	if t, ok := schema["type"].(string); ok && !hasType(doc, t) {
		return fmt.Errorf("%s: want %s, have %T", path, t, doc)
	}
	if c, ok := schema["const"]; ok && fmt.Sprint(c) != fmt.Sprint(doc) {
		return fmt.Errorf("%s: want %v, have %v", path, c, doc)
	}
	if enum, ok := schema["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || e == doc
		}
		if !found {
			return fmt.Errorf("%s: %v is not one of %v", path, doc, enum)
		}
	}
	if s, ok := doc.(string); ok {
		if n, ok := schema["minLength"].(float64); ok && float64(len(s)) < n {
			return fmt.Errorf("%s: shorter than %v", path, n)
		}
		if n, ok := schema["maxLength"].(float64); ok && float64(len([]rune(s))) > n {
			return fmt.Errorf("%s: longer than %v", path, n)
		}
		if p, ok := schema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(s) {
			return fmt.Errorf("%s: %q does not match %s", path, s, p)
		}
	}
	if n, ok := doc.(float64); ok {
		if m, ok := schema["minimum"].(float64); ok && n < m {
			return fmt.Errorf("%s: %v below %v", path, n, m)
		}
		if m, ok := schema["maximum"].(float64); ok && n > m {
			return fmt.Errorf("%s: %v above %v", path, n, m)
		}
	}
	if a, ok := doc.([]any); ok {
		if m, ok := schema["minItems"].(float64); ok && float64(len(a)) < m {
			return fmt.Errorf("%s: fewer than %v items", path, m)
		}
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range a {
				if err := validate(items, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	if anyOf, ok := schema["anyOf"].([]any); ok {
		var errs []string
		for _, sub := range anyOf {
			if err := validate(sub.(map[string]any), doc, path); err == nil {
				errs = nil
				break
			} else {
				errs = append(errs, err.Error())
			}
		}
		if errs != nil {
			return fmt.Errorf("%s: none of anyOf: %s", path, strings.Join(errs, "; "))
		}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	for _, r := range asSlice(schema["required"]) {
		if _, ok := obj[r.(string)]; !ok {
			return fmt.Errorf("%s: %s is required", path, r)
		}
	}
	props, _ := schema["properties"].(map[string]any)
	for k, v := range obj {
		sub, ok := props[k].(map[string]any)
		if !ok {
			if schema["additionalProperties"] == false {
				return fmt.Errorf("%s: %s is not allowed", path, k)
			}
			continue
		}
		if err := validate(sub, v, path+"."+k); err != nil {
			return err
		}
	}
	return nil
}

func hasType(doc any, t string) bool {
	switch t {
	case "object":
		_, ok := doc.(map[string]any)
		return ok
	case "string":
		_, ok := doc.(string)
		return ok
	case "number":
		_, ok := doc.(float64)
		return ok
	case "array":
		_, ok := doc.([]any)
		return ok
	case "integer":
		n, ok := doc.(float64)
		return ok && n == math.Trunc(n)
	}
	return true
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func loadSchema(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := spec.Schemas.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s is not JSON: %v", path, err)
	}
	return s
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestObservationsMatchTheirSchema(t *testing.T) {
	schema := loadSchema(t, spec.ObservationSchemaPath)
	at := time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.UTC)
	valid := []spec.Observation{
		{V: 1, ID: "a", Source: spec.SourceChatbotWebhook, Kind: "message", ReceivedAt: at, ConversationID: "c", Exchange: "a", Status: 200, Payload: []byte(`{"packet":{}}`)},
		{V: 1, ID: "a-1", Source: spec.SourceChatbotReply, Kind: "end", ReceivedAt: at, Exchange: "a", Index: 1, Status: 502},
		{V: 1, ID: "b", Source: spec.SourceAddon, Kind: spec.KindUndecodable, ReceivedAt: at, Error: "not json", PayloadRaw: []byte("\x00\x01 raw")},
	}
	for _, o := range valid {
		if err := validate(schema, decode(t, o.AppendJSON(nil)), "observation"); err != nil {
			t.Errorf("%s: %v", o.ID, err)
		}
	}
	invalid := map[string]string{
		"unknown source": `{"v":1,"id":"a","source":"email","kind":"x","received_at":"2026-11-21T10:00:00Z","status":200}`,
		"no id":          `{"v":1,"source":"addon","kind":"x","received_at":"2026-11-21T10:00:00Z","status":200}`,
		"extra field":    `{"v":1,"id":"a","source":"addon","kind":"x","received_at":"2026-11-21T10:00:00Z","status":200,"secret":1}`,
	}
	for name, doc := range invalid {
		if validate(schema, decode(t, []byte(doc)), "observation") == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRecordsMatchTheirSchema(t *testing.T) {
	schema := loadSchema(t, spec.RecordSchemaPath)
	at := time.Date(2026, 11, 21, 10, 0, 0, 123456000, time.UTC)
	valid := []*spec.Record{
		spec.NewRecord("a", at, 200, []*spec.Observation{
			{Source: spec.SourceChatbotWebhook, Kind: "message", ConversationID: "c", Payload: []byte(`{"packet":{}}`)},
			{Source: spec.SourceChatbotReply, Kind: "end", ConversationID: "c", Payload: []byte(`{"name":"end"}`)},
			{Source: spec.SourceChatbotReply, Kind: "message", ConversationID: "other", Payload: []byte(`{"info":{"cid":"other"}}`)},
			{Source: spec.SourceChatbotReply, Kind: spec.KindUndecodable, ConversationID: "c", Error: "not json", PayloadRaw: []byte("\x00\x01 raw")},
		}),
		spec.NewRecord("b", at, 502, []*spec.Observation{{Source: spec.SourceChannelInbound, Kind: spec.KindUndecodable, Error: "not json", PayloadRaw: []byte("x")}}),
	}
	for _, r := range valid {
		if err := validate(schema, decode(t, r.AppendJSON(nil)), "record"); err != nil {
			t.Errorf("%s: %v\n%s", r.ID, err, r.AppendJSON(nil))
		}
	}
	ok := `"v":2,"id":"a","source":"addon","kind":"x","received_at":"2026-11-21T10:00:00Z","partition":3,"status":200`
	invalid := map[string]string{
		"version 1":        `{"v":1,"id":"a","source":"addon","kind":"x","received_at":"2026-11-21T10:00:00Z","partition":3,"status":200,"events":[{"source":"addon","kind":"x"}]}`,
		"no events":        `{` + ok + `,"events":[]}`,
		"events missing":   `{` + ok + `}`,
		"partition 16":     `{"v":2,"id":"a","source":"addon","kind":"x","received_at":"2026-11-21T10:00:00Z","partition":16,"status":200,"events":[{"source":"addon","kind":"x"}]}`,
		"event source":     `{` + ok + `,"events":[{"source":"email","kind":"x"}]}`,
		"event extra":      `{` + ok + `,"events":[{"source":"addon","kind":"x","index":1}]}`,
		"event raw base64": `{` + ok + `,"events":[{"source":"addon","kind":"x","payload_raw":"%%"}]}`,
	}
	for name, doc := range invalid {
		if validate(schema, decode(t, []byte(doc)), "record") == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestMapperGoldenMessagesMatchTheSchema checks every message in the
// mapper's golden files, and that the schema refuses what Segment would.
func TestMapperGoldenMessagesMatchTheSchema(t *testing.T) {
	schema := loadSchema(t, spec.MessageSchemaPath)
	files, err := filepath.Glob("../mapper/testdata/golden/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var golden struct {
			Results []struct {
				Messages []json.RawMessage `json:"messages"`
			} `json:"results"`
		}
		if err := json.Unmarshal(b, &golden); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, r := range golden.Results {
			for _, m := range r.Messages {
				checked++
				if err := validate(schema, decode(t, m), filepath.Base(f)); err != nil {
					t.Errorf("%v\n%s", err, m)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("the golden files hold no messages")
	}
	invalid := map[string]string{
		"no identity":     `{"type":"track","event":"Live Chat Message Sent","messageId":"m","timestamp":"2026-11-21T10:00:00Z"}`,
		"long messageId":  `{"type":"track","event":"Live Chat Message Sent","messageId":"` + strings.Repeat("m", 101) + `","anonymousId":"a","timestamp":"2026-11-21T10:00:00Z"}`,
		"unknown event":   `{"type":"track","event":"Chat Happened","messageId":"m","anonymousId":"a","timestamp":"2026-11-21T10:00:00Z"}`,
		"duration string": `{"type":"track","event":"Live Chat Conversation Ended","messageId":"m","anonymousId":"a","timestamp":"2026-11-21T10:00:00Z","properties":{"conversation_duration":"12"}}`,
	}
	for name, doc := range invalid {
		if validate(schema, decode(t, []byte(doc)), "message") == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
