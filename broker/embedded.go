// Package broker adapts NATS for chattap: it runs the embedded nats-server,
// connects to it or to an external cluster, declares chattap's streams and
// buckets, and keeps the run-time settings in JetStream KV.
package broker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedOptions configure the in-process NATS server.
type EmbeddedOptions struct {
	// StoreDir is where JetStream keeps its files.
	StoreDir string
	// Listen, when not empty ("127.0.0.1:4222", ":4222"), also exposes the
	// server to other processes on that address; empty: in-process only.
	Listen string
	// Debug turns on the server's own log on standard error.
	Debug bool
	// MaxPayload is the largest message the server takes; zero: 8 MiB,
	// room for a 1 MiB body as an Observation with headers.
	MaxPayload int32
	// SyncInterval is how often JetStream fsyncs its files; zero: the
	// server's default (2 minutes). SyncAlways fsyncs every message before
	// it is acknowledged. JetStream acknowledges a message once it is
	// written to the operating system's page cache: that survives a crash
	// of the process, not of the machine, which loses what was
	// acknowledged since the last fsync unless SyncAlways is set.
	SyncInterval time.Duration
	SyncAlways   bool
	// Auth, when it names a user or an nkey, is required of every client,
	// the in-process one included; with a certificate, Listen serves TLS.
	Auth Credentials
}

// Embedded is a running in-process NATS server with JetStream.
type Embedded struct {
	srv      *server.Server
	lock     *os.File
	auth     Credentials
	storeDir string

	mu       sync.Mutex
	storeErr error                   // see Health
	jsCfg    *server.JetStreamConfig // what Watch restarts JetStream with
}

// StartEmbedded starts a NATS server with JetStream in this process and
// waits until it accepts connections.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	lock, err := lockStore(o.StoreDir)
	if err != nil {
		return nil, err
	}
	e, err := startEmbedded(o)
	if err != nil {
		lock.Close()
		return nil, err
	}
	e.lock = lock
	return e, nil
}

func startEmbedded(o EmbeddedOptions) (*Embedded, error) {
	opts := &server.Options{
		ServerName:   "chattap",
		JetStream:    true,
		StoreDir:     o.StoreDir,
		NoSigs:       true,
		NoLog:        !o.Debug,
		DontListen:   o.Listen == "",
		MaxPayload:   o.MaxPayload,
		SyncInterval: o.SyncInterval,
		SyncAlways:   o.SyncAlways,
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = 8 << 20
	}
	if o.Listen != "" {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", o.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats listen port %q: %w", port, err)
		}
		opts.Host, opts.Port = host, p
		if host == "" {
			opts.Host = "0.0.0.0"
		}
	}
	if err := o.Auth.configureServer(opts); err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if o.Debug {
		srv.ConfigureLogger()
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not ready after 30s")
	}
	return &Embedded{srv: srv, auth: o.Auth, storeDir: o.StoreDir, jsCfg: srv.JetStreamConfig()}, nil
}

// Connect opens a connection to the embedded server, in process, with the
// server's own credentials.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	opts := append(connOptions(name), nats.InProcessServer(e.srv))
	return nats.Connect("", append(opts, e.auth.inProcessOptions()...)...)
}

// ClientURL is the address other processes reach the server on; empty when
// it listens in process only.
func (e *Embedded) ClientURL() string {
	if addr := e.srv.Addr(); addr != nil {
		return e.srv.ClientURL()
	}
	return ""
}

// Shutdown stops the server and waits until it has stopped. It is safe to
// call more than once.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	if e.lock != nil {
		e.lock.Close()
	}
}

// Connect opens a connection to an external server or cluster; url may
// list several servers separated by commas. The connection reconnects for
// ever, so a broker that goes away and comes back is picked up again.
// creds, when set, are presented to the server (see Credentials); an error
// never holds the password or a URL's user info.
func Connect(url, name string, creds ...Credentials) (*nats.Conn, error) {
	opts := connOptions(name)
	for _, c := range creds {
		opts = append(opts, c.clientOptions()...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	return nc, nil
}

func connOptions(name string) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		// While the broker is away a publish fails at once instead of
		// waiting in the client: the tap's publisher keeps and retries it
		// in its own bounded buffer, and the add-on route answers 503
		// without later storing what it refused.
		nats.ReconnectBufSize(-1),
	}
}
