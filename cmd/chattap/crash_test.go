package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// TestSyncModeLosesNoAnsweredExchangeOnSIGKILL runs chattap as a child
// process in sync mode (CHATTAP_ROLES=ingest) against a real nats-server
// process, drives webhooks through it from many connections, and kills it
// with SIGKILL in the middle of the load. Every exchange whose caller got
// a 2xx must have its record on CHATTAP_RAW, once, whatever was in
// flight when the process died.
//
// chattap reaches the broker through a proxy that delays every byte by
// 20 ms each way, so that many records are always on their way when the
// process dies: in async mode the same test loses dozens of exchanges.
func TestSyncModeLosesNoAnsweredExchangeOnSIGKILL(t *testing.T) {
	srv := brokertest.StartProcess(t, "")
	slow := delayProxy(t, strings.TrimPrefix(srv.URL, "nats://"), 20*time.Millisecond)
	bin := filepath.Join(t.TempDir(), "chattap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `[{"packet":{"name":"message","payload":{"body":"one"}}},{"packet":{"name":"message","payload":{"body":"two"}}}]`)
	}))
	t.Cleanup(bot.Close)
	addr := brokertest.FreeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "CHATTAP_NATS_URL=nats://"+slow, "CHATTAP_ROLES=ingest", "CHATTAP_TAP_ACK=sync",
		"CHATTAP_LISTEN_ADDR="+addr, "CHATTAP_BOT_WEBHOOK_URL="+bot.URL, "CHATTAP_LOG_LEVEL=warn")
	var logs logBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("chattap did not become ready:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	const conns = 16
	var mu sync.Mutex
	answered := map[string]bool{}
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
	killed := make(chan struct{})
	for c := range conns {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-killed:
					return
				default:
				}
				marker := fmt.Sprintf("crash-%d-%d", c, n)
				body := `{"info":{"cid":"` + marker + `"},"packet":{"name":"message","payload":{"body":"hi"}}}`
				resp, err := client.Post(base+"/userlike/webhook", "application/json", strings.NewReader(body))
				if err != nil {
					continue // in flight when the process died: never answered
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode/100 == 2 {
					mu.Lock()
					answered[marker] = true
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(killed)
	wg.Wait()
	if strings.Contains(logs.String(), "sync ack missed") {
		t.Logf("the broker did not answer within the timeout for some exchanges (those may be lost):\n%s", logs.String())
	}

	_, js := brokertest.Connect(t, srv.URL)
	st, err := js.Stream(t.Context(), spec.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(t.Context(), spec.StreamRaw, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	exchanges := map[string]bool{}
	for range info.State.Msgs {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		obs, err := spec.ReadRaw(msg.Data())
		if err != nil {
			t.Fatal(err)
		}
		if id := msg.Headers().Get(jetstream.MsgIDHeader); id != obs[0].Record || exchanges[id] {
			t.Errorf("record %s: Nats-Msg-Id %q, or stored twice", obs[0].Record, id)
		}
		exchanges[obs[0].Record] = true
		var ev struct{ Info struct{ Cid string } }
		_ = json.Unmarshal(obs[0].Payload, &ev)
		stored[ev.Info.Cid]++
	}
	if len(answered) < 100 {
		t.Fatalf("only %d exchanges answered before the kill: the load did not run", len(answered))
	}
	lost := 0
	for m := range answered {
		if stored[m] != 1 {
			lost++
			if lost <= 5 {
				t.Errorf("exchange %s was answered 2xx but has %d records on CHATTAP_RAW", m, stored[m])
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d exchanges answered 2xx are not stored exactly once", lost, len(answered))
	}
	t.Logf("%d exchanges answered 2xx before SIGKILL, %d records stored (the rest were stored but not yet answered)", len(answered), info.State.Msgs)
}

// delayProxy forwards TCP connections from a loopback address to target,
// delivering every chunk delay after it was read, in order, in both
// directions, and returns its address.
func delayProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	pipe := func(dst, src net.Conn) {
		type chunk struct {
			at   time.Time
			data []byte
		}
		q := make(chan chunk, 4096)
		go func() {
			defer close(q)
			for {
				buf := make([]byte, 32<<10)
				n, err := src.Read(buf)
				if n > 0 {
					q <- chunk{time.Now().Add(delay), buf[:n]}
				}
				if err != nil {
					return
				}
			}
		}()
		for c := range q {
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.data); err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			go pipe(out, in)
			go pipe(in, out)
		}
	}()
	return ln.Addr().String()
}
