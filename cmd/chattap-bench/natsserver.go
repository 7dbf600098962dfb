package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// startNatsServer runs a nats-server with JetStream as a child, on a
// loopback port and a fresh store under the bench's directory, and
// returns its URL and how to stop it. The binary is built once from the
// module chattap pins (the embedded server's version), never taken from
// the machine: chattap needs 2.11 or newer.
func (b *bench) startNatsServer(ctx context.Context) (string, func(), error) {
	bin := filepath.Join(b.dir, "nats-server")
	if _, err := os.Stat(bin); err != nil {
		b.logf("building nats-server from the pinned module into %s", b.dir)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
		cmd.Stdout, cmd.Stderr = b.log, b.log
		if err := cmd.Run(); err != nil {
			return "", nil, fmt.Errorf("go build nats-server: %w", err)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp(b.dir, "nats-")
	if err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "listen: %s\nmax_payload: 8MB\njetstream { store_dir: %q }\n", addr, filepath.Join(dir, "js")), 0o600); err != nil {
		return "", nil, err
	}
	ch, err := startChild(ctx, "nats-server", bin, []string{"-c", conf}, baseEnv(), addr, func(context.Context) bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if err != nil {
		return "", nil, err
	}
	b.children = append(b.children, ch)
	return "nats://" + addr, func() { _ = ch.stop() }, nil
}
