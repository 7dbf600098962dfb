package brokertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestProcessKeepsItsStoreAcrossARestart(t *testing.T) {
	p := brokertest.StartProcess(t, "")
	_, js := brokertest.Connect(t, p.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	info, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.API.Level < 1 {
		t.Fatalf("JetStream API level %d: the server predates 2.11 (priority groups)", info.API.Level)
	}
	p.Kill()
	p.Start()
	_, js = brokertest.Connect(t, p.URL)
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("after a SIGKILL and restart the stream holds %d messages, want 1", n)
	}
}

func TestClusterReplicatesAcrossThreeNodes(t *testing.T) {
	c := brokertest.StartCluster(t, 3)
	_, js := brokertest.Connect(t, c.URLs())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R", Subjects: []string{"r.>"}, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.CachedInfo().Cluster.Replicas); n != 2 {
		t.Fatalf("stream has %d followers, want 2", n)
	}
}
