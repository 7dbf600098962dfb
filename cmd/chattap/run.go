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
		{"tail", "print Live Chat events (or, with -raw, recorded exchanges) as JSON lines", runTail},
		{"replay", "re-deliver a time or sequence range of CHATTAP_EVENTS to one sink", runReplay},
		{"remap", "map recorded exchanges of CHATTAP_RAW again and publish the events not yet delivered", runRemap},
		{"dlq", "list, replay or drop dead letters", runDLQ},
		{"config", "print every setting: its variable, default and current value (secrets redacted)", runConfig},
		{"health", "ask a running chattap whether it is alive (/healthz) or ready (/readyz); exit 0 or 1", runHealth},
		{"version", "print chattap's version", runVersion},
		{"help", "explain chattap and its subcommands", runHelp},
	}
}

// examples holds one example per command (and dlq verb), shown by
// `chattap CMD -h`; TestEveryCommandHasAnExample keeps it complete.
var examples = map[string]string{
	"serve":      "CHATTAP_BOT_WEBHOOK_URL=http://127.0.0.1:3000/webhook chattap serve",
	"tail":       "chattap tail -since 10m -conversation chatbot::258:a567",
	"replay":     "chattap replay -sink segment -since 2h",
	"remap":      "chattap remap -since 24h -dry-run",
	"dlq":        "chattap dlq list -sink segment",
	"dlq list":   "chattap dlq list -sink segment",
	"dlq replay": "chattap dlq replay -sink segment -all",
	"dlq drop":   "chattap dlq drop -seq 12,13",
	"config":     "CHATTAP_LISTEN_ADDR=:9090 chattap config",
	"health":     "chattap health -ready",
	"version":    "chattap version",
	"help":       "chattap help tail",
}

// run is the whole program: main only calls it, so tests can too, with a
// made-up environment.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	name := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			name, args = "help", nil
		case "-version", "--version":
			name, args = "version", nil
		default:
			if strings.HasPrefix(args[0], "-") {
				return fmt.Errorf("unknown flag %s: see `chattap help`", args[0])
			}
			name, args = args[0], args[1:]
		}
	}
	c, ok := lookup(name)
	if !ok {
		return fmt.Errorf("unknown command %q: see `chattap help`", name)
	}
	err := c.run(ctx, args, environ, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func runHelp(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		c, ok := lookup(args[0])
		if !ok {
			return fmt.Errorf("help: unknown command %q: see `chattap help`", args[0])
		}
		// A command's -h writes its usage to stderr; help is asked for, so
		// it goes to stdout here.
		if c.name == "help" {
			args = []string{"-h"}
		} else {
			return c.run(ctx, []string{"-h"}, environ, stdout, stdout)
		}
	}
	fs := newFlagSet("help", "Explain chattap and its commands; `chattap help COMMAND` explains one.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprint(stdout, `chattap taps a Userlike chatbot, Custom Channel or add-on, records every
exchange in NATS JetStream, and delivers Segment Live Chat events to Segment
and other analytics tools. It is configured with CHATTAP_* environment
variables (see `+"`chattap config`"+`).

Usage: chattap [command] [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(stdout, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(stdout, "\n`chattap COMMAND -h` (or `chattap help COMMAND`) explains a command, with an example.\n`chattap --version` prints the version.\n")
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

// flagSet is a command's flags. Its Parse prints the usage, with the
// command's example, only when -h asks for it: a mistake gets one error
// line, which names the command to ask for help.
type flagSet struct {
	*flag.FlagSet
	name, summary string
	stderr        io.Writer
}

// newFlagSet makes a command's flag set whose -h explains it.
func newFlagSet(name, summary string, stderr io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), name: name, summary: summary, stderr: stderr}
	fs.Usage = fs.printUsage
	return fs
}

// Parse parses args; -h prints the usage and returns flag.ErrHelp, which
// run turns into success. Arguments left after the flags are a mistake.
func (fs *flagSet) Parse(args []string) error {
	fs.SetOutput(io.Discard)
	fs.FlagSet.Usage = func() {}
	err := fs.FlagSet.Parse(args)
	fs.FlagSet.Usage = fs.printUsage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.printUsage()
		return err
	case err != nil:
		return fmt.Errorf("%s: %w (see `chattap %s -h`)", fs.name, err, fs.name)
	case fs.NArg() > 0:
		return fmt.Errorf("%s: unexpected argument %q (see `chattap %s -h`)", fs.name, fs.Arg(0), fs.name)
	}
	return nil
}

func (fs *flagSet) printUsage() {
	fmt.Fprintf(fs.stderr, "Usage: chattap %s [flags]\n\n%s\n", fs.name, fs.summary)
	var any bool
	fs.VisitAll(func(*flag.Flag) { any = true })
	if any {
		fmt.Fprintln(fs.stderr, "\nFlags:")
		fs.SetOutput(fs.stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if ex := examples[fs.name]; ex != "" {
		fmt.Fprintf(fs.stderr, "\nExample:\n  %s\n", ex)
	}
}
