// Package brokertest starts the real embedded NATS server for tests, with
// chattap's streams and buckets declared, in a temporary directory.
package brokertest

import (
	"os"
	"testing"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an embedded server for one test.
type Server struct {
	*broker.Embedded
	Dir  string
	Conn *nats.Conn
	JS   jetstream.JetStream
}

// Start runs an embedded server with JetStream under t.TempDir(), declares
// chattap's streams and buckets, and stops everything when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartIn(t, t.TempDir(), broker.StreamOptions{})
}

// StartIn is Start with a store directory of the caller's, so that a test
// can stop a server and start another on the same data.
func StartIn(t testing.TB, dir string, o broker.StreamOptions) *Server {
	t.Helper()
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: dir})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	nc, err := emb.Connect("test")
	if err != nil {
		emb.Shutdown()
		t.Fatalf("connect embedded nats: %v", err)
	}
	s := &Server{Embedded: emb, Dir: dir, Conn: nc}
	t.Cleanup(s.Stop)
	s.JS, err = jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if err := broker.Ensure(ctx, s.JS, o); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	return s
}

// Stop closes the test's connection and shuts the server down; it may be
// called more than once.
func (s *Server) Stop() {
	s.Conn.Close()
	s.Embedded.Shutdown()
}

// ExternalURL returns CHATTAP_TEST_NATS_URL, or skips the test with a
// message saying how to run it when that is unset.
func ExternalURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("CHATTAP_TEST_NATS_URL")
	if url == "" {
		t.Skip("CHATTAP_TEST_NATS_URL is unset: this test needs a separate NATS server with JetStream (.ci/run sets it)")
	}
	return url
}
