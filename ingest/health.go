package ingest

import (
	"context"
	"net/http"
	"time"
)

// handleHealthz says the process is alive; it asks nothing else.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz says whether the broker answers and the streams exist: 200
// or 503 with the reason. A Degraded answer is 200 with status "degraded"
// and the warning: the taps still work and record, so a load balancer
// must not take them off the chat for it.
func handleReadyz(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Ready == nil {
			encode(w, http.StatusOK, map[string]string{"status": "ready"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			encode(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
		if s.Degraded != nil {
			if err := s.Degraded(); err != nil {
				encode(w, http.StatusOK, map[string]string{"status": "degraded", "warning": err.Error()})
				return
			}
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
