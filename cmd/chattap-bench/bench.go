package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"

	"runtime"
	"strconv"
	"strings"
	"time"
)

// writeKey is the Segment write key chattap is given; the receiver
// refuses any other.
const writeKey = "bench-write-key"

// bench is one run: the servers it started and what it measured.
type bench struct {
	cfg      *config
	log      io.Writer
	dir      string
	bin      string
	work     *workload
	run      uint32
	botURL   string
	recv     *receiver
	recvURL  string
	servers  []*http.Server
	children []*child
	ack      string // CHATTAP_TAP_ACK of the e2e, conns and state scenarios
	defAck   string // chattap's default
	round    int    // of the tap-overhead scenarios, in conversation ids
}

func newBench(ctx context.Context, cfg *config, log io.Writer) (*bench, error) {
	dir, err := os.MkdirTemp("", "chattap-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, log: log, dir: dir, work: newWorkload(cfg.seed), run: rand.Uint32()}
	b.bin = cfg.chattapBin
	if b.bin == "" {
		b.logf("building cmd/chattap into %s", dir)
		if b.bin, err = buildChattap(ctx, dir, log); err != nil {
			b.close()
			return nil, err
		}
	}
	if b.defAck, err = defaultAck(ctx, b.bin); err != nil {
		b.close()
		return nil, err
	}
	b.ack = cfg.ack
	if b.ack == "" {
		b.ack = b.defAck
	}
	addr, err := b.serve(botHandler(b.work))
	if err != nil {
		b.close()
		return nil, err
	}
	b.botURL = "http://" + addr + "/bot/webhook"
	b.recv = newReceiver(writeKey)
	if addr, err = b.serve(b.recv); err != nil {
		b.close()
		return nil, err
	}
	b.recvURL = "http://" + addr
	return b, nil
}

// serve runs h on a loopback port of the bench's own process.
func (b *bench) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	b.servers = append(b.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

func (b *bench) close() {
	for _, c := range b.children {
		_ = c.stop()
	}
	for _, s := range b.servers {
		_ = s.Close()
	}
	if b.cfg.keep {
		b.logf("kept %s", b.dir)
		return
	}
	_ = os.RemoveAll(b.dir)
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// defaultAck asks `chattap config` for CHATTAP_TAP_ACK's default.
func defaultAck(ctx context.Context, bin string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, "config")
	cmd.Env = append(baseEnv(), "CHATTAP_DATA_DIR="+os.TempDir())
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("chattap config: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "CHATTAP_TAP_ACK" {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("chattap config does not list CHATTAP_TAP_ACK")
}

// chattapOptions are the settings of one chattap child.
type chattapOptions struct {
	ack        string
	dataDir    string // "": a fresh one
	natsListen bool   // expose the embedded NATS server, to read the state bucket
	ingestOnly bool   // CHATTAP_ROLES=ingest: no events reach the receiver
	env        []string
}

// chattap is a running chattap child and how to reach it.
type chattap struct {
	*child
	url     string // http://127.0.0.1:port
	natsURL string
	dataDir string
}

func (b *bench) startChattap(ctx context.Context, name string, o chattapOptions) (*chattap, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if o.dataDir == "" {
		if o.dataDir, err = os.MkdirTemp(b.dir, name+"-"); err != nil {
			return nil, err
		}
	}
	env := append(baseEnv(),
		"CHATTAP_LISTEN_ADDR="+addr,
		"CHATTAP_DATA_DIR="+o.dataDir,
		"CHATTAP_BOT_WEBHOOK_URL="+b.botURL,
		"CHATTAP_SEGMENT_WRITE_KEY="+writeKey,
		"CHATTAP_SEGMENT_ENDPOINT="+b.recvURL,
		"CHATTAP_FILE_SINK_PATH=",
		"CHATTAP_LOG_LEVEL=warn",
	)
	if o.ack != "" {
		env = append(env, "CHATTAP_TAP_ACK="+o.ack)
	}
	env = append(env, b.cfg.childEnv...)
	env = append(env, o.env...)
	c := &chattap{url: "http://" + addr, dataDir: o.dataDir}
	if o.natsListen {
		natsAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		env = append(env, "CHATTAP_NATS_LISTEN="+natsAddr)
		c.natsURL = "nats://" + natsAddr
	}
	ch, err := startChild(ctx, name, b.bin, []string{"serve"}, env, addr, httpReady(c.url+"/readyz"))
	if err != nil {
		return nil, err
	}
	b.children = append(b.children, ch)
	c.child = ch
	return c, nil
}

func (b *bench) startBaseline(ctx context.Context) (*child, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	ch, err := startChild(ctx, "baseline", self, []string{baselineFlag, addr, b.botURL}, baseEnv(), addr, httpReady("http://"+addr+"/readyz"))
	if err != nil {
		return nil, "", err
	}
	b.children = append(b.children, ch)
	return ch, "http://" + addr + "/userlike/webhook", nil
}

// counters reads chattap's own counts of what went wrong on the record
// path from /metrics.
func counters(ctx context.Context, base string) map[string]float64 {
	out := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return out
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] += v
		}
	}
	return out
}

// waitDelivered waits until the receiver holds want distinct messages,
// gives up after limit or when nothing new arrived for stall, and returns
// what it holds then.
func (b *bench) waitDelivered(ctx context.Context, want int, limit, stall time.Duration) receiverStats {
	deadline := time.Now().Add(limit)
	lastCount, lastChange := -1, time.Now()
	for {
		st := b.recv.stats()
		if st.Distinct >= want || ctx.Err() != nil || time.Now().After(deadline) {
			return st
		}
		if st.Distinct != lastCount {
			lastCount, lastChange = st.Distinct, time.Now()
		} else if time.Since(lastChange) > stall {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// machine says what the figures were measured on.
func machine() string {
	model := ""
	if f, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(f), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if f, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(f), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
				if kb, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64); err == nil {
					mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	return fmt.Sprintf("%d CPUs (GOMAXPROCS %d)%s, %s/%s, %s%s", runtime.NumCPU(), runtime.GOMAXPROCS(0), mem, runtime.GOOS, runtime.GOARCH, runtime.Version(), ifSet(", ", model))
}

func ifSet(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}
