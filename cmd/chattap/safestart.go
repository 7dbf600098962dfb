package main

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/chattap/chattap/ingest"
)

// unsafeStart is the safe-start rule of serve: a listener that others can
// reach carries nothing that records without a token, and an embedded NATS
// that others can reach requires credentials. Each error says what to set.
// CHATTAP_ALLOW_UNAUTHENTICATED=true lets serve start anyway (with a
// warning); the tools (config, tail, …) never check it.
func (c *config) unsafeStart() []error {
	var errs []error
	if c.has(roleIngest) && !isLoopback(c.ListenAddr) {
		var open []ingest.RouteAccess
		for _, r := range c.Ingest.RecordingRoutes() {
			if !r.Protected {
				open = append(open, r)
			}
		}
		if len(open) > 0 {
			var b strings.Builder
			fmt.Fprintf(&b, "CHATTAP_LISTEN_ADDR=%s can be reached from other machines, and %s into your customer profiles, would accept requests from anyone. Set:", c.ListenAddr, plural(len(open), "this route, which writes", "these routes, which write"))
			for _, r := range open {
				fmt.Fprintf(&b, "\n      %-32s guards %-28s sent as %s", r.TokenEnv+"=…", r.Route, r.Carrier)
			}
			b.WriteString("\n    to the secret you configure on the sending side (e.g. `openssl rand -hex 32`);" +
				"\n    or keep chattap on loopback behind your own proxy (CHATTAP_LISTEN_ADDR=127.0.0.1:8080);" +
				"\n    or, on a network only your own systems reach, set CHATTAP_ALLOW_UNAUTHENTICATED=true.")
			errs = append(errs, errors.New(b.String()))
		}
	}
	if c.NatsURL == "" && c.NatsListen != "" && !isLoopback(c.NatsListen) && !c.NatsAuth.Authenticates() {
		errs = append(errs, fmt.Errorf("CHATTAP_NATS_LISTEN=%s exposes the embedded NATS server, with every recorded conversation, to other machines without credentials. Set CHATTAP_NATS_USER and CHATTAP_NATS_PASSWORD, or CHATTAP_NATS_NKEY_SEED_FILE (and for TLS CHATTAP_NATS_TLS_CERT and CHATTAP_NATS_TLS_KEY); other chattap processes then connect with the same variables and CHATTAP_NATS_URL. Or listen on loopback (CHATTAP_NATS_LISTEN=127.0.0.1:4222)",
			c.NatsListen))
	}
	// Go's profiles have no token and show what the process holds: the
	// command line, every goroutine's stack with its arguments, heap
	// samples. Off loopback they need the allow flag, also where they
	// share CHATTAP_ADMIN_ADDR. The admin listener itself may be reachable:
	// /admin/* and /debugger need CHATTAP_ADMIN_TOKEN, and /metrics holds
	// counters only, the same as on CHATTAP_LISTEN_ADDR, where Prometheus
	// scrapes it without a token (the manifests' prometheus.io annotations).
	if c.PprofAddr != "" && !isLoopback(c.PprofAddr) {
		where := "CHATTAP_PPROF_ADDR=" + c.PprofAddr
		if c.PprofAddr == c.AdminAddr {
			where += " (the CHATTAP_ADMIN_ADDR listener)"
		}
		errs = append(errs, fmt.Errorf("%s serves Go's profiles (command line, goroutine stacks, heap samples of a process that holds conversations) to other machines, with no token. Keep them on loopback (CHATTAP_PPROF_ADDR=127.0.0.1:6060, and `kubectl port-forward` or an SSH tunnel to reach them), unset CHATTAP_PPROF_ADDR, or, on a network only your own systems reach, set CHATTAP_ALLOW_UNAUTHENTICATED=true", where))
	}
	return errs
}

// isLoopback reports whether addr (host:port) can be reached from this
// machine only: a loopback IP or "localhost". An empty host, 0.0.0.0, ::,
// any other name or an unparseable address is taken as reachable.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
