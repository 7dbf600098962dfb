// Command chattap-bench measures chattap against the baselines a user
// would compare it with, on loopback, in one run: a client talking to the
// bot directly, through a plain httputil.ReverseProxy, and through
// chattap in each tap acknowledgement mode; end to end from the tap to a
// Segment-compatible receiver; and how throughput and memory grow with
// connections and with the conversations held in state. It prints
// Markdown tables (and JSON with -json).
//
// It starts everything itself: a fake chatbot, a /v1/batch receiver, the
// baseline proxy and chattap as child processes (built once from this
// module with go build), so run it from inside the chattap module:
//
//	go run ./cmd/chattap-bench            # every scenario, about 6 minutes on 2 cores
//	go run ./cmd/chattap-bench -quick     # about a minute and a half
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == baselineFlag {
		if err := serveBaseline(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "baseline proxy:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, errUsage) {
		fmt.Fprintln(os.Stderr, "chattap-bench:", err)
		os.Exit(1)
	}
	if err != nil {
		os.Exit(2)
	}
}

// run is the whole bench: main only calls it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	b, err := newBench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	rep, err := b.runAll(ctx)
	if rep != nil {
		rep.write(stdout)
		if cfg.jsonPath != "" {
			if jerr := rep.writeJSON(cfg.jsonPath); jerr != nil {
				err = errors.Join(err, jerr)
			}
		}
	}
	return err
}
