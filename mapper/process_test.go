package mapper_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// buildChattap builds ./cmd/chattap into the test's directory.
func buildChattap(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chattap")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/chattap/chattap/cmd/chattap").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/chattap: %v\n%s", err, out)
	}
	return bin
}

// mapperProcess is `chattap serve` with CHATTAP_ROLES=mapper, a process of
// its own on the NATS server at url.
type mapperProcess struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func startMapperProcess(t *testing.T, bin, url string) *mapperProcess {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHATTAP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "CHATTAP_ROLES=mapper", "CHATTAP_NATS_URL="+url, "CHATTAP_LISTEN_ADDR=127.0.0.1:0",
		"CHATTAP_DATA_DIR="+t.TempDir(), "CHATTAP_MAPPER_WORKERS=4", "CHATTAP_MAPPER_PINNED_TTL=2s",
		"CHATTAP_MAPPER_ACK_WAIT=5s", "CHATTAP_MAPPER_PUBLISH_TIMEOUT=2s", "CHATTAP_LOG_LEVEL=info")
	p := &mapperProcess{cmd: cmd, out: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	cmd.Stdout = lockedWriter{p.mu, p.out}
	cmd.Stderr = lockedWriter{p.mu, p.out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("mapper process %d:\n%s", cmd.Process.Pid, p.out.String())
			p.mu.Unlock()
		}
	})
	return p
}

func (p *mapperProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// TestMapperProcessesSIGKILLed runs chattap's own mapper processes on a
// separate nats-server and SIGKILLs them: the only one mid-backlog, then
// restarted; and the active one while a standby runs and records keep
// arriving. Every conversation must have exactly the events of mapping in
// order, and the standby must take over within a few seconds.
func TestMapperProcessesSIGKILLed(t *testing.T) {
	bin := buildChattap(t)
	t.Run("mid-backlog, restarted", func(t *testing.T) {
		srv := brokertest.StartProcess(t, "")
		_, js := brokertest.ConnectEnsured(t, srv.URL)
		records, obs := workloadRecords(t, 600)
		publishRecords(t, js, records)
		first := startMapperProcess(t, bin, srv.URL)
		waitFor(t, 30*time.Second, func() bool { return ackFloorsSum(t, js) > uint64(len(records))/4 })
		done := ackFloorsSum(t, js)
		first.kill(t)
		if done >= uint64(len(records)) {
			t.Fatal("the backlog was mapped before the kill: the test proves nothing")
		}
		killed := time.Now()
		startMapperProcess(t, bin, srv.URL)
		waitMapped(t, js)
		t.Logf("SIGKILLed with %d of %d records acked; the restarted process finished %v later", done, len(records), time.Since(killed).Round(10*time.Millisecond))
		checkExactAs(t, js, obs, "dev")
	})
	t.Run("active killed, standby takes over", func(t *testing.T) {
		srv := brokertest.StartProcess(t, "")
		_, js := brokertest.ConnectEnsured(t, srv.URL)
		records, obs := workloadRecords(t, 600)
		third := len(records) / 3
		active := startMapperProcess(t, bin, srv.URL)
		publishRecords(t, js, records[:third])
		waitMapped(t, js)
		startMapperProcess(t, bin, srv.URL)
		time.Sleep(500 * time.Millisecond) // the standby is pulling
		var wg sync.WaitGroup
		wg.Go(func() { publishPaced(t, js, records[third:], 2*time.Millisecond) })
		waitFor(t, 10*time.Second, func() bool { return ackFloorsSum(t, js) > uint64(third)+100 })
		before := pinnedClients(t, js)
		floor := ackFloorsSum(t, js)
		active.kill(t)
		killed := time.Now()
		// Taken over: no partition is pinned to the dead process any more,
		// and as many are pinned (to the standby) as were before.
		waitFor(t, 15*time.Second, func() bool {
			now := pinnedClients(t, js)
			for id := range now {
				if before[id] {
					return false
				}
			}
			return len(now) >= len(before)
		})
		takeover := time.Since(killed)
		still := ackFloorsSum(t, js) < uint64(len(records))
		wg.Wait()
		waitMapped(t, js)
		after := pinnedClients(t, js)
		for id := range after {
			if before[id] {
				t.Errorf("partitions still pinned to the killed process (%s)", id)
			}
		}
		t.Logf("SIGKILLed the active mapper with %d of %d records acked (records still arriving: %v); the standby held all %d partitions' pins %v later; all mapped %v after the kill",
			floor, len(records), still, len(before), takeover.Round(10*time.Millisecond), time.Since(killed).Round(10*time.Millisecond))
		if takeover > 8*time.Second {
			t.Errorf("takeover took %v, want a few seconds (CHATTAP_MAPPER_PINNED_TTL=2s)", takeover)
		}
		checkExactAs(t, js, obs, "dev")
	})
}

// publishPaced stores records from four publishers (each conversation
// stays in order), each pausing between records, so records keep
// arriving for a while.
func publishPaced(t *testing.T, js jetstream.JetStream, records []*spec.Record, pause time.Duration) {
	var wg sync.WaitGroup
	for part := range 4 {
		wg.Go(func() {
			for _, rec := range records {
				if rec.Partition%4 == part {
					publishRecords(t, js, []*spec.Record{rec})
					time.Sleep(pause)
				}
			}
		})
	}
	wg.Wait()
}

// pinnedClients is the set of pin ids over the mapper's consumers (the
// server gives a client a pin id per consumer).
func pinnedClients(t *testing.T, js jetstream.JetStream) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	st, err := js.Stream(t.Context(), spec.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	for name := range st.ConsumerNames(t.Context()).Name() {
		c, err := js.Consumer(t.Context(), spec.StreamRaw, name)
		if err != nil {
			continue
		}
		info, err := c.Info(t.Context())
		if err != nil {
			continue
		}
		for _, g := range info.PriorityGroups {
			if g.PinnedClientID != "" {
				out[g.PinnedClientID] = true
			}
		}
	}
	return out
}

// TestReplicasOnCluster runs two mapper replicas, each connected to
// another node of a three-node nats-server cluster with every stream and
// bucket replicated three times, and kills one midway: a cluster
// (nats-server 2.11 and later) pins partitions as the single server does.
func TestReplicasOnCluster(t *testing.T) {
	c := brokertest.StartCluster(t, 3)
	_, js := brokertest.Connect(t, c.URLs())
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	// Right after the meta leader is elected a peer may still be offline
	// for placement: try until all three take a replica.
	for {
		err := broker.Ensure(ctx, js, broker.StreamOptions{Replicas: 3})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var conns []*nats.Conn
	var runners []*mapper.Runner
	for i, node := range c.Nodes[1:] {
		nc, rjs := brokertest.Connect(t, node.URL)
		conns = append(conns, nc)
		m, err := mapper.New(mapper.Options{Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		r := mapper.NewRunner(rjs, m, nil, slog.New(slog.DiscardHandler).With("replica", i), nil, fastPins)
		if err := r.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		runners = append(runners, r)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = r.Stop(ctx)
		})
	}
	records, obs := workloadRecords(t, 90)
	half := len(records) / 2
	publishRecords(t, js, records[:half])
	conns[0].Close()
	killed := time.Now()
	publishRecords(t, js, records[half:])
	waitMapped(t, js)
	t.Logf("%d records over 3 nodes, one of two replicas killed midway; all mapped %v after the kill", len(records), time.Since(killed).Round(10*time.Millisecond))
	checkExact(t, js, obs)
}
