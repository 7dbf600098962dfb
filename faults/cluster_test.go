//go:build faults

package faults_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Case 3: a three-node cluster, streams and buckets at three replicas,
// ingest, two mappers and two sinks processes; the node leading
// CHATTAP_RAW killed mid-load and brought back.
func TestCase3Cluster(t *testing.T) {
	w := newWorld(t)
	cl := brokertest.StartCluster(t, 3)
	var env map[string]string
	var ingest *chattap
	for _, p := range []struct{ name, role string }{{"ingest", "ingest"}, {"mapper-1", "mapper"}, {"mapper-2", "mapper"}, {"sinks-1", "sinks"}, {"sinks-2", "sinks"}} {
		env = w.env()
		env["CHATTAP_NATS_URL"] = cl.URLs()
		env["CHATTAP_STREAM_REPLICAS"] = "3"
		env["CHATTAP_ROLES"] = p.role
		env["CHATTAP_TAP_ACK"] = "sync"
		c := newChattap(t, p.name, env)
		if p.role == "ingest" {
			ingest = c
		}
	}
	l := caseLoad(0x3a0)
	var victim string
	ex, healed := drive(t, l, ingest.URL, time.Second, func(ctx context.Context) error {
		node, err := rawLeader(ctx, cl)
		if err != nil {
			return err
		}
		victim = fmt.Sprintf("node %d (leader of CHATTAP_RAW)", node.Port)
		node.Kill()
		time.Sleep(pick(3*time.Second, 15*time.Second))
		node.Start()
		cl.WaitJetStream(t, 30*time.Second)
		return nil
	})
	r, _ := settle(t, w, cl.URLs(), ex, healed, recoveryBound(env))
	r.Case, r.Load = "3 cluster node killed (R3, sync; ingest, 2 mappers, 2 sinks)", l.String()
	r.Note = "SIGKILL of " + victim + " at 1 s, back " + pick("3 s", "15 s") + " later"
	report(t, r)
	assertClean(t, r, false, true)
	assertRecovery(t, r, env)
}

// rawLeader is the node that leads CHATTAP_RAW.
func rawLeader(ctx context.Context, cl *brokertest.Cluster) (*brokertest.Process, error) {
	nc, err := nats.Connect(cl.URLs())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, "CHATTAP_RAW")
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Cluster != nil {
		for _, p := range cl.Nodes {
			if info.Cluster.Leader == "n"+strconv.Itoa(p.Port) {
				return p, nil
			}
		}
	}
	return cl.Nodes[0], nil
}
