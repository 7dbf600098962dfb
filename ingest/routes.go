package ingest

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// routes is every route chattap serves on its public listener: the taps
// and health, and, unless Deps.SeparateAdmin moves them to AdminHandler,
// the operator's routes too.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	if s.Publisher != nil {
		for _, t := range s.taps {
			var h http.Handler = t
			if t.tokenHeader != "" {
				h = requireToken(t.token, t.route, headerToken(t.tokenHeader), s)(h)
			}
			if t.target == nil && t.route != RouteWebhook {
				h = notConfigured(t.route)
			}
			r.Method(http.MethodPost, t.route, s.inFlight(h))
		}
		r.Method(http.MethodPost, RouteAddon, s.inFlight(requireToken(s.Options.AddonToken, RouteAddon, addonToken, s)(handleAddon(s))))
	}
	r.Method(http.MethodGet, "/healthz", handleHealthz())
	r.Method(http.MethodGet, "/readyz", handleReadyz(s))
	if !s.SeparateAdmin {
		s.adminRoutes(r)
	}
	return r
}

// adminRoutes are the operator's routes: /metrics, /admin/* and
// /debugger. The last two are on only with CHATTAP_ADMIN_TOKEN.
func (s *Server) adminRoutes(r chi.Router) {
	if s.MetricsHandler != nil {
		r.Method(http.MethodGet, "/metrics", s.MetricsHandler)
	}
	if s.Options.AdminToken != "" {
		admin := requireToken(s.Options.AdminToken, "/admin", bearerToken, s)
		if s.Settings != nil {
			r.Method(http.MethodGet, "/admin/settings", admin(handleGetSettings(s)))
			r.Method(http.MethodPut, "/admin/settings", admin(handlePutSettings(s)))
		}
		if s.Debugger != nil {
			r.Mount("/debugger", s.Debugger.Handler(admin))
		}
	}
}

// notConfigured answers a tap whose upstream is not set: there is nowhere
// to forward to, so nothing is forwarded or recorded.
func notConfigured(route string) http.Handler {
	env := map[string]string{
		RouteAPI:             "CHATTAP_USERLIKE_API_URL",
		RouteChannelOutbound: "CHATTAP_CHANNEL_OUTBOUND_URL",
		RouteChannelInbound:  "CHATTAP_CHANNEL_INBOUND_URL",
	}[route]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encodeError(w, http.StatusNotFound, route+" has no upstream: set "+env)
	})
}
