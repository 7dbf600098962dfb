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

// TestOptionsValidateRefusesAnAckWaitShorterThanTheRequests: a
// CHATTAP_SINK_ACK_WAIT under three request timeouts of an HTTP sink that
// is on would have the watchdog give up on requests still being answered.
func TestOptionsValidateRefusesAnAckWaitShorterThanTheRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    sinks.Options
		want []string // variables the error names; none: valid
	}{
		{name: "webhook", o: sinks.Options{
			Delivery: sinks.DeliveryOptions{AckWait: time.Second},
			Webhook:  sinks.WebhookOptions{URL: "http://127.0.0.1:1/hook", Timeout: 5 * time.Second},
		}, want: []string{"CHATTAP_SINK_ACK_WAIT", "CHATTAP_WEBHOOK_SINK_TIMEOUT"}},
		{name: "segment default timeout", o: sinks.Options{
			Delivery: sinks.DeliveryOptions{AckWait: 29 * time.Second},
			Segment:  sinks.SegmentOptions{WriteKey: "wk"},
		}, want: []string{"CHATTAP_SINK_ACK_WAIT", "CHATTAP_SEGMENT_TIMEOUT"}},
		{name: "long enough", o: sinks.Options{
			Delivery: sinks.DeliveryOptions{AckWait: 15 * time.Second},
			Webhook:  sinks.WebhookOptions{URL: "http://127.0.0.1:1/hook", Timeout: 5 * time.Second},
		}},
		{name: "derived", o: sinks.Options{
			Webhook: sinks.WebhookOptions{URL: "http://127.0.0.1:1/hook", Timeout: time.Minute},
		}},
		{name: "no HTTP sink", o: sinks.Options{
			Delivery: sinks.DeliveryOptions{AckWait: time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Validate: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate: nil, want an error")
			}
			for _, name := range tc.want {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error does not name %s: %v", name, err)
				}
			}
		})
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
