package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/spec"
)

func TestEnsureIsIdempotent(t *testing.T) {
	s := brokertest.Start(t)
	ctx := t.Context()
	// Start already ran Ensure once; a second run with other sizes updates.
	if err := broker.Ensure(ctx, s.JS, broker.StreamOptions{Retention: time.Hour}); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	st, err := s.JS.Stream(ctx, spec.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxAge; got != time.Hour {
		t.Errorf("raw MaxAge = %v, want 1h after update", got)
	}
	if err := broker.Check(ctx, s.JS); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestSettingsRoundTrip(t *testing.T) {
	s := brokertest.Start(t)
	ctx := t.Context()
	a, err := broker.OpenSettings(ctx, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Current().RecordLiveChatEvents {
		t.Fatal("default settings should record")
	}
	b, err := broker.OpenSettings(ctx, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, spec.Settings{RecordLiveChatEvents: false}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Current().RecordLiveChatEvents {
		if time.Now().After(deadline) {
			t.Fatal("watcher never saw the change")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEnsureOnExternalServer declares everything on the machine's own
// server, which on these machines is nats-server 2.9.
func TestEnsureOnExternalServer(t *testing.T) {
	url := brokertest.ExternalURL(t)
	nc, js := brokertest.Connect(t, url)
	for range 2 {
		if err := broker.Ensure(t.Context(), js, broker.StreamOptions{}); err != nil {
			t.Fatalf("Ensure on %s (server %s): %v", url, nc.ConnectedServerVersion(), err)
		}
	}
	if err := broker.Check(t.Context(), js); err != nil {
		t.Fatal(err)
	}
}

func TestSecondServerOnOneStoreIsRefused(t *testing.T) {
	s := brokertest.Start(t)
	_, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: s.Dir})
	if !errors.Is(err, broker.ErrStoreInUse) {
		t.Fatalf("second server on %s: %v, want ErrStoreInUse", s.Dir, err)
	}
	s.Stop()
	again, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: s.Dir})
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	again.Shutdown()
}
