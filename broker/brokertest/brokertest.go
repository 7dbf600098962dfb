// Package brokertest starts the real embedded NATS server for tests, with
// chattap's streams and buckets declared, in a temporary directory.
package brokertest

import (
	"context"
	"net"
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

// ExternalURL is the URL of a separate NATS server with JetStream for a
// test: CHATTAP_TEST_NATS_URL when set, else a nats-server process built
// from the module chattap pins (ServerBinary), started for this test alone
// and stopped when it ends.
func ExternalURL(t testing.TB) string {
	t.Helper()
	if url := os.Getenv("CHATTAP_TEST_NATS_URL"); url != "" {
		return url
	}
	return StartProcess(t, "").URL
}

// Connect connects to the server at url (closed when the test ends) and
// returns the connection and its JetStream; it declares nothing.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := broker.Connect(url, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// ConnectEnsured is Connect, then declares chattap's streams and buckets.
func ConnectEnsured(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := Connect(t, url)
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if err := broker.Ensure(ctx, js, broker.StreamOptions{}); err != nil {
		t.Fatalf("ensure streams on %s: %v", url, err)
	}
	return nc, js
}

// StartListening runs an embedded server on dir that also listens on addr
// (host:port), so a test can stop it and start another on the same
// address and data, and a TCP client reconnects to it.
func StartListening(t testing.TB, dir, addr string) *broker.Embedded {
	t.Helper()
	srv, err := broker.StartEmbedded(broker.EmbeddedOptions{StoreDir: dir, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// FreeAddr is a loopback address no one listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
