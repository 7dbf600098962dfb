package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	for in, want := range map[string]int64{"96MiB": 96 << 20, "1GiB": 1 << 30, "512KiB": 512 << 10, "1000000B": 1000000, "off": 0} {
		got, err := (&config{MemoryLimit: in}).memoryLimit()
		if err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "96", "96MB", "-1MiB", "0MiB", "lots", "99999999999GiB"} {
		if _, err := (&config{MemoryLimit: in}).memoryLimit(); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	before := debug.SetMemoryLimit(-1)
	restore := applyMemoryLimit(&config{MemoryLimit: "96MiB"}, nil, log)
	if got := debug.SetMemoryLimit(-1); got != 96<<20 {
		t.Errorf("limit %d, want 96 MiB", got)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("limit %d after restore, want %d", got, before)
	}
	applyMemoryLimit(&config{MemoryLimit: "96MiB"}, []string{"GOMEMLIMIT=1GiB"}, log)()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("GOMEMLIMIT set, yet the limit moved to %d", got)
	}
}
