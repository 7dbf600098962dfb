package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runTool runs one command to the end and returns its stdout, stderr and
// error.
func runTool(t *testing.T, environ []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, environ, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestTopLevelHelpListsTheCommands(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		out, errOut, err := runTool(t, nil, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, c := range commands() {
			if !strings.Contains(out, "\n  "+c.name+" ") {
				t.Errorf("%v does not list %s:\n%s", args, c.name, out)
			}
		}
		if strings.Contains(out+errOut, "Flags:") {
			t.Errorf("%v printed a command's flags instead of the commands:\n%s%s", args, out, errOut)
		}
	}
	if _, _, err := runTool(t, nil, "--frobnicate"); err == nil || !strings.Contains(err.Error(), "chattap help") {
		t.Errorf("an unknown top-level flag: %v, want an error pointing at `chattap help`", err)
	}
}

func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		out, _, err := runTool(t, nil, args...)
		if err != nil || !strings.HasPrefix(out, "chattap ") {
			t.Errorf("%v: %v %q", args, err, out)
		}
	}
}

// TestEveryCommandHasAnExample asks every command (and dlq verb) for -h,
// and `chattap help CMD` for the same on stdout.
func TestEveryCommandHasAnExample(t *testing.T) {
	names := []string{"dlq list", "dlq replay", "dlq drop"}
	for _, c := range commands() {
		names = append(names, c.name)
	}
	for _, name := range names {
		args := append(strings.Fields(name), "-h")
		out, errOut, err := runTool(t, nil, args...)
		if err != nil {
			t.Errorf("%s -h: %v", name, err)
		}
		usage := out + errOut
		first := strings.Fields(name)[0]
		if !strings.Contains(usage, "Example:\n  ") || !strings.Contains(usage[strings.Index(usage, "Example:"):], "chattap "+first) {
			t.Errorf("%s -h shows no example of chattap %s:\n%s", name, first, usage)
		}
	}
	out, _, err := runTool(t, nil, "help", "tail")
	if err != nil || !strings.Contains(out, "-raw") || !strings.Contains(out, "-since") || !strings.Contains(out, "-all") || !strings.Contains(out, "Example:") {
		t.Errorf("help tail: %v\n%s", err, out)
	}
}

// TestToolsNeverCreateAStore runs every tool that reads the store where
// there is none, and in an empty folder: each says so, fails, and leaves
// no store behind.
func TestToolsNeverCreateAStore(t *testing.T) {
	absent := filepath.Join(t.TempDir(), "data")
	empty := t.TempDir()
	for _, dir := range []string{absent, empty} {
		environ := []string{"CHATTAP_DATA_DIR=" + dir}
		for _, args := range [][]string{{"tail"}, {"tail", "-raw", "-all"}, {"dlq", "list"}, {"dlq", "drop", "-all"}, {"dlq", "replay", "-all"}, {"replay", "-sink", "file", "-since", "1h"}, {"remap", "-since", "1h"}} {
			_, _, err := runTool(t, environ, args...)
			if err == nil || !strings.Contains(err.Error(), "no store in "+dir) || !strings.Contains(err.Error(), "chattap serve") {
				t.Errorf("%v in %s: %v, want an error saying there is no store", args, dir, err)
			}
		}
		for _, args := range [][]string{{"config"}, {"health", "-addr", closedAddr(t)}} {
			_, _, _ = runTool(t, environ, args...)
		}
		if _, err := os.Stat(filepath.Join(dir, "jetstream")); err == nil {
			t.Errorf("a tool created a store in %s", dir)
		}
	}
	if _, err := os.Stat(absent); err == nil {
		t.Errorf("a tool created %s", absent)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestOneMistakeOneErrorLine(t *testing.T) {
	cases := []struct {
		name    string
		environ []string
		args    []string
		names   string
	}{
		{"a duration that does not parse", []string{"CHATTAP_RETENTION=xyz"}, []string{"config"}, "CHATTAP_RETENTION"},
		{"an unknown flag", nil, []string{"tail", "-follow-forever"}, "chattap tail -h"},
		{"a stray argument", nil, []string{"config", "extra"}, `"extra"`},
		{"replay without a range", nil, []string{"replay", "-sink", "file"}, "chattap replay -h"},
		{"dlq without a verb", nil, []string{"dlq"}, "list, replay or drop"},
		{"an unknown dlq verb", nil, []string{"dlq", "purge"}, `"purge"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runTool(t, tc.environ, tc.args...)
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, tc.names) {
				t.Errorf("error %q: want one line naming %s", msg, tc.names)
			}
			if out != "" || errOut != "" {
				t.Errorf("printed more than the error: stdout %q, stderr %q", out, errOut)
			}
		})
	}
	// Two mistakes are two lines, each named.
	_, _, err := runTool(t, []string{"CHATTAP_RETENTION=xyz", "CHATTAP_LOG_LEVEL=loud"}, "config")
	if err == nil || strings.Count(err.Error(), "\n") != 2 || strings.Count(err.Error(), "CHATTAP_RETENTION") != 1 {
		t.Errorf("two mistakes: %v", err)
	}
}

func TestEmptyResultsSaySo(t *testing.T) {
	dir := t.TempDir()
	in := start(t, "CHATTAP_DATA_DIR="+dir, "CHATTAP_FILE_SINK_PATH=")
	in.stop(t)
	environ := []string{"CHATTAP_DATA_DIR=" + dir}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"dlq", "list"}, "no dead letters\n"},
		{[]string{"dlq", "list", "-sink", "segment"}, "no dead letters of sink segment\n"},
		{[]string{"dlq", "drop", "-all"}, "no dead letters selected: dropped none\n"},
		{[]string{"tail"}, "no events stored"},
		{[]string{"tail", "-raw"}, "no records stored"},
	} {
		out, errOut, err := runTool(t, environ, tc.args...)
		if err != nil || out != "" || !strings.Contains(errOut, tc.says) {
			t.Errorf("%v: %v, stdout %q, stderr %q; want %q on stderr", tc.args, err, out, errOut, tc.says)
		}
	}
}

func TestHealthAsksARunningChattap(t *testing.T) {
	in := start(t, "CHATTAP_FILE_SINK_PATH=")
	_, port, _ := net.SplitHostPort(in.addr)
	// What the Docker image does: CHATTAP_LISTEN_ADDR=:PORT, asked on loopback.
	environ := []string{"CHATTAP_LISTEN_ADDR=:" + port}
	out, _, err := runTool(t, environ, "health")
	if err != nil || !strings.Contains(out, "/healthz: 200") {
		t.Errorf("health: %v %q", err, out)
	}
	out, _, err = runTool(t, environ, "health", "-ready")
	if err != nil || !strings.Contains(out, "/readyz: 200") || !strings.Contains(out, "ready") {
		t.Errorf("health -ready: %v %q", err, out)
	}
	if _, _, err := runTool(t, nil, "health", "-addr", closedAddr(t), "-timeout", "2s"); err == nil {
		t.Error("health of an address nothing listens on succeeded")
	}
	// A listener that answers something else than 200 is not healthy.
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"status":"not ready"}`, http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	ln := notReady.Listener
	if _, _, err := runTool(t, nil, "health", "-ready", "-addr", ln.Addr().String()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("health of a 503: %v", err)
	}
}

func TestLoopbackTarget(t *testing.T) {
	for listen, want := range map[string]string{
		":8080": "127.0.0.1:8080", "0.0.0.0:8080": "127.0.0.1:8080", "[::]:8080": "[::1]:8080",
		"127.0.0.1:9000": "127.0.0.1:9000", "10.1.2.3:80": "10.1.2.3:80", "chattap:8080": "chattap:8080",
	} {
		if got, err := loopbackTarget(listen); err != nil || got != want {
			t.Errorf("loopbackTarget(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
	if _, err := loopbackTarget("8080"); err == nil {
		t.Error("a listen address without a port was accepted")
	}
}

// TestTailRawShowsWhatWasRecorded sends an add-on operator status (which
// yields no Live Chat event) and a chatbot message, stops serve, and reads
// both records back from the stopped store; tail says there is no writer
// instead of waiting for one.
func TestTailRawShowsWhatWasRecorded(t *testing.T) {
	dir := t.TempDir()
	in := start(t, "CHATTAP_DATA_DIR="+dir, "CHATTAP_FILE_SINK_PATH=")
	status := `{"_type":"operator","_event":"online","id":7,"name":"Grace","operator_group_id":2}`
	if code, body := in.post(t, "/userlike/addon", status, nil); code != 200 {
		t.Fatalf("addon: %d %s", code, body)
	}
	if code, _ := in.post(t, "/userlike/webhook", webhook("c-tail"), nil); code != 200 {
		t.Fatalf("webhook: %d", code)
	}
	// The mapper has finished with both once it counts the status as empty
	// and the message as mapped.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, m := in.get(t, "/metrics", nil)
		if strings.Contains(m, `chattap_mapper_observations_total{result="empty",source="addon"} 1`) && strings.Contains(m, `result="mapped",source="chatbot.webhook"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mapper did not finish with the records:\n%s", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.stop(t)
	environ := []string{"CHATTAP_DATA_DIR=" + dir}

	out, errOut, err := runTool(t, environ, "tail", "--raw")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("tail --raw printed %d lines, want 2:\n%s", len(lines), out)
	}
	var found bool
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		if strings.Contains(l, `"_type":"operator"`) && strings.Contains(l, `"_event":"online"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("tail --raw does not show the operator status:\n%s", out)
	}
	if !strings.Contains(errOut, "printed the 2 records stored") || !strings.Contains(errOut, "no chattap serve is running") {
		t.Errorf("stderr %q: want it to say what it printed and that nothing writes", errOut)
	}

	out, _, err = runTool(t, environ, "tail", "--raw", "--conversation", "c-tail")
	if err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"conversation_id":"c-tail"`) || strings.Contains(out, "operator") {
		t.Errorf("tail --raw --conversation c-tail: %v\n%s", err, out)
	}
	// The events: the message became some, the status none.
	out, _, err = runTool(t, environ, "tail", "-conversation", "c-tail")
	if err != nil || !strings.Contains(out, "Live Chat Message Sent") || strings.Contains(out, "Grace") {
		t.Errorf("tail -conversation c-tail: %v\n%s", err, out)
	}
}

// TestTimeFlagsAreChecked: a -from or -to that is not an RFC 3339 time is
// one error naming the flag, before any store is opened.
func TestTimeFlagsAreChecked(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"replay", "-sink", "file", "-from", "yesterday"},
		{"remap", "-from", "2026-12-01T10:00:00Z", "-to", "noon"},
	} {
		_, _, err := runTool(t, []string{"CHATTAP_DATA_DIR=" + dir}, args...)
		flag := args[len(args)-2]
		if err == nil || !strings.HasPrefix(err.Error(), flag+":") {
			t.Errorf("%v: %v, want an error naming %s", args, err, flag)
		}
	}
}
