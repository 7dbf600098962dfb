package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// brokerConn is this process's link to NATS: the embedded server it runs,
// if any, and the connection.
type brokerConn struct {
	emb  *broker.Embedded
	url  string
	auth broker.Credentials
	nc   *nats.Conn
	js   jetstream.JetStream
	// stopWatch ends the embedded store's watch (see broker.Embedded.Watch).
	stopWatch func()
}

// connect opens one more connection to the same broker, named name, for
// a reader whose traffic must not share the pipeline's connection.
func (b *brokerConn) connect(name string) (*nats.Conn, error) {
	if b.emb != nil {
		return b.emb.Connect(name)
	}
	return broker.Connect(b.url, name, b.auth)
}

// openBroker connects to CHATTAP_NATS_URL, or starts the embedded server
// on CHATTAP_DATA_DIR and connects to it in process. serve declares the
// streams and buckets (and may let the embedded server listen on
// CHATTAP_NATS_LISTEN); the tools only check they exist, so a shell with
// other CHATTAP_* values never changes a deployment's retention or
// replicas.
func openBroker(ctx context.Context, c *config, log *slog.Logger, serve bool) (*brokerConn, error) {
	b := &brokerConn{url: c.NatsURL, auth: c.NatsAuth}
	var err error
	if c.NatsURL != "" {
		b.nc, err = broker.Connect(c.NatsURL, "chattap", c.NatsAuth)
		if err != nil {
			return nil, err
		}
		log.Info("connected to NATS", "server", b.nc.ConnectedUrlRedacted(), "version", b.nc.ConnectedServerVersion())
	} else {
		o := broker.EmbeddedOptions{StoreDir: c.DataDir, Auth: c.NatsAuth}
		o.SyncInterval, o.SyncAlways, _ = c.natsSync() // validated with the configuration
		if serve {
			o.Listen = c.NatsListen
		}
		if b.emb, err = broker.StartEmbedded(o); err != nil {
			return nil, err
		}
		if b.nc, err = b.emb.Connect("chattap"); err != nil {
			b.emb.Shutdown()
			return nil, fmt.Errorf("connect to embedded nats: %w", err)
		}
		log.Info("embedded NATS started", "store", c.DataDir, "listen", b.emb.ClientURL(), "auth", c.NatsAuth.Authenticates(), "tls", c.NatsAuth.TLSCert != "")
	}
	if b.js, err = jetstream.New(b.nc); err != nil {
		b.close(ctx)
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if serve {
		err = broker.Ensure(ectx, b.js, c.streamOptions())
	} else if err = broker.Check(ectx, b.js); err != nil {
		err = fmt.Errorf("%w (has chattap serve run with this CHATTAP_DATA_DIR or CHATTAP_NATS_URL?)", err)
	}
	if err != nil {
		b.close(ctx)
		return nil, err
	}
	if serve && b.emb != nil {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			b.emb.Watch(wctx, log, time.Second, func(ctx context.Context) error {
				return broker.Ensure(ctx, b.js, c.streamOptions())
			})
		}()
		b.stopWatch = func() { cancel(); <-done }
	}
	return b, nil
}

// health is, with the embedded server, whether its store takes writes
// (nil with an external broker: its own monitoring says so).
func (b *brokerConn) health() error {
	if b == nil || b.emb == nil {
		return nil
	}
	return b.emb.Health()
}

// close drains the connection (bounded by ctx) and stops the embedded
// server; it is the last step of a shutdown.
func (b *brokerConn) close(ctx context.Context) {
	if b.stopWatch != nil {
		b.stopWatch()
	}
	if b.nc != nil && !b.nc.IsClosed() {
		done := make(chan struct{})
		b.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
		if err := b.nc.Drain(); err != nil {
			b.nc.Close()
		} else {
			select {
			case <-done:
			case <-ctx.Done():
				b.nc.Close()
			}
		}
	}
	if b.emb != nil {
		b.emb.Shutdown()
	}
}
