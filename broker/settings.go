package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// SettingsStore reads and writes spec.Settings in the chattap_settings
// bucket, and keeps an up-to-date copy for callers on a hot path.
type SettingsStore struct {
	kv      jetstream.KeyValue
	current atomic.Pointer[spec.Settings]
}

// OpenSettings opens the settings bucket (Ensure must have declared it) and
// loads the current value: what is stored, else spec.DefaultSettings.
func OpenSettings(ctx context.Context, js jetstream.JetStream) (*SettingsStore, error) {
	kv, err := js.KeyValue(ctx, spec.BucketSettings)
	if err != nil {
		return nil, fmt.Errorf("open settings bucket: %w", err)
	}
	s := &SettingsStore{kv: kv}
	cur, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	s.current.Store(&cur)
	return s, nil
}

func (s *SettingsStore) load(ctx context.Context) (spec.Settings, error) {
	entry, err := s.kv.Get(ctx, spec.SettingsKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return spec.DefaultSettings, nil
	}
	if err != nil {
		return spec.Settings{}, fmt.Errorf("read settings: %w", err)
	}
	return decodeSettings(entry.Value())
}

func decodeSettings(b []byte) (spec.Settings, error) {
	v := spec.DefaultSettings
	if err := json.Unmarshal(b, &v); err != nil {
		return spec.Settings{}, fmt.Errorf("decode settings: %w", err)
	}
	return v, nil
}

// Current is the last value seen; it never blocks.
func (s *SettingsStore) Current() spec.Settings { return *s.current.Load() }

// Put stores v for every process of the deployment and makes it current here.
func (s *SettingsStore) Put(ctx context.Context, v spec.Settings) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, spec.SettingsKey, b); err != nil {
		return fmt.Errorf("store settings: %w", err)
	}
	s.current.Store(&v)
	return nil
}

// Watch keeps Current up to date with what other processes Put until ctx
// ends. It returns once the watch is set up.
func (s *SettingsStore) Watch(ctx context.Context) error {
	w, err := s.kv.Watch(ctx, spec.SettingsKey, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("watch settings: %w", err)
	}
	go func() {
		defer w.Stop()
		for entry := range w.Updates() {
			if entry == nil || entry.Operation() != jetstream.KeyValuePut {
				continue
			}
			if v, err := decodeSettings(entry.Value()); err == nil {
				s.current.Store(&v)
			}
		}
	}()
	return nil
}
