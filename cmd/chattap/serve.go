package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/sinks"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	unsafe := c.unsafeStart()
	if len(unsafe) > 0 && !c.AllowOpen {
		return fmt.Errorf("refusing to start:\n  %w", joinLines(unsafe))
	}
	log := c.logger(stderr)
	for _, err := range unsafe {
		log.Warn("starting unprotected, as CHATTAP_ALLOW_UNAUTHENTICATED=true allows", "problem", strings.SplitN(err.Error(), ". ", 2)[0])
	}
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
	ingest   *ingest.Server
	admin    *http.Server
	pprof    *http.Server
	sinks    *sinks.Runner
	serveErr chan error
	pub      *ingest.Publisher
	debugger *ingest.Debugger
	debugNC  *nats.Conn
	stages   []stage
}

// stage is a consumer-driven part (mapper, sinks) that stops on its own.
type stage interface {
	Stop(ctx context.Context) error
}

func (p *process) start(ctx context.Context, c *config, environ []string, stdout io.Writer) error {
	reg := metrics.New()
	if c.PprofAddr != "" && c.PprofAddr != c.AdminAddr {
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
	if c.Ingest.AdminToken != "" {
		if err := p.startDebugger(ctx, settings, reg); err != nil {
			return err
		}
	}
	srv, err := ingest.New(ingest.Deps{
		Options:        c.Ingest,
		Publisher:      p.pub,
		Settings:       settings,
		Ready:          p.ready(js, !c.has(roleIngest)),
		Degraded:       p.degraded(c.has(roleIngest)),
		Debugger:       p.debugger,
		Metrics:        im,
		MetricsHandler: reg.Handler(),
		ChannelFields:  c.channelFields(),
		SeparateAdmin:  c.AdminAddr != "",
		Log:            p.log,
	})
	if err != nil {
		return err
	}
	p.serveErr = make(chan error, 2)
	if c.AdminAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/", srv.AdminHandler())
		if c.PprofAddr == c.AdminAddr {
			mountPprof(mux)
		}
		ln, err := net.Listen("tcp", c.AdminAddr)
		if err != nil {
			return fmt.Errorf("CHATTAP_ADMIN_ADDR: %w", err)
		}
		p.admin = p.serve(ln, mux)
		p.admin.RegisterOnShutdown(p.closeDebugger)
		p.log.Info("admin listening", "addr", ln.Addr().String(), "pprof", c.PprofAddr == c.AdminAddr)
	}
	ln, err := net.Listen("tcp", c.ListenAddr)
	if err != nil {
		return fmt.Errorf("CHATTAP_LISTEN_ADDR: %w", err)
	}
	p.http, p.ingest = p.serve(ln, srv), srv
	// Debugger streams never end by themselves: Shutdown ends them.
	p.http.RegisterOnShutdown(p.closeDebugger)
	if c.has(roleIngest) {
		logRoutes(p.log, c)
	}
	p.log.Info("chattap listening", "addr", ln.Addr().String(), "roles", c.Roles, "version", versionString())
	return nil
}

// serve serves h on ln until stopped; a failure reaches serveErr.
func (p *process) serve(ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.serveErr <- err
		}
	}()
	return srv
}

// ready is what /readyz asks: the broker and the streams; in a process
// without the taps, also whether every sink's destination takes chattap's
// requests (a 503 there takes no chat down).
func (p *process) ready(js jetstream.JetStream, sinksToo bool) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := broker.Check(ctx, js); err != nil {
			return err
		}
		if sinksToo {
			// Without the taps nothing is lost by a 503 here; with them
			// degraded says it with a 200, the chat going on unrecorded.
			if err := p.broker.health(); err != nil {
				return err
			}
		}
		if sinksToo && p.sinks != nil {
			return p.sinks.Health()
		}
		return nil
	}
}

// degraded is, in a process with the taps, a sink whose destination
// refuses chattap: /readyz says so with a 200, because a load balancer
// that took the taps away for it would break the chat, which still works
// and is still recorded.
func (p *process) degraded(taps bool) func() error {
	if !taps {
		return nil
	}
	return func() error {
		if err := p.broker.health(); err != nil {
			return err
		}
		if p.sinks != nil {
			return p.sinks.Health()
		}
		return nil
	}
}

// logRoutes says, at start, which routes that record are protected by a
// token and which are open to anyone who reaches the listener.
func logRoutes(log *slog.Logger, c *config) {
	var protected, open []string
	for _, r := range c.Ingest.RecordingRoutes() {
		if r.Protected {
			protected = append(protected, r.Route)
		} else {
			open = append(open, r.Route+" ("+r.TokenEnv+")")
		}
	}
	if len(open) > 0 {
		level := slog.LevelInfo
		if !isLoopback(c.ListenAddr) {
			level = slog.LevelWarn // only with CHATTAP_ALLOW_UNAUTHENTICATED=true
		}
		log.Log(context.Background(), level, "routes open to anyone who reaches the listener: set their tokens to protect them", "open", open, "listen", c.ListenAddr)
	}
	log.Info("routes", "protected", protected, "open", len(open))
}

// startDebugger starts the live debugger on a connection of its own: it
// receives a copy of every message stored, per open page, and a slow page
// must never make the broker cut the pipeline's connection as a slow
// consumer.
func (p *process) startDebugger(ctx context.Context, settings *broker.SettingsStore, reg *metrics.Registry) error {
	nc, err := p.broker.connect("chattap-debugger")
	if err != nil {
		return fmt.Errorf("debugger: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("debugger: %w", err)
	}
	dbg := ingest.NewDebugger(ingest.DebuggerDeps{JS: js, Settings: settings, Counter: reg.Gather, Log: p.log})
	if err := dbg.Start(ctx); err != nil {
		nc.Close()
		return err
	}
	p.debugger, p.debugNC = dbg, nc
	return nil
}

// closeDebugger ends the debugger's streams; it is idempotent.
func (p *process) closeDebugger() {
	if p.debugger != nil {
		p.debugger.Close()
	}
}

// stop shuts down in the order that loses nothing: HTTP intake first, then
// the publisher's buffer, then the consumers and sinks, then the broker.
// What does not finish within ctx stays unacknowledged in JetStream and is
// delivered again after the next start.
func (p *process) stop(ctx context.Context) {
	if p.admin != nil {
		_ = p.admin.Close()
	}
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
		// Close does not wait for the handlers it cut: each still records
		// its exchange, and must hand that record over before the
		// publisher stops. Half of what is left, so the publisher keeps
		// the other half to flush.
		dctx, cancel := context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)/2))
		if n := p.ingest.Drain(dctx); n > 0 {
			p.log.Warn("http shutdown: exchanges still being served when the publisher stops; their records will be lost, each logged", "exchanges", n)
		}
		cancel()
	}
	if p.debugger != nil {
		p.debugger.Close()
		p.debugNC.Close()
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
