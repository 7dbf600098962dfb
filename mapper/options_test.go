package mapper_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/metrics"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    mapper.Options
		want []string // substrings of the error, "" for none
	}{
		{name: "zero means defaults", o: mapper.Options{}},
		{name: "every value valid", o: mapper.Options{BotAgentID: "ava", BotAgentName: "Ava", MessageBody: "drop", Events: "started, Sent,RECEIVED", ExtendedEvents: "option-selected,Live Chat Conversation Rated", UserIDField: "custom.crm_id", Timezone: "Europe/Berlin"}},
		{name: "none of the four", o: mapper.Options{Events: "none", ExtendedEvents: "forwarded"}},
		{name: "no userId", o: mapper.Options{UserIDField: "-"}},
		{name: "all wrong at once", o: mapper.Options{MessageBody: "hash", Events: "started,typing", ExtendedEvents: "teleported", UserIDField: "a b", Timezone: "Nowhere/Land"},
			want: []string{"CHATTAP_MESSAGE_BODY", "CHATTAP_EVENTS", "CHATTAP_EXTENDED_EVENTS", "CHATTAP_USER_ID_FIELD", "CHATTAP_TIMEZONE"}},
		{name: "a field path may not end in a dot", o: mapper.Options{UserIDField: "custom."}, want: []string{"CHATTAP_USER_ID_FIELD"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := mapper.New(tc.o); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted invalid options")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

func TestRunnerOptionsValidate(t *testing.T) {
	if err := (mapper.RunnerOptions{}).Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	err := mapper.RunnerOptions{Workers: -1, MaxAckPending: -1, AckWait: time.Millisecond, PublishTimeout: time.Hour}.Validate()
	for _, w := range []string{"CHATTAP_MAPPER_WORKERS", "CHATTAP_MAPPER_MAX_ACK_PENDING", "CHATTAP_MAPPER_ACK_WAIT", "CHATTAP_MAPPER_PUBLISH_TIMEOUT"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not name %s", err, w)
		}
	}
}

// TestEveryOptionIsDocumented checks the tags cmd/chattap reads: every
// configurable field has a CHATTAP_ variable and a help line.
func TestEveryOptionIsDocumented(t *testing.T) {
	for _, v := range []any{mapper.Options{}, mapper.RunnerOptions{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			f := typ.Field(i)
			env := f.Tag.Get("env")
			if env == "-" {
				continue
			}
			if !strings.HasPrefix(env, "CHATTAP_") || f.Tag.Get("help") == "" {
				t.Errorf("%s.%s: env %q, help %q", typ.Name(), f.Name, env, f.Tag.Get("help"))
			}
			if _, ok := f.Tag.Lookup("envDefault"); !ok {
				t.Errorf("%s.%s: no envDefault", typ.Name(), f.Name)
			}
		}
	}
}

func TestUnmappableIsPermanent(t *testing.T) {
	err := error(&mapper.UnmappableError{Reason: "x"})
	if !errors.Is(err, mapper.ErrUnmappable) {
		t.Fatal("UnmappableError does not wrap ErrUnmappable")
	}
}

func TestNilMetricsAreSafe(t *testing.T) {
	var m *metrics.Mapper
	m.Observation("addon", metrics.MapperMapped, time.Millisecond)
	m.Published("identify")
	m.PublishFailed()
	m.StateConflict()
}
