package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds chattap into a temporary directory: some behaviour
// (signals, a closed standard output) belongs to the process, not to run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chattap")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// child is a chattap process whose log a test reads.
type child struct {
	cmd    *exec.Cmd
	stderr *logBuffer
	exited chan struct{}
	addr   string
}

var listeningAddrRE = regexp.MustCompile(`msg="chattap listening" addr=(\S+)`)

func startChild(t *testing.T, bin string, stdout *os.File, environ ...string) *child {
	t.Helper()
	c := &child{stderr: &logBuffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(bin, "serve")
	c.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CHATTAP_LISTEN_ADDR=127.0.0.1:0", "CHATTAP_DATA_DIR=" + t.TempDir()}, environ...)
	c.cmd.Stdout, c.cmd.Stderr = stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(30 * time.Second):
			_ = c.cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for c.addr == "" {
		if m := listeningAddrRE.FindStringSubmatch(c.stderr.String()); m != nil {
			c.addr = m[1]
			break
		}
		select {
		case <-c.exited:
			t.Fatalf("chattap exited before listening (%v):\n%s", c.cmd.ProcessState, c.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("chattap did not listen within 20s:\n%s", c.stderr)
		}
	}
	return c
}

func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// TestClosedStdoutDoesNotStopChattap: `chattap serve | head`, or a log
// reader that goes away, must not kill the chat with SIGPIPE; the file
// sink's failed writes are retried and counted instead.
func TestClosedStdoutDoesNotStopChattap(t *testing.T) {
	bin := buildBinary(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the reader is gone before the first line
	c := startChild(t, bin, w, "CHATTAP_SINK_FLUSH_INTERVAL=20ms", "CHATTAP_SINK_BACKOFF_MIN=50ms", "CHATTAP_SINK_BACKOFF_MAX=100ms")
	w.Close()
	in := &instance{addr: c.addr}
	if code, _ := in.post(t, "/userlike/webhook", webhook("c-pipe"), nil); code != 200 {
		t.Fatalf("webhook: %d", code)
	}
	deadline := time.Now().Add(20 * time.Second)
	for c.alive() && !strings.Contains(c.stderr.String(), "broken pipe") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !c.alive() {
		t.Fatalf("chattap died writing to a closed standard output (%v):\n%s", c.cmd.ProcessState, c.stderr)
	}
	if !strings.Contains(c.stderr.String(), "broken pipe") {
		t.Fatalf("no failed write was logged:\n%s", c.stderr)
	}
	if code, _ := in.post(t, "/userlike/webhook", webhook("c-pipe-2"), nil); code != 200 {
		t.Errorf("the chat stopped: webhook %d", code)
	}
	if _, body := in.get(t, "/metrics", nil); !strings.Contains(body, `chattap_sink_retried_total{class="write",sink="file"}`) {
		t.Errorf("failed writes are not counted:\n%s", grepLines(body, "retried"))
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("chattap did not stop on SIGTERM")
	}
	if !c.cmd.ProcessState.Success() {
		t.Errorf("chattap exited with %v:\n%s", c.cmd.ProcessState, c.stderr)
	}
}

// TestToolWhoseReaderLeftStopsQuietly: `chattap config | head -1` ends the
// tool as SIGPIPE would (status 141) without an error line, since what
// the reader wanted was printed; only serve keeps going after EPIPE.
func TestToolWhoseReaderLeftStopsQuietly(t *testing.T) {
	bin := buildBinary(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	var stderr strings.Builder
	cmd := exec.Command(bin, "config")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cmd.Stdout, cmd.Stderr = w, &stderr
	err = cmd.Run()
	w.Close()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 128+int(syscall.SIGPIPE) {
		t.Errorf("config into a closed pipe: %v, want exit status %d", err, 128+int(syscall.SIGPIPE))
	}
	if stderr.Len() != 0 {
		t.Errorf("config into a closed pipe printed %q", stderr.String())
	}
}
