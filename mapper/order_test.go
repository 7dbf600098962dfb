package mapper_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// replica is a mapper Runner on a connection of its own, so that a test
// can kill it (close the connection without acking or draining).
type replica struct {
	nc *nats.Conn
	r  *mapper.Runner
}

func startReplica(t *testing.T, s *brokertest.Server, o mapper.RunnerOptions) *replica {
	t.Helper()
	nc, err := s.Connect("replica")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := startRunner(t, js, nil, o)
	return &replica{nc: nc, r: r}
}

// kill closes the replica's connection abruptly: nothing more is acked,
// nothing drained, and the server holds its pins until PinnedTTL.
func (p *replica) kill(t *testing.T) {
	t.Helper()
	p.nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.r.Stop(ctx)
}

// publishConcurrently stores obs on CHATTAP_RAW from four publishers, each
// keeping its share in order (so every conversation stays in order).
func publishConcurrently(t *testing.T, js jetstream.JetStream, obs []*spec.Observation) {
	t.Helper()
	var wg sync.WaitGroup
	for part := range 4 {
		wg.Go(func() {
			var mine []*spec.Observation
			for _, o := range obs {
				if spec.Partition(o.ConversationID)%4 == part {
					mine = append(mine, o)
				}
			}
			publishRaw(t, js, mine, nil)
		})
	}
	wg.Wait()
}

// acked is how many records the mapper consumers have acked so far.
func acked(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	var n uint64
	for _, cfg := range (mapper.RunnerOptions{}).Lanes() {
		c, err := js.Consumer(t.Context(), spec.StreamRaw, cfg.Durable)
		if err != nil {
			continue
		}
		info, err := c.Info(t.Context())
		if err != nil {
			continue
		}
		n += info.Delivered.Consumer - uint64(info.NumAckPending) - uint64(info.NumRedelivered)
	}
	return n
}

// fastPins hands a dead replica's partitions over after 2 s and its
// unacked records back after 5 s (they are replayed at the takeover, and
// acked as duplicates when redelivered).
var fastPins = mapper.RunnerOptions{Workers: 4, PinnedTTL: 2 * time.Second, AckWait: 5 * time.Second, PublishTimeout: 2 * time.Second}

// TestKilledMidBacklogAndRestarted kills the only mapper while it works
// through a backlog, then starts another: every conversation must have
// exactly the events of mapping in order.
func TestKilledMidBacklogAndRestarted(t *testing.T) {
	s := brokertest.Start(t)
	obs := workload(300)
	publishRaw(t, s.JS, obs, nil)
	first := startReplica(t, s, fastPins)
	waitFor(t, 20*time.Second, func() bool { return allMapped(t, s.JS) || ackFloorsSum(t, s.JS) > uint64(len(obs))/3 })
	done := ackFloorsSum(t, s.JS)
	first.kill(t)
	killed := time.Now()
	if done >= uint64(len(obs)) {
		t.Fatal("the backlog was mapped before the kill: the test proves nothing")
	}
	t.Logf("killed with %d of %d records acked", done, len(obs))
	startReplica(t, s, fastPins)
	waitMapped(t, s.JS)
	t.Logf("backlog of %d records finished %v after the kill", len(obs), time.Since(killed).Round(10*time.Millisecond))
	checkExact(t, s.JS, obs)
}

// TestReplicasUnderLoad runs two and three replicas while the records
// arrive; midway one replica stops gracefully (its partitions are handed
// over at once) and, with three, another is killed.
func TestReplicasUnderLoad(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(strings.Repeat("replica,", n-1)+"replica", func(t *testing.T) {
			s := brokertest.Start(t)
			var reps []*replica
			for range n {
				reps = append(reps, startReplica(t, s, fastPins))
			}
			obs := workload(240)
			half := len(obs) / 2
			publishConcurrently(t, s.JS, obs[:half])
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			if err := reps[0].r.Stop(ctx); err != nil {
				t.Errorf("graceful stop: %v", err)
			}
			cancel()
			if n == 3 {
				reps[1].kill(t)
			}
			publishConcurrently(t, s.JS, obs[half:])
			waitMapped(t, s.JS)
			checkExact(t, s.JS, obs)
		})
	}
}

func waitFor(t *testing.T, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not so within %v", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ackFloorsSum adds the lanes' ack floors: a rough count of what is done.
func ackFloorsSum(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	var n uint64
	for _, cfg := range (mapper.RunnerOptions{}).Lanes() {
		c, err := js.Consumer(t.Context(), spec.StreamRaw, cfg.Durable)
		if err != nil {
			continue
		}
		if info, err := c.Info(t.Context()); err == nil {
			n += info.AckFloor.Consumer
		}
	}
	return n
}
