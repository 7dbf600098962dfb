package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/caarlos0/env/v11"
)

// runHealth asks a running chattap for /healthz or /readyz: the Docker
// HEALTHCHECK and anything else that can only run a command. It reads
// nothing but CHATTAP_LISTEN_ADDR, so a setting that serve would refuse
// cannot make a healthy process look sick, and it never opens the store.
func runHealth(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("health", "Ask the chattap listening on CHATTAP_LISTEN_ADDR whether it is alive (GET /healthz)\nor, with -ready, ready (GET /readyz: broker reachable, streams present).\nExits 0 on 200 and 1 otherwise, printing the answer.", stderr)
	ready := fs.Bool("ready", false, "ask /readyz instead of /healthz")
	addr := fs.String("addr", "", "host:port to ask; default CHATTAP_LISTEN_ADDR, asked on loopback when its host is empty or unspecified")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	listen := *addr
	if listen == "" {
		listen = listenAddr(environ)
	}
	target, err := loopbackTarget(listen)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	url := "http://" + target + path
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	body = bytes.TrimSpace(body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: GET %s: %d %s", url, resp.StatusCode, body)
	}
	fmt.Fprintf(stdout, "GET %s: %d %s\n", url, resp.StatusCode, body)
	return nil
}

// listenAddr is CHATTAP_LISTEN_ADDR as serve reads it: the variable, else
// its default from the config struct's tag.
func listenAddr(environ []string) string {
	if v, ok := env.ToMap(environ)["CHATTAP_LISTEN_ADDR"]; ok {
		return v
	}
	for _, s := range settings(&config{}) {
		if s.Env == "CHATTAP_LISTEN_ADDR" {
			return s.Default
		}
	}
	return ""
}

// loopbackTarget turns a listen address into one to dial: ":8080" and
// "0.0.0.0:8080" listen everywhere, so they are asked on 127.0.0.1 (and
// "[::]:8080" on [::1]).
func loopbackTarget(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), nil
}
