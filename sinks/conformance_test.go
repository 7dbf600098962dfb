package sinks_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/sinks/sinkstest"
)

func TestConformance(t *testing.T) {
	tests := []struct {
		name    string
		harness func(t *testing.T) sinkstest.Harness
	}{
		{"segment", func(t *testing.T) sinkstest.Harness {
			r := sinkstest.NewReceiver(t, writeKey)
			return sinkstest.Harness{Sink: newSegmentTimeout(t, r, patient(), patientTimeout), Received: r.Messages}
		}},
		{"webhook", func(t *testing.T) sinkstest.Harness {
			r := sinkstest.NewReceiver(t, writeKey)
			return sinkstest.Harness{Sink: newWebhookTimeout(t, r, patient(), patientTimeout), Received: r.Messages}
		}},
		{"file", func(t *testing.T) sinkstest.Harness {
			path := filepath.Join(t.TempDir(), "events.jsonl")
			s, err := sinks.NewFile(sinks.FileOptions{Path: path, Fsync: true}, fast(), sinks.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			return sinkstest.Harness{Sink: s, Received: func() map[string]json.RawMessage { return linesByID(readFile(t, path)) }}
		}},
		{"file-stdout", func(t *testing.T) sinkstest.Harness {
			var out syncBuffer
			s, err := sinks.NewFile(sinks.FileOptions{Path: "-"}, fast(), sinks.Deps{Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			return sinkstest.Harness{Sink: s, Received: func() map[string]json.RawMessage { return linesByID(out.Bytes()) }}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sinkstest.Conformance(t, tt.harness)
		})
	}
}
