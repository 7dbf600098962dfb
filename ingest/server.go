package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
)

// Deps are what the HTTP side needs from the rest of the process.
type Deps struct {
	Options Options
	// Publisher records Observations; nil turns the taps off (a process
	// that runs only the mapper or the sinks still serves health and
	// metrics).
	Publisher *Publisher
	// Settings backs /admin/settings; nil turns it off.
	Settings *broker.SettingsStore
	// Ready is what /readyz asks: nil when the broker answers and the
	// streams exist.
	Ready func(context.Context) error
	// Degraded, when it returns an error, makes /readyz answer 200 with
	// status "degraded" and that warning: something needs the operator
	// (a sink's destination refuses chattap) but the taps still work.
	// It must not block.
	Degraded func() error
	// Debugger serves /debugger (with the admin token); nil turns it off.
	Debugger       *Debugger
	Metrics        *metrics.Ingest
	MetricsHandler http.Handler
	ChannelFields  spec.ChannelFields
	// SeparateAdmin moves /metrics, /admin/* and /debugger from ServeHTTP
	// to AdminHandler, for a listener of their own (CHATTAP_ADMIN_ADDR).
	SeparateAdmin bool
	Log           *slog.Logger
	// Now and NewID default to time.Now and UUIDv7s.
	Now   func() time.Time
	NewID func() string
}

// Server is chattap's HTTP handler. It is safe for concurrent use.
type Server struct {
	Deps
	taps    []*tap
	handler http.Handler
	admin   http.Handler
	// running is the number of tap and add-on exchanges being served.
	running atomic.Int64
}

// New checks deps and builds the handler with every route.
func New(deps Deps) (*Server, error) {
	if err := deps.Options.Validate(); err != nil {
		return nil, err
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.NewID == nil {
		deps.NewID = newUUID
	}
	s := &Server{Deps: deps}
	transport := NewTransport(deps.Options.UpstreamTimeout)
	o := deps.Options
	for _, t := range []struct {
		route, target, header, token string
		source, reply                spec.Source
	}{
		{RouteWebhook, o.BotWebhookURL, "SECURITY-TOKEN", o.WebhookToken, spec.SourceChatbotWebhook, spec.SourceChatbotReply},
		{RouteAPI, o.UserlikeAPIURL, "SECURITY-TOKEN", o.UserlikeAPIToken, spec.SourceChatbotAPI, ""},
		{RouteChannelOutbound, o.ChannelOutboundURL, "API-SECURITY-TOKEN", o.ChannelOutboundTok, spec.SourceChannelOutbound, ""},
		{RouteChannelInbound, o.ChannelInboundURL, "API-SECURITY-TOKEN", o.ChannelInboundTok, spec.SourceChannelInbound, ""},
	} {
		tp := &tap{srv: s, route: t.route, source: t.source, reply: t.reply, tokenHeader: t.header, token: t.token}
		if t.target != "" {
			u, err := url.Parse(t.target)
			if err != nil {
				return nil, fmt.Errorf("%s upstream: %w", t.route, err)
			}
			tp.target = u
			tp.proxy = tp.newProxy(transport)
		}
		s.taps = append(s.taps, tp)
	}
	s.handler = s.routes()
	if deps.SeparateAdmin {
		r := chi.NewRouter()
		r.Use(middleware.Recoverer)
		s.adminRoutes(r)
		s.admin = r
	}
	return s, nil
}

// ServeHTTP implements http.Handler: the taps and health, and the
// operator's routes unless SeparateAdmin.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// AdminHandler serves /metrics, /admin/* and /debugger when SeparateAdmin
// is set; otherwise it is nil, as ServeHTTP serves them.
func (s *Server) AdminHandler() http.Handler { return s.admin }

func newUUID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
