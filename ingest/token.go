package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
)

// tokenMatches compares in constant time; hashing first makes the time
// independent of the lengths too.
func tokenMatches(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// requireToken answers 403 and counts the attempt unless the request
// carries want in one of the places get looks; with want empty every
// request passes. Nothing is read, forwarded or recorded for a refused one.
func requireToken(want, route string, get func(*http.Request) string, s *Server) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if want == "" {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !tokenMatches(get(r), want) {
				s.Metrics.Forbidden(route)
				s.Metrics.Request(route, http.StatusForbidden)
				s.Log.Warn("request refused: missing or wrong token", "route", route, "remote", r.RemoteAddr)
				encodeError(w, http.StatusForbidden, "missing or wrong token")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func headerToken(name string) func(*http.Request) string {
	return func(r *http.Request) string { return r.Header.Get(name) }
}

// addonToken reads the add-on token from the query or X-Chattap-Token.
func addonToken(r *http.Request) string {
	if t := r.Header.Get("X-Chattap-Token"); t != "" {
		return t
	}
	return r.URL.Query().Get("token")
}

func bearerToken(r *http.Request) string {
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) > len(prefix) && h[:len(prefix)] == prefix {
		return h[len(prefix):]
	}
	return ""
}
