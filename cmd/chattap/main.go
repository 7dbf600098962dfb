// Command chattap taps the conversation traffic of a Userlike chatbot or
// Custom Channel, records every conversation event in NATS JetStream, maps
// it to Segment's Live Chat events and delivers them to Segment and other
// analytics tools. `chattap help` lists its subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// A reader of standard output that goes away (`chattap serve | head`,
	// a log shipper restarting) must not kill the chat with SIGPIPE: the
	// write fails instead, and the file sink retries it as any other.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, syscall.EPIPE) {
			// A tool's reader went away (`chattap config | head -3`):
			// what it wanted was printed, so stop quietly, as a tool
			// killed by SIGPIPE would, with the shell's status for it.
			stop()
			os.Exit(128 + int(syscall.SIGPIPE))
		}
		fmt.Fprintln(os.Stderr, "chattap:", err)
		stop()
		os.Exit(1)
	}
}
