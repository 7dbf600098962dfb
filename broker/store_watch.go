package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// A stream's file store that fails a write (ENOSPC, EIO) keeps that error
// for ever in nats-server 2.15: a single server neither disables JetStream
// nor retries, it stops answering publishes to that stream until the
// stream is loaded again. Nothing outside the process sees it but the
// server's own healthz. So the embedded broker watches it, says so once,
// loudly, and, once a test write to the store works again, restarts
// JetStream on the same store (which loads the streams and consumers from
// disk, the write error gone) and declares the streams and buckets again.

// storeProbeSize is what the probe writes before JetStream is restarted:
// a block's worth, so a store with a few free bytes is not taken as
// writable again only to fail the next block.
const storeProbeSize = 1 << 20

// Health is nil while the embedded server's store takes writes, else why
// not ("JetStream store /data unwritable: … no space left on device").
func (e *Embedded) Health() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.storeErr
}

// Watch checks the store every interval until ctx ends. On a write error it
// logs it once with the store path, makes Health say it, and retries, with a
// backoff up to 5 s, a test write then a restart of JetStream followed by
// redeclare (broker.Ensure in serve); Health is nil again once the server
// reports every stream healthy.
func (e *Embedded) Watch(ctx context.Context, log *slog.Logger, interval time.Duration, redeclare func(context.Context) error) {
	wait := interval
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		failing := e.Health() != nil
		if err := e.storeFault(); err == nil {
			if failing {
				e.setHealth(nil)
				log.Info("embedded NATS store writable again: recording resumes", "store", e.storeDir)
			}
			wait = interval
			continue
		} else if !failing {
			e.setHealth(err)
			log.Error("embedded NATS store unwritable: the taps go on but record nothing until it takes writes again; free space on it", "store", e.storeDir, "error", err)
		}
		if err := e.recover(ctx, redeclare); err != nil {
			log.Debug("embedded NATS store still unwritable", "store", e.storeDir, "error", err)
			wait = min(2*wait, 5*time.Second)
			continue
		}
		wait = interval
	}
}

// storeFault is the server's own view of the store: JetStream off, or a
// stream with a write error.
func (e *Embedded) storeFault() error {
	if !e.srv.JetStreamEnabled() {
		if e.srv.JetStreamConfig() == nil && e.jsCfg == nil {
			return nil // never enabled: nothing to watch
		}
		return fmt.Errorf("JetStream store %s: JetStream disabled", e.storeDir)
	}
	h := e.srv.Healthz(&server.HealthzOptions{JSServerOnly: false})
	if h == nil || h.Status == "ok" || !strings.Contains(h.Error, "write error") {
		return nil
	}
	return fmt.Errorf("JetStream store %s unwritable: %s", e.storeDir, h.Error)
}

// recover restarts JetStream when a test write to the store works.
func (e *Embedded) recover(ctx context.Context, redeclare func(context.Context) error) error {
	if err := probeStore(e.storeDir); err != nil {
		return err
	}
	if cfg := e.srv.JetStreamConfig(); cfg != nil {
		e.jsCfg = cfg
	}
	if e.jsCfg == nil {
		return errors.New("no JetStream configuration to restart with")
	}
	if e.srv.JetStreamEnabled() {
		if err := e.srv.ShutdownJetStream(); err != nil {
			return fmt.Errorf("stop JetStream: %w", err)
		}
	}
	// EnableJetStream adds "jetstream" to StoreDir itself.
	cfg := *e.jsCfg
	cfg.StoreDir = e.storeDir
	if err := e.srv.EnableJetStream(&cfg); err != nil {
		return fmt.Errorf("restart JetStream: %w", err)
	}
	if redeclare != nil {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := redeclare(rctx); err != nil {
			return fmt.Errorf("declare streams again: %w", err)
		}
	}
	return e.storeFault()
}

// probeStore writes, syncs and removes storeProbeSize bytes in dir.
func probeStore(dir string) error {
	f, err := os.CreateTemp(dir, ".chattap-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(make([]byte, storeProbeSize))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("test write to %s: %w", filepath.Clean(dir), err)
	}
	return nil
}

func (e *Embedded) setHealth(err error) {
	e.mu.Lock()
	e.storeErr = err
	e.mu.Unlock()
}
