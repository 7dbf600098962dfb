//go:build faults

package faults_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
)

// chattap is one chattap child process. Its log (standard error) is
// appended to Log across restarts, its standard output to Log+".out"; Start after Kill or Stop runs it again
// with the same environment, port and data directory.
type chattap struct {
	t    *testing.T
	Name string
	Addr string // 127.0.0.1:port of its HTTP listener
	Log  string
	env  []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// newChattap prepares (and starts) a chattap child with env on top of a
// clean environment. It is killed when the test ends.
func newChattap(t *testing.T, name string, env map[string]string) *chattap {
	t.Helper()
	c := &chattap{t: t, Name: name, Addr: fmt.Sprintf("127.0.0.1:%d", brokertest.FreePort(t)), Log: filepath.Join(t.TempDir(), name+".log")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHATTAP_") {
			c.env = append(c.env, kv)
		}
	}
	// CHATTAP_FILE_SINK_PATH empty should turn the file sink off, but an
	// empty variable takes the default "-" (standard output): /dev/null
	// keeps the events out of the log.
	vars := map[string]string{"CHATTAP_LISTEN_ADDR": c.Addr, "CHATTAP_FILE_SINK_PATH": os.DevNull, "CHATTAP_LOG_LEVEL": "info"}
	for k, v := range env {
		vars[k] = v
	}
	for k, v := range vars {
		c.env = append(c.env, k+"="+v)
	}
	t.Cleanup(func() {
		c.Kill()
		if t.Failed() {
			t.Logf("%s's log ends with:\n%s", c.Name, c.Tail(2500))
			if *keepLogs != "" {
				kept := filepath.Join(*keepLogs, fmt.Sprintf("%s-%s-%d.log", t.Name(), c.Name, time.Now().UnixNano()))
				if b, err := os.ReadFile(c.Log); err == nil && os.MkdirAll(*keepLogs, 0o755) == nil && os.WriteFile(kept, b, 0o644) == nil {
					t.Logf("%s's whole log is in %s", c.Name, kept)
				}
			}
		}
	})
	c.Start()
	return c
}

// URL is the base URL of its HTTP listener.
func (c *chattap) URL() string { return "http://" + c.Addr }

// Start runs the process and waits until /readyz answers 200.
func (c *chattap) Start() {
	c.t.Helper()
	if err := c.start(true); err != nil {
		c.t.Fatal(err)
	}
}

// StartUnready runs the process and waits only until /healthz answers.
func (c *chattap) StartUnready() {
	c.t.Helper()
	if err := c.start(false); err != nil {
		c.t.Fatal(err)
	}
}

func (c *chattap) start(ready bool) error {
	c.mu.Lock()
	if c.cmd != nil {
		c.mu.Unlock()
		return fmt.Errorf("%s: already running", c.Name)
	}
	log, err := os.OpenFile(c.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	out, err := os.OpenFile(c.Log+".out", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		log.Close()
		c.mu.Unlock()
		return err
	}
	cmd := exec.Command(chattapBin, "serve")
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = out, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		out.Close()
		c.mu.Unlock()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); out.Close(); close(done) }()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()
	path := "/healthz"
	if ready {
		path = "/readyz"
	}
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("%s exited at start:\n%s", c.Name, c.Tail(4000))
		case <-time.After(25 * time.Millisecond):
		}
		resp, err := client.Get(c.URL() + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("%s not ready in 60s:\n%s", c.Name, c.Tail(4000))
}

// Kill ends the process with SIGKILL, as a crash would.
func (c *chattap) Kill() { c.signal(syscall.SIGKILL) }

// Stop ends it with SIGTERM, a graceful stop.
func (c *chattap) Stop() { c.signal(syscall.SIGTERM) }

func (c *chattap) signal(sig syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(40 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
}

// Alive reports whether the process is still running.
func (c *chattap) Alive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Tail is the last n bytes of its log.
func (c *chattap) Tail(n int) string {
	b, _ := os.ReadFile(c.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Metric sums the samples of a Prometheus metric whose labels contain
// every one of match (e.g. `sink="segment"`).
func (c *chattap) Metric(name string, match ...string) float64 {
	resp, err := http.Get(c.URL() + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	return sumMetric(resp.Body, name, match...)
}

func sumMetric(r io.Reader, name string, match ...string) float64 {
	var sum float64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(rest, m)
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// Ready is /readyz's status and body.
func (c *chattap) Ready(ctx context.Context) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.URL()+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}
