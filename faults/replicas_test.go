//go:build faults

package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
)

// Case 4: two and three mapper replicas on a separate NATS, one of them
// killed mid-load (with partitions spread over the replicas, the one
// killed is active for some) and restarted.
func TestCase4MapperReplicas(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("replicas-%d", n), func(t *testing.T) {
			w := newWorld(t)
			nats := brokertest.StartProcess(t, "")
			env := w.env()
			env["CHATTAP_NATS_URL"] = nats.URL
			env["CHATTAP_ROLES"] = "ingest,sinks"
			env["CHATTAP_TAP_ACK"] = "sync"
			front := newChattap(t, "ingest-sinks", env)
			var mappers []*chattap
			for i := range n {
				menv := w.env()
				menv["CHATTAP_NATS_URL"] = nats.URL
				menv["CHATTAP_ROLES"] = "mapper"
				mappers = append(mappers, newChattap(t, fmt.Sprintf("mapper-%d", i+1), menv))
			}
			l := caseLoad(0x4a0 + uint64(n))
			ex, healed := drive(t, l, front.URL, time.Second, func(ctx context.Context) error {
				mappers[0].Kill()
				time.Sleep(time.Second)
				return mappers[0].start(true)
			})
			r, _ := settle(t, w, nats.URL, ex, healed, recoveryBound(env))
			r.Case, r.Load = fmt.Sprintf("4 mapper replicas: %d, one killed", n), l.String()
			r.Note = "SIGKILL of mapper-1 at 1 s, restarted 1 s later"
			report(t, r)
			assertClean(t, r, false, true)
			assertRecovery(t, r, env)
		})
	}
}
