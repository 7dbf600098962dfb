//go:build faults

package faults_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	long       = flag.Bool("faults.long", false, "run the long versions of the cases (more conversations, longer faults, default ack waits)")
	reportPath = flag.String("faults.report", "", "append each case's result row (Markdown) to this file")
	keepLogs   = flag.String("faults.keep", "", "copy the whole log of every chattap child of a failed case into this directory")
)

// chattapBin is cmd/chattap, built once for the whole suite.
var chattapBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "chattap-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	chattapBin = filepath.Join(dir, "chattap")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+mapperVersion, "-o", chattapBin, "github.com/chattap/chattap/cmd/chattap")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: go build ./cmd/chattap:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// mapperVersion is the version the child is built with, so that the
// oracle's context.library.version is the child's.
const mapperVersion = "faults"

// row is one case's result, as RELIABILITY.md tabulates it.
type row struct {
	Case      string
	Load      string
	Accepted  int // exchanges answered 2xx
	Refused   int // exchanges that got an error or a non-2xx (the caller knows)
	Lost      int // accepted exchanges with no record on CHATTAP_RAW
	Expected  int // events the oracle maps from the records
	Delivered int // of those, how many reached the receiver
	Missing   int
	Doubled   int // copies beyond the first of a messageId at the receiver
	Wrong     int // unexpected messageIds, or the same one with a different body
	Recovery  time.Duration
	Note      string
}

var reportMu sync.Mutex

const rowHeader = "| case | load | accepted | refused | lost | expected | delivered | missing | doubled | wrong | recovery | notes |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"

func (r row) String() string {
	rec := "—"
	if r.Missing > 0 {
		rec = "not recovered"
	} else if r.Recovery > 0 {
		rec = fmt.Sprintf("%.1f s", r.Recovery.Seconds())
	}
	return fmt.Sprintf("| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s |",
		r.Case, r.Load, r.Accepted, r.Refused, r.Lost, r.Expected, r.Delivered, r.Missing, r.Doubled, r.Wrong, rec, strings.ReplaceAll(r.Note, "|", "/"))
}

// report prints the row and appends it to -faults.report.
func report(t *testing.T, r row) {
	t.Helper()
	t.Logf("ROW %s", r)
	fmt.Printf("FAULTS %s\n", r)
	if *reportPath == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	_, statErr := os.Stat(*reportPath)
	f, err := os.OpenFile(*reportPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	defer f.Close()
	if os.IsNotExist(statErr) {
		fmt.Fprint(f, rowHeader)
	}
	fmt.Fprintln(f, r)
}

// pick is the short or the long value of a setting.
func pick[T any](short, longv T) T {
	if *long {
		return longv
	}
	return short
}
