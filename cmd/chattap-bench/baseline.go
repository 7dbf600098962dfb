package main

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/chattap/chattap/ingest"
)

// baselineFlag runs the bench binary as the baseline proxy instead: the
// bench starts itself with it, so the baseline runs in a process of its
// own, like chattap, and its memory can be read the same way.
const baselineFlag = "-internal-baseline-proxy"

// baselineProxy is a plain httputil.ReverseProxy to target: what any Go
// proxy in front of the bot costs, without recording anything.
func baselineProxy(target *url.URL) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := *target
			u.RawQuery = pr.In.URL.RawQuery
			pr.Out.URL = &u
			pr.Out.Host = ""
		},
		Transport: ingest.NewTransport(30 * time.Second), // chattap's own pool: only the recording differs
	}
}

// serveBaseline is the whole baseline process: it serves until killed.
// The server is configured as chattap's own (cmd/chattap serve.go).
func serveBaseline(addr, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("baseline target: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("/", baselineProxy(u))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	return srv.ListenAndServe()
}
