package main

import "testing"

// TestFileSinkPath: the file sink's path as each way of setting it reads,
// beside the other sinks.
func TestFileSinkPath(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		want    string
	}{
		{"unset, no other sink", nil, "-"},
		{"unset, Segment on", []string{"CHATTAP_SEGMENT_WRITE_KEY=wk"}, ""},
		{"empty turns it off", []string{"CHATTAP_FILE_SINK_PATH="}, ""},
		{"chosen beside Segment", []string{"CHATTAP_SEGMENT_WRITE_KEY=wk", "CHATTAP_FILE_SINK_PATH=events.jsonl"}, "events.jsonl"},
		{"stdout chosen beside a webhook", []string{"CHATTAP_WEBHOOK_SINK_URL=http://127.0.0.1:9/x", "CHATTAP_FILE_SINK_PATH=-"}, "-"},
	} {
		c, err := loadConfig(tc.environ)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.Sinks.File.Path != tc.want {
			t.Errorf("%s: file sink path %q, want %q", tc.name, c.Sinks.File.Path, tc.want)
		}
	}
}
