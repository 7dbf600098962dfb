package broker_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/nats-io/nats.go/jetstream"
)

// A store that fills up makes Health say so; once space returns the watch
// restarts JetStream and the stream takes writes again.
func TestFullStoreShowsInHealthAndRecovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("needs a small tmpfs (mount: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := t.Context()
	declare := func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}})
		return err
	}
	if err := declare(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		emb.Watch(wctx, slog.New(slog.DiscardHandler), 100*time.Millisecond, declare)
	}()
	t.Cleanup(func() { stop(); <-done })

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 1<<20); ; {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	publish := func() error {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := js.Publish(pctx, "t", make([]byte, 64<<10))
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); emb.Health() == nil; {
		_ = publish()
		if time.Now().After(deadline) {
			t.Fatal("Health stayed nil with the store full")
		}
	}
	if err := emb.Health(); !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), dir) {
		t.Errorf("Health = %v, want the store path and the reason", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); emb.Health() != nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still unhealthy after space returned: %v", emb.Health())
		}
	}
	if err := publish(); err != nil {
		t.Errorf("publish after recovery: %v", err)
	}
}
