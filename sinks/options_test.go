package sinks_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/sinks"
)

func TestOptionsValidateNamesEveryBadVariable(t *testing.T) {
	o := sinks.Options{
		Delivery: sinks.DeliveryOptions{MaxDeliveries: -1, BatchSize: 3000, Start: "middle"},
		Segment:  sinks.SegmentOptions{WriteKey: "wk_secret_value", Endpoint: "ftp://x"},
		Webhook:  sinks.WebhookOptions{URL: "nota url?token=hush", Headers: "no colon here", Timeout: -time.Second},
	}
	err := o.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"CHATTAP_SINK_MAX_DELIVERIES", "CHATTAP_SINK_BATCH_SIZE", "CHATTAP_SINK_START",
		"CHATTAP_SEGMENT_ENDPOINT", "CHATTAP_WEBHOOK_SINK_URL", "CHATTAP_WEBHOOK_SINK_HEADERS", "CHATTAP_WEBHOOK_SINK_TIMEOUT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	for _, secret := range []string{"wk_secret_value", "hush"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error repeats a secret: %v", err)
		}
	}
	if err := (sinks.Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
}

// TestEnvTags checks that every setting carries the tags main's config
// reader and `chattap config` need.
func TestEnvTags(t *testing.T) {
	for _, v := range []any{sinks.DeliveryOptions{}, sinks.SegmentOptions{}, sinks.WebhookOptions{}, sinks.FileOptions{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			f := typ.Field(i)
			if env := f.Tag.Get("env"); !strings.HasPrefix(env, "CHATTAP_") || f.Tag.Get("help") == "" {
				t.Errorf("%s.%s: env %q, help %q", typ.Name(), f.Name, env, f.Tag.Get("help"))
			}
		}
	}
}

func TestNewBuildsTheEnabledSinks(t *testing.T) {
	var out syncBuffer
	ss, err := sinks.New(sinks.Options{
		Segment: sinks.SegmentOptions{WriteKey: "wk"},
		File:    sinks.FileOptions{Path: "-"},
	}, sinks.Deps{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range ss {
		names = append(names, s.Name())
		_ = s.Close(t.Context())
	}
	if strings.Join(names, ",") != "segment,file" {
		t.Errorf("sinks %v", names)
	}
}
