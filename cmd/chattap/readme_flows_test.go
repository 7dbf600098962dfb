package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readmeFlow is one five-minute setup of the README: the command that
// starts chattap, the commands that send it traffic, the command that reads
// the events, and the output the README says that command prints.
type readmeFlow struct {
	serve, send, events, want string
}

var flowMarkRE = regexp.MustCompile(`^<!-- flow: (\w+) (serve|send|events) -->$`)

// readmeFlows reads the README's marked blocks: a `<!-- flow: NAME PART -->`
// line, then a ```sh block; the events block is followed by a ```text
// block with what it prints.
func readmeFlows(t *testing.T) map[string]*readmeFlow {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(readme), "\n")
	block := func(i int, fence string) (string, int) {
		for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
			i++
		}
		if i >= len(lines) || lines[i] != fence {
			t.Fatalf("README.md line %d: want %s after a flow mark", i+1, fence)
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		return strings.Join(body, "\n") + "\n", i + 1
	}
	flows := map[string]*readmeFlow{}
	for i := 0; i < len(lines); i++ {
		m := flowMarkRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		f := flows[m[1]]
		if f == nil {
			f = &readmeFlow{}
			flows[m[1]] = f
		}
		code, next := block(i+1, "```sh")
		switch m[2] {
		case "serve":
			f.serve = code
		case "send":
			f.send = code
		case "events":
			f.events = code
			f.want, next = block(next, "```text")
		}
		i = next - 1
	}
	return flows
}

// upstream is a stand-in for a server chattap forwards to: it answers
// every request with answer and remembers the bodies it got.
type upstream struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newUpstream(t *testing.T, answer func(body []byte) string) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, string(body))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer(body))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) got() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.bodies...)
}

// TestReadmeFlows runs the README's five-minute setups as a newcomer would:
// each flow's serve block in a shell (with the built binary in place of
// `go run ./cmd/chattap`, and on a free loopback port instead of 8080, the
// only two changes), its curl commands, and its events command until it
// prints what the README shows. The shell variables the README leaves to
// the reader ($BOT_URL, …) point at stand-ins for the bot, Userlike and the
// channel server.
func TestReadmeFlows(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README's commands need %s: %v", tool, err)
		}
	}
	flows := readmeFlows(t)
	for _, name := range []string{"chatbot", "channel", "addon"} {
		f := flows[name]
		if f == nil || f.serve == "" || f.send == "" || f.events == "" || f.want == "" {
			t.Fatalf("README.md lacks the %s flow's serve, send and events blocks (marked <!-- flow: %s PART -->)", name, name)
		}
	}
	if len(flows) != 3 {
		t.Errorf("README.md has flows %v; this test knows chatbot, channel and addon", flows)
	}
	bin := buildBinary(t)

	ok := func([]byte) string { return `{}` }
	bot := func(body []byte) string {
		return `{"info":{"cid":"chatbot::1:demo"},"packet":{"name":"message","payload":{"body":"Hi Ada, how can I help?"}}}`
	}
	for _, name := range []string{"chatbot", "channel", "addon"} {
		t.Run(name, func(t *testing.T) {
			ups := map[string]*upstream{
				"BOT_URL":              newUpstream(t, bot),
				"USERLIKE_API_URL":     newUpstream(t, ok),
				"CHANNEL_SERVER_URL":   newUpstream(t, ok),
				"USERLIKE_INBOUND_URL": newUpstream(t, ok),
			}
			sent, file := runReadmeFlow(t, bin, flows[name], ups)
			if name == "chatbot" {
				// What the README says besides the events command's output.
				if !strings.Contains(sent, "Hi Ada, how can I help?") {
					t.Errorf("the webhook's caller did not get the bot's answer; curl printed %q", sent)
				}
				if !strings.Contains(file, `"type":"identify"`) || !strings.Contains(file, `"name":"Ada"`) {
					t.Errorf("events.jsonl holds no identify with Ada's name:\n%s", file)
				}
			}
			want := map[string][]string{
				"chatbot": {"BOT_URL", "USERLIKE_API_URL"},
				"channel": {"CHANNEL_SERVER_URL", "USERLIKE_INBOUND_URL"},
			}[name]
			for _, v := range want {
				if got := ups[v].got(); len(got) != 1 {
					t.Errorf("$%s got %d requests, want the 1 the README's curl sends through chattap", v, len(got))
				}
			}
		})
	}
}

// runReadmeFlow runs f and returns what the send block printed and
// events.jsonl once the events block printed what the README shows.
func runReadmeFlow(t *testing.T, bin string, f *readmeFlow, ups map[string]*upstream) (sent, file string) {
	t.Helper()
	dir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CHATTAP_LISTEN_ADDR=127.0.0.1:0"}
	for v, u := range ups {
		env = append(env, v+"="+u.URL)
	}

	const goRun = "go run ./cmd/chattap"
	if strings.Count(f.serve, goRun) != 1 {
		t.Fatalf("the serve block runs %q once: %q", goRun, f.serve)
	}
	serve := exec.Command("sh", "-c", strings.Replace(f.serve, goRun, "exec "+bin, 1))
	serve.Dir, serve.Env = dir, env
	stderr := &logBuffer{}
	serve.Stderr = stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = serve.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = serve.Process.Kill()
		}
	})
	var addr string
	for deadline := time.Now().Add(20 * time.Second); addr == ""; {
		if m := listeningAddrRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case <-exited:
			t.Fatalf("chattap exited before listening (%v):\n%s", serve.ProcessState, stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("chattap did not listen within 20s:\n%s", stderr)
		}
	}

	const readmeAddr = "localhost:8080"
	if !strings.Contains(f.send, readmeAddr) {
		t.Fatalf("the send block does not talk to %s: %q", readmeAddr, f.send)
	}
	send := exec.Command("sh", "-ec", strings.ReplaceAll(f.send, readmeAddr, addr))
	send.Dir, send.Env = dir, env
	out, err := send.CombinedOutput()
	if err != nil {
		t.Fatalf("the send block failed (%v):\n%s\nchattap's log:\n%s", err, out, stderr)
	}

	var got []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		events := exec.Command("sh", "-c", f.events)
		events.Dir, events.Env = dir, env
		got, _ = events.Output()
		if string(got) == f.want {
			break
		}
	}
	events, _ := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if string(got) != f.want {
		t.Fatalf("the events block printed\n%s\nwant, as the README says,\n%s\nevents.jsonl:\n%s\nchattap's log:\n%s", got, f.want, events, lastLines(stderr.String(), 20))
	}
	return string(out), string(events)
}

func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
