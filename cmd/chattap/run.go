package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

// command is one subcommand of chattap.
type command struct {
	name, summary string
	run           func(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the taps, the mapper and the sinks (the default)", runServe},
		{"tail", "print Live Chat events from CHATTAP_EVENTS as JSON lines", runTail},
		{"replay", "re-deliver a time or sequence range of CHATTAP_EVENTS to one sink", runReplay},
		{"remap", "map recorded exchanges of CHATTAP_RAW again and publish the events not yet delivered", runRemap},
		{"dlq", "list, replay or drop dead letters", runDLQ},
		{"config", "print every setting: its variable, default and current value (secrets redacted)", runConfig},
		{"version", "print chattap's version", runVersion},
		{"help", "explain chattap and its subcommands", runHelp},
	}
}

// run is the whole program: main only calls it, so tests can too, with a
// made-up environment.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(ctx, args, environ, stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	return fmt.Errorf("unknown command %q: see `chattap help`", name)
}

func runHelp(_ context.Context, args, _ []string, stdout, _ io.Writer) error {
	fmt.Fprint(stdout, `chattap taps a Userlike chatbot or Custom Channel, records every conversation
event in NATS JetStream, and delivers Segment Live Chat events to Segment and
other analytics tools. It is configured with CHATTAP_* environment variables
(see `+"`chattap config`"+`).

Usage: chattap [command] [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(stdout, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(stdout, "\n`chattap COMMAND -h` explains a command's flags.")
	return nil
}

func runVersion(_ context.Context, args, _ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "print chattap's version and the Go version it was built with", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "chattap %s (%s)\n", versionString(), runtime.Version())
	return nil
}

// versionString is chattap's version: set at build time, else the module's,
// else "dev".
func versionString() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

func runConfig(_ context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("config", "print every setting: its variable, default and current value; secrets are redacted", stderr)
	markdown := fs.Bool("markdown", false, "print the variables, defaults and meanings as a Markdown table (no current values)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *markdown {
		return printConfigMarkdown(stdout)
	}
	c, err := loadConfig(environ)
	if err != nil {
		return err
	}
	return printConfig(stdout, c)
}

// newFlagSet makes a subcommand's flag set whose -h explains it.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: chattap %s [flags]\n\n%s\n", name, summary)
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}
