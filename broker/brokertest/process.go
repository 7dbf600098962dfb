package brokertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServerBinaryEnv names a nats-server binary built from the module chattap
// pins; .ci/run builds one and sets it. When it is unset, ServerBinary
// builds the binary itself, once per version, into the user's cache.
const ServerBinaryEnv = "CHATTAP_TEST_NATS_SERVER"

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// ServerBinary returns the path of a nats-server built from the module
// chattap pins (so a test runs the same server version that is embedded),
// building it the first time it is needed. The machine's own nats-server
// is never used: chattap needs 2.11 or newer.
func ServerBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ServerBinaryEnv); p != "" {
		return p
	}
	buildOnce.Do(func() { buildPath, buildErr = buildServer() })
	if buildErr != nil {
		t.Fatalf("build nats-server: %v", buildErr)
	}
	return buildPath
}

func buildServer() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/nats-io/nats-server/v2").Output()
	if err != nil {
		return "", fmt.Errorf("go list the pinned nats-server: %w", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	path := filepath.Join(cache, "chattap-test", "nats-server-"+strings.TrimSpace(string(out)))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	cmd := exec.Command("go", "build", "-o", path, "github.com/nats-io/nats-server/v2")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, stderr.String())
	}
	return path, nil
}

// Process is a nats-server child process with JetStream, on loopback
// ports chosen at start, for tests that stop, kill and restart a broker
// or run a cluster. Its store, configuration and log are in Dir.
type Process struct {
	t    testing.TB
	bin  string
	Dir  string
	Port int
	// URL is nats://127.0.0.1:Port.
	URL  string
	conf string
	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{}
}

// StartProcess starts a single nats-server with JetStream in its own
// temporary directory and stops it when the test ends. extraConf is
// appended to its configuration file (nats-server's own format).
func StartProcess(t testing.TB, extraConf string) *Process {
	t.Helper()
	p := newProcess(t, t.TempDir(), FreePort(t))
	p.writeConf(extraConf)
	p.Start()
	return p
}

func newProcess(t testing.TB, dir string, port int) *Process {
	return &Process{t: t, bin: ServerBinary(t), Dir: dir, Port: port, URL: fmt.Sprintf("nats://127.0.0.1:%d", port), conf: filepath.Join(dir, "nats.conf")}
}

func (p *Process) writeConf(extra string) {
	p.t.Helper()
	conf := fmt.Sprintf("listen: 127.0.0.1:%d\nserver_name: %s\njetstream { store_dir: %q }\n%s\n",
		p.Port, "n"+strconv.Itoa(p.Port), filepath.Join(p.Dir, "js"), extra)
	if err := os.WriteFile(p.conf, []byte(conf), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// Start starts the server (again, after Stop or Kill) on the same port
// and store, and waits until it accepts connections. It must be called
// from the test's goroutine.
func (p *Process) Start() {
	p.t.Helper()
	if err := p.start(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("nats-server on %d: already running", p.Port)
	}
	logPath := filepath.Join(p.Dir, "nats.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, "-c", p.conf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start nats-server: %w", err)
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(exit) }()
	p.cmd, p.exit = cmd, exit
	p.t.Cleanup(p.Stop)
	addr := fmt.Sprintf("127.0.0.1:%d", p.Port)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exit:
			return fmt.Errorf("nats-server on %d exited at start; its log is %s", p.Port, logPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("nats-server on %d did not accept connections in 15s; its log is %s", p.Port, logPath)
}

// Stop ends the server with SIGTERM (lame duck aside, a clean shutdown)
// and waits for it; Kill ends it with SIGKILL. Both may be called when
// it is not running.
func (p *Process) Stop() { p.signal(syscall.SIGTERM) }

// Kill ends the server at once, as a crash would.
func (p *Process) Kill() { p.signal(syscall.SIGKILL) }

func (p *Process) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exit:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exit
	}
	p.cmd = nil
}

// Cluster is a NATS cluster of child processes on loopback, every node
// with JetStream, for tests of replicated streams and of a node lost.
type Cluster struct {
	Nodes []*Process
}

// StartCluster starts n nats-server processes forming one cluster and
// waits until JetStream has a meta leader. Every node is stopped when the
// test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := make([]int, n)
	routes := make([]int, n)
	for i := range n {
		ports[i], routes[i] = FreePort(t), FreePort(t)
	}
	var urls []string
	for _, r := range routes {
		urls = append(urls, fmt.Sprintf("nats-route://127.0.0.1:%d", r))
	}
	c := &Cluster{}
	for i := range n {
		p := newProcess(t, t.TempDir(), ports[i])
		p.writeConf(fmt.Sprintf("cluster { name: chattap-test\n listen: 127.0.0.1:%d\n routes: [%s] }\n", routes[i], strings.Join(urls, ", ")))
		c.Nodes = append(c.Nodes, p)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, p := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.start() }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	c.WaitJetStream(t, 30*time.Second)
	return c
}

// WaitJetStream waits until the cluster's JetStream can place a stream
// on every node: it has a meta leader and sees every peer online. (An
// answer to an API request alone comes before the peers are known, and a
// replicated stream declared then fails with "no suitable peers".)
func (c *Cluster) WaitJetStream(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		if last = c.placeOnEveryNode(); last == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the cluster's JetStream could not place a stream on all %d nodes in %s: %v", len(c.Nodes), within, last)
}

func (c *Cluster) placeOnEveryNode() error {
	nc, err := nats.Connect(c.URLs(), nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	const probe = "BROKERTEST_PLACEMENT"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: probe, Subjects: []string{"brokertest.placement"}, Storage: jetstream.MemoryStorage, Replicas: len(c.Nodes)}); err != nil {
		return err
	}
	return js.DeleteStream(ctx, probe)
}

// URLs is every node's URL, comma-separated, as CHATTAP_NATS_URL takes it.
func (c *Cluster) URLs() string {
	var urls []string
	for _, p := range c.Nodes {
		urls = append(urls, p.URL)
	}
	return strings.Join(urls, ",")
}

// FreePort is a loopback TCP port no one listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
