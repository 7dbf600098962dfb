package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamOptions size chattap's streams and buckets.
type StreamOptions struct {
	// Replicas of every stream and bucket (1 on a single server, 3 on a
	// cluster).
	Replicas int
	// Retention is how long CHATTAP_RAW and CHATTAP_EVENTS keep messages.
	Retention time.Duration
	// DLQRetention is how long CHATTAP_DLQ keeps them.
	DLQRetention time.Duration
	// ConversationTTL forgets a conversation's state when it had no event
	// for this long.
	ConversationTTL time.Duration
	// Duplicates is the window in which JetStream drops a message whose
	// Nats-Msg-Id it has already stored.
	Duplicates time.Duration
}

// DefaultStreamOptions are the sizes used when nothing else is configured.
var DefaultStreamOptions = StreamOptions{
	Replicas:        1,
	Retention:       7 * 24 * time.Hour,
	DLQRetention:    30 * 24 * time.Hour,
	ConversationTTL: 7 * 24 * time.Hour,
	// JetStream keeps every id of the window in memory (100 bytes or more
	// each, from a heap profile under load), so the window is sized to what needs it: the tap's
	// retries (seconds) and a mapper's redelivery after its ack wait
	// (30 s). Older duplicates are caught by the mapper's applied-id set
	// and, for events, by Segment's own messageId check.
	Duplicates: 2 * time.Minute,
}

func (o StreamOptions) withDefaults() StreamOptions {
	d := DefaultStreamOptions
	if o.Replicas <= 0 {
		o.Replicas = d.Replicas
	}
	if o.Retention <= 0 {
		o.Retention = d.Retention
	}
	if o.DLQRetention <= 0 {
		o.DLQRetention = d.DLQRetention
	}
	if o.ConversationTTL <= 0 {
		o.ConversationTTL = d.ConversationTTL
	}
	if o.Duplicates <= 0 {
		o.Duplicates = d.Duplicates
	}
	return o
}

// StreamConfigs are the stream configurations Ensure declares. They use
// only fields a nats-server 2.9 knows.
func StreamConfigs(o StreamOptions) []jetstream.StreamConfig {
	o = o.withDefaults()
	stream := func(name, subjects, desc string, age time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
			MaxAge:      age,
			Duplicates:  min(o.Duplicates, age),
			Discard:     jetstream.DiscardOld,
		}
	}
	return []jetstream.StreamConfig{
		stream(spec.StreamRaw, spec.SubjectRawPrefix+">", "chattap: every conversation event as a tap saw it", o.Retention),
		stream(spec.StreamEvents, spec.SubjectEventsPrefix+">", "chattap: Segment Live Chat events", o.Retention),
		stream(spec.StreamDLQ, spec.SubjectDLQPrefix+">", "chattap: events a sink could not deliver", o.DLQRetention),
	}
}

// Ensure creates chattap's streams and KV buckets, or updates them to o.
// It is idempotent and safe to run from every process at start.
func Ensure(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	o = o.withDefaults()
	for _, cfg := range StreamConfigs(o) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("declare stream %s: %w", cfg.Name, err)
		}
	}
	buckets := []jetstream.KeyValueConfig{
		{Bucket: spec.BucketConversations, Description: "chattap: conversation state", History: 1, TTL: o.ConversationTTL, Storage: jetstream.FileStorage, Replicas: o.Replicas},
		{Bucket: spec.BucketSettings, Description: "chattap: run-time settings", History: 5, Storage: jetstream.FileStorage, Replicas: o.Replicas},
	}
	for _, cfg := range buckets {
		if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return fmt.Errorf("declare bucket %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}

// Check reports whether the broker answers and every stream and bucket of
// chattap exists; it is what /readyz asks.
func Check(ctx context.Context, js jetstream.JetStream) error {
	for _, name := range []string{spec.StreamRaw, spec.StreamEvents, spec.StreamDLQ} {
		if _, err := js.Stream(ctx, name); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	for _, name := range []string{spec.BucketConversations, spec.BucketSettings} {
		if _, err := js.KeyValue(ctx, name); err != nil {
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				return fmt.Errorf("bucket %s: not found", name)
			}
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	return nil
}
