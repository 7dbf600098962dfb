package ingest

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

//go:embed debugger
var debuggerFiles embed.FS

// DebuggerDeps are what the live debugger reads.
type DebuggerDeps struct {
	// JS is the JetStream context of the process; its connection carries
	// the debugger's core subscriptions.
	JS jetstream.JetStream
	// Settings is what the page shows and switches; nil leaves the
	// switches out.
	Settings SettingsReader
	// Counter reads a counter of this process's metrics, summed over the
	// labels left out (metrics.Registry.Gather fits); nil leaves the
	// sinks' own counts out.
	Counter func(name string, labels map[string]string) float64
	Log     *slog.Logger
	Now     func() time.Time
}

// SettingsReader is the part of the settings store the debugger reads.
type SettingsReader interface {
	Current() spec.Settings
}

// Debugger is the live debugger: one static page, a stream of what
// reaches CHATTAP_RAW and CHATTAP_EVENTS, and a state endpoint with the
// counts per event and the state of each sink. It never holds back NATS or
// the pipeline: every reader has a bounded buffer, and a reader that falls
// behind skips what it could not take. It is safe for concurrent use.
type Debugger struct {
	d     DebuggerDeps
	stats *eventStats

	mu      sync.Mutex
	subs    []*nats.Subscription
	closed  chan struct{}
	closing sync.Once
}

// NewDebugger returns a Debugger; Start begins counting.
func NewDebugger(d DebuggerDeps) *Debugger {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Debugger{d: d, stats: newEventStats(d.Now()), closed: make(chan struct{})}
}

// Start subscribes to CHATTAP_EVENTS and CHATTAP_RAW for the counts per
// minute and hour. It returns once subscribed.
func (dbg *Debugger) Start(ctx context.Context) error {
	nc := dbg.d.JS.Conn()
	ev, err := nc.Subscribe(spec.SubjectEventsPrefix+">", func(m *nats.Msg) {
		dbg.stats.event(dbg.d.Now(), m)
	})
	if err != nil {
		return fmt.Errorf("debugger: subscribe to events: %w", err)
	}
	raw, err := nc.Subscribe(spec.SubjectRawPrefix+">", func(m *nats.Msg) {
		dbg.stats.record(dbg.d.Now(), m)
	})
	if err != nil {
		_ = ev.Unsubscribe()
		return fmt.Errorf("debugger: subscribe to records: %w", err)
	}
	dbg.mu.Lock()
	dbg.subs = append(dbg.subs, ev, raw)
	dbg.mu.Unlock()
	return nil
}

// Close ends every open stream at once (register it with
// http.Server.RegisterOnShutdown: a stream never ends by itself) and stops
// counting. It is idempotent.
func (dbg *Debugger) Close() {
	dbg.closing.Do(func() {
		close(dbg.closed)
		dbg.mu.Lock()
		defer dbg.mu.Unlock()
		for _, s := range dbg.subs {
			_ = s.Unsubscribe()
		}
		dbg.subs = nil
	})
}

// Handler serves the debugger under /debugger on any router: the page
// and its files at /debugger, /debugger/app.js, /debugger/app.css (no
// token: they hold no data), and behind guard the data,
// /debugger/stream and /debugger/state. Mount it with
// r.Mount("/debugger", dbg.Handler(guard)).
func (dbg *Debugger) Handler(guard func(http.Handler) http.Handler) http.Handler {
	static, err := fs.Sub(debuggerFiles, "debugger")
	if err != nil {
		panic(err) // the embedded folder is part of the binary
	}
	r := chi.NewRouter()
	for route, name := range map[string]string{"/": "page.html", "/app.js": "app.js", "/app.css": "app.css"} {
		r.Method(http.MethodGet, route, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			securePage(w)
			http.ServeFileFS(w, r, static, name)
		}))
	}
	r.Method(http.MethodGet, "/stream", guard(handleDebuggerStream(dbg)))
	r.Method(http.MethodGet, "/state", guard(handleDebuggerState(dbg)))
	return r
}

// securePage keeps the page to its own files: no inline script, no other
// origin, no framing, and no Referer that could carry the fragment along.
func securePage(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}
