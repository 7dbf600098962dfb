package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a server the bench runs as its own process (chattap, or the
// baseline proxy), so that its memory can be read from /proc.
type child struct {
	name string
	cmd  *exec.Cmd
	addr string // 127.0.0.1:port of its HTTP listener
	out  *tailBuffer
	done chan struct{}
	err  error
}

// freeAddr finds a free loopback port. Another process could take it
// before the child listens; on loopback in a bench run that does not
// happen in practice, and start fails loudly if it does.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startChild runs bin with args and env, and waits until ready answers
// true or the process exits.
func startChild(ctx context.Context, name, bin string, args, env []string, addr string, ready func(context.Context) bool) (*child, error) {
	c := &child{name: name, addr: addr, out: &tailBuffer{max: 16 << 10}, done: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Env = env
	c.cmd.Stdout = c.out
	c.cmd.Stderr = c.out
	// The child dies with the bench, whatever happens to the bench.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-c.done:
			return nil, fmt.Errorf("%s exited before it was ready (%v):\n%s", name, c.err, c.out.String())
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if ready(ctx) {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("%s not ready after 60s:\n%s", name, c.out.String())
		}
	}
}

// memory reads the child's peak and current resident set from
// /proc/<pid>/status, in bytes.
func (c *child) memory() (peak, current int64, err error) {
	return procMemory(c.cmd.Process.Pid)
}

func procMemory(pid int) (peak, current int64, err error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmHWM" && key != "VmRSS") {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		kb, perr := strconv.ParseInt(fields[0], 10, 64)
		if perr != nil {
			continue
		}
		if key == "VmHWM" {
			peak = kb << 10
		} else {
			current = kb << 10
		}
	}
	if peak == 0 {
		return 0, 0, errors.New("no VmHWM in /proc status")
	}
	return peak, current, sc.Err()
}

// cpu is the CPU time the child has used so far, user and system, from
// /proc/<pid>/stat. On a shared machine it varies less than latency:
// what a neighbour takes delays the child but does not add to its CPU.
func (c *child) cpu() (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c.cmd.Process.Pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// from after it. utime and stime are fields 14 and 15 of the line.
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / hz, nil
}

// stop asks the child to stop (SIGTERM) and kills it if it has not within
// 30 s. It is idempotent.
func (c *child) stop() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within 30s: killed", c.name)
	}
	var ee *exec.ExitError
	if c.err != nil && !errors.As(c.err, &ee) {
		return c.err
	}
	return nil
}

// httpReady is a readiness probe: GET url answers 200.
func httpReady(url string) func(context.Context) bool {
	client := &http.Client{Timeout: time.Second}
	return func(ctx context.Context) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		discard(resp.Body)
		return resp.StatusCode == http.StatusOK
	}
}

// tailBuffer keeps the last max bytes a child wrote, to show when it fails.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

// buildChattap builds cmd/chattap once into dir.
func buildChattap(ctx context.Context, dir string, stderr io.Writer) (string, error) {
	bin := filepath.Join(dir, "chattap")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/chattap/chattap/cmd/chattap")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/chattap (run the bench from inside the chattap module): %w", err)
	}
	return bin, nil
}

// baseEnv is the bench's environment without any CHATTAP_* setting, so a
// variable set in the caller's shell cannot change what is measured.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHATTAP_") {
			out = append(out, kv)
		}
	}
	return out
}
