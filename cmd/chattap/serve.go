package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/metrics"
)

func runServe(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "Run chattap's stages (CHATTAP_ROLES) until SIGINT or SIGTERM. Every setting is an\nenvironment variable: see `chattap config`.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := loadConfig(environ)
	if err != nil {
		return err
	}
	log := c.logger(stderr)
	defer applyMemoryLimit(c, environ, log)()
	b, err := openBroker(ctx, c, log, true)
	if err != nil {
		return err
	}
	// Every step below is undone in reverse by stop, bounded in time.
	p := &process{log: log, broker: b}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.ShutdownTimeout)
		defer cancel()
		p.stop(sctx)
	}()
	if err := p.start(ctx, c, environ, stdout); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("stopping", "reason", context.Cause(ctx))
		return nil
	case err := <-p.serveErr:
		return fmt.Errorf("http server: %w", err)
	}
}

// process is one running chattap and what it must stop, in order.
type process struct {
	log      *slog.Logger
	broker   *brokerConn
	http     *http.Server
	pprof    *http.Server
	serveErr chan error
	pub      *ingest.Publisher
	stages   []stage
}

// stage is a consumer-driven part (mapper, sinks) that stops on its own.
type stage interface {
	Stop(ctx context.Context) error
}

func (p *process) start(ctx context.Context, c *config, environ []string, stdout io.Writer) error {
	reg := metrics.New()
	if c.PprofAddr != "" {
		var err error
		if p.pprof, err = startPprof(c.PprofAddr, p.log); err != nil {
			return fmt.Errorf("CHATTAP_PPROF_ADDR: %w", err)
		}
	}
	settings, err := broker.OpenSettings(ctx, p.broker.js)
	if err != nil {
		return err
	}
	if envIsSet(environ, "CHATTAP_RECORD_LIVE_CHAT_EVENTS") && settings.Current().RecordLiveChatEvents != c.Record {
		next := settings.Current()
		next.RecordLiveChatEvents = c.Record
		if err := settings.Put(ctx, next); err != nil {
			return err
		}
	}
	if err := settings.Watch(ctx); err != nil {
		return err
	}
	im := metrics.NewIngest(reg)
	if c.has(roleIngest) {
		p.pub, err = ingest.NewPublisher(p.broker.nc, c.Ingest.PublishBuffer, c.Ingest.PublishWindow, 5*time.Second, p.log, im)
		if err != nil {
			return err
		}
	}
	if err := p.startStages(ctx, c, settings, reg, stdout); err != nil {
		return err
	}
	js := p.broker.js
	srv, err := ingest.New(ingest.Deps{
		Options:        c.Ingest,
		Publisher:      p.pub,
		Settings:       settings,
		Ready:          func(ctx context.Context) error { return broker.Check(ctx, js) },
		Recent:         ingest.RecentEvents(js),
		Metrics:        im,
		MetricsHandler: reg.Handler(),
		ChannelFields:  c.channelFields(),
		Log:            p.log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.ListenAddr)
	if err != nil {
		return fmt.Errorf("CHATTAP_LISTEN_ADDR: %w", err)
	}
	p.http = &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	p.serveErr = make(chan error, 1)
	go func() {
		if err := p.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.serveErr <- err
		}
	}()
	p.log.Info("chattap listening", "addr", ln.Addr().String(), "roles", c.Roles, "version", versionString())
	return nil
}

// stop shuts down in the order that loses nothing: HTTP intake first, then
// the publisher's buffer, then the consumers and sinks, then the broker.
// What does not finish within ctx stays unacknowledged in JetStream and is
// delivered again after the next start.
func (p *process) stop(ctx context.Context) {
	if p.http != nil {
		// Exchanges still waiting on a slow upstream get half the budget;
		// then their connections are closed, which cancels them (and
		// records them as 502s), so the publisher keeps time to flush.
		deadline, _ := ctx.Deadline()
		hctx, cancel := context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)/2))
		if err := p.http.Shutdown(hctx); err != nil {
			p.log.Warn("http shutdown: closing the exchanges still open", "err", err)
			_ = p.http.Close()
		}
		cancel()
	}
	if p.pub != nil {
		if err := p.pub.Stop(ctx); err != nil {
			p.log.Warn("publisher stop", "err", err)
		}
	}
	for _, s := range p.stages {
		if err := s.Stop(ctx); err != nil {
			p.log.Warn("stage stop", "err", err)
		}
	}
	p.broker.close(ctx)
	if p.pprof != nil {
		_ = p.pprof.Close()
	}
	p.log.Info("stopped")
}
