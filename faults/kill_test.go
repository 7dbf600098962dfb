//go:build faults

package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
)

func caseLoad(seed uint64) *load {
	return &load{Conversations: pick(100, 1000), Workers: pick(8, 16), Pause: pick(20*time.Millisecond, 10*time.Millisecond), Seed: seed}
}

// Case 1: chattap SIGKILLed mid-load and restarted, on its embedded
// server and each role alone on a separate NATS.
func TestCase1Kill(t *testing.T) {
	for _, mode := range []string{"sync", "async"} {
		t.Run("embedded-"+mode, func(t *testing.T) {
			w := newWorld(t)
			port := brokertest.FreePort(t)
			env := embeddedEnv(t, w, port, map[string]string{"CHATTAP_TAP_ACK": mode})
			c := newChattap(t, "chattap", env)
			l := caseLoad(0x1a0 + uint64(len(mode)))
			ex, healed := drive(t, l, c.URL, time.Second, func(ctx context.Context) error {
				c.Kill()
				time.Sleep(300 * time.Millisecond)
				return c.start(true)
			})
			r, _ := settle(t, w, fmt.Sprintf("nats://127.0.0.1:%d", port), ex, healed, recoveryBound(env))
			r.Case, r.Load = "1 kill embedded, "+mode, l.String()
			r.Note = "SIGKILL at 1 s, restarted on the same data dir 0.3 s later"
			if mode == "async" {
				r.Note += "; lost = the async loss window (exchanges answered 2xx while still in the memory buffer)"
			}
			report(t, r)
			assertClean(t, r, mode == "async", true)
			assertRecovery(t, r, env)
		})
	}
	for _, role := range []string{"ingest", "mapper", "sinks"} {
		t.Run("role-"+role, func(t *testing.T) {
			w := newWorld(t)
			n := brokertest.StartProcess(t, "")
			procs := map[string]*chattap{}
			var env map[string]string
			for _, r := range []string{"ingest", "mapper", "sinks"} {
				env = w.env()
				env["CHATTAP_NATS_URL"] = n.URL
				env["CHATTAP_ROLES"] = r
				env["CHATTAP_TAP_ACK"] = "sync"
				procs[r] = newChattap(t, r, env)
			}
			victim := procs[role]
			l := caseLoad(0x1b0 + uint64(len(role)))
			ex, healed := drive(t, l, procs["ingest"].URL, time.Second, func(ctx context.Context) error {
				victim.Kill()
				time.Sleep(300 * time.Millisecond)
				return victim.start(true)
			})
			r, _ := settle(t, w, n.URL, ex, healed, recoveryBound(env))
			r.Case, r.Load = "1 kill "+role+" (separate NATS, sync)", l.String()
			r.Note = "SIGKILL of the " + role + " process at 1 s, restarted 0.3 s later"
			report(t, r)
			assertClean(t, r, false, true)
			assertRecovery(t, r, env)
		})
	}
}
