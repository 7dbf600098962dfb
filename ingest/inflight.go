package ingest

import (
	"context"
	"net/http"
	"time"
)

// inFlight counts the exchange while h serves it, so that Drain can wait
// for it: an exchange whose connection http.Server.Close cut still records
// its 502 after Close returned, and that record must reach the publisher
// before the publisher stops.
func (s *Server) inFlight(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.running.Add(1)
		defer s.running.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// Drain waits until no tap or add-on exchange is being served, or ctx
// ends; it returns how many still were. Call it after the HTTP server
// stopped taking requests (Shutdown or Close), before Publisher.Stop:
// http.Server.Close does not wait for its handlers.
func (s *Server) Drain(ctx context.Context) int64 {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		n := s.running.Load()
		if n == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return n
		case <-tick.C:
		}
	}
}
