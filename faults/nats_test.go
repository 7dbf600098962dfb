//go:build faults

package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
)

// Case 2: the separate NATS server restarted mid-load. Within the buffer
// bound no caller sees an error and nothing is lost; past it, the drop
// counter says exactly what was lost.
func TestCase2NATSRestart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		buffer string
		down   time.Duration
		kill   bool
	}{
		{"stop-start", "100000", pick(2*time.Second, 10*time.Second), false},
		{"kill-start", "100000", pick(2*time.Second, 10*time.Second), true},
		{"past-buffer", "30", pick(3*time.Second, 10*time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			n := brokertest.StartProcess(t, "")
			env := w.env()
			env["CHATTAP_NATS_URL"] = n.URL
			env["CHATTAP_PUBLISH_BUFFER"] = tc.buffer
			c := newChattap(t, "chattap", env)
			l := caseLoad(0x2a0 + uint64(len(tc.name)))
			ex, healed := drive(t, l, c.URL, time.Second, func(ctx context.Context) error {
				if tc.kill {
					n.Kill()
				} else {
					n.Stop()
				}
				time.Sleep(tc.down)
				n.Start()
				return nil
			})
			r, _ := settle(t, w, n.URL, ex, healed, recoveryBound(env))
			o := mapRecords(t, readStream(t, n.URL, "CHATTAP_RAW"))
			missingRecords, retried := 0, 0
			for _, e := range ex {
				retried += e.Retried
				if e.Accepted() {
					missingRecords += max(0, expectedRecords(e, o.Version)-o.Markers[e.Marker])
				}
			}
			// Version 1 counted observations, version 2 counts records.
			dropped := c.Metric("chattap_observations_dropped_total") + c.Metric("chattap_records_dropped_total")
			lostMetric := c.Metric("chattap_observations_lost_total") + c.Metric("chattap_records_lost_total")
			r.Case, r.Load = "2 NATS "+tc.name+", buffer "+tc.buffer, l.String()
			r.Note = fmt.Sprintf("server down %s at 1 s; records missing %d, dropped counter %.0f; add-on callbacks answered 503 and sent again %d", tc.down, missingRecords, dropped, retried)
			report(t, r)
			if r.Refused > 0 {
				for _, e := range ex {
					if !e.Accepted() {
						t.Errorf("a caller saw an error: %s %s: %d %v", e.Route, e.Marker, e.Status, e.Err)
						break
					}
				}
			}
			// Every record missing is counted. The drop counter also counts
			// an add-on callback refused with a full buffer, which was
			// answered 503 and sent again: at most that many more.
			counted := dropped + max(lostMetric, 0)
			if float64(missingRecords) > counted || counted > float64(missingRecords+retried) {
				t.Errorf("records missing: %d; the counters say %.0f dropped + %.0f lost (add-on 503s sent again: %d)", missingRecords, dropped, lostMetric, retried)
			}
			if tc.buffer == "100000" {
				assertClean(t, r, false, true) // an ack lost with the server redelivers what the receiver had: effectively once, by messageId
			} else {
				if dropped == 0 {
					t.Errorf("the load never went past a buffer of %s: the case tests nothing", tc.buffer)
				}
				r.Lost = 0 // counted and stated: what the drop counter says
				assertClean(t, r, true, true)
			}
			assertRecovery(t, r, env)
		})
	}
}
