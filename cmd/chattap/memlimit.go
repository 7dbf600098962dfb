package main

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimit reads CHATTAP_MEMORY_LIMIT: off, or a size with a unit as
// GOMEMLIMIT takes it (B, KiB, MiB, GiB). It returns 0 for off.
func (c *config) memoryLimit() (int64, error) {
	s := strings.TrimSpace(c.MemoryLimit)
	if s == "off" {
		return 0, nil
	}
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || n <= 0 || n > 1<<(62-u.shift) {
				break
			}
			return n << u.shift, nil
		}
	}
	return 0, fmt.Errorf("CHATTAP_MEMORY_LIMIT: must be off or a size such as 96MiB or 1GiB, is %q", c.MemoryLimit)
}

// applyMemoryLimit sets the Go runtime's soft memory limit from
// CHATTAP_MEMORY_LIMIT, unless GOMEMLIMIT already set one (that wins),
// and returns how to put back the previous one.
//
// A soft limit, not a hard one: the garbage collector runs more often as
// the heap nears it, and the process never fails for it. With the
// embedded server most of the heap under load is its file-store block
// caches (8 MB per active block) and what the garbage collector has not
// yet reclaimed; a limit makes it hand both back sooner, so the peak
// follows the limit instead of the load.
func applyMemoryLimit(c *config, environ []string, log *slog.Logger) (restore func()) {
	limit, _ := c.memoryLimit() // validated with the configuration
	if limit == 0 || envIsSet(environ, "GOMEMLIMIT") {
		return func() {}
	}
	prev := debug.SetMemoryLimit(limit)
	log.Debug("memory limit set", "bytes", limit)
	return func() { debug.SetMemoryLimit(prev) }
}
