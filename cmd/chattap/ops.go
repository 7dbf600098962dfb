package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/spec"
)

// The tools below open the same store serve uses: CHATTAP_NATS_URL when it
// is set, else the embedded store under CHATTAP_DATA_DIR, which needs serve
// stopped (or reachable through CHATTAP_NATS_LISTEN and CHATTAP_NATS_URL).

// tool loads the configuration and opens the broker for a subcommand; the
// returned close must be called. It never creates a store: without
// CHATTAP_NATS_URL the store under CHATTAP_DATA_DIR must exist already.
func tool(ctx context.Context, environ []string, stderr io.Writer) (*config, *brokerConn, *slog.Logger, func(), error) {
	c, err := loadConfig(environ)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if c.NatsURL == "" {
		if err := storeExists(c.DataDir); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	c.LogLevel = "warn"
	log := c.logger(stderr)
	b, err := openBroker(ctx, c, log, false)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return c, b, log, func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		b.close(cctx)
	}, nil
}

// storeExists reports whether dir holds a JetStream store that chattap
// serve made; a tool starting the embedded server on an empty folder would
// quietly create one there.
func storeExists(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no store in %s (CHATTAP_DATA_DIR): chattap serve has not run with this CHATTAP_DATA_DIR; set it to serve's store, or CHATTAP_NATS_URL to its NATS", dir)
		}
		return fmt.Errorf("store %s: %w", dir, err)
	}
	return nil
}

func runTail(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tail", "Print Live Chat events from CHATTAP_EVENTS, or with -raw the recorded exchanges on\nCHATTAP_RAW (every record, also those that produced no event), one JSON line each.\n\nOn a NATS server (CHATTAP_NATS_URL) tail follows new messages until interrupted;\nby default it starts with the next one. On the embedded store of a stopped serve\n(CHATTAP_DATA_DIR) nothing can write, so it prints what is stored (by default all\nof it), says so and exits.", stderr)
	raw := fs.Bool("raw", false, "print the records on CHATTAP_RAW instead of the events")
	conversation := fs.String("conversation", "", "only this conversation (a record's conversation_id, an event's properties.conversation_id)")
	subject := fs.String("subject", "", "only this subject or wildcard, e.g. chattap.events.identify or chattap.raw.addon.>")
	since := fs.Duration("since", 0, "start this far back (e.g. 10m)")
	all := fs.Bool("all", false, "start from the first message stored")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, b, _, closeBroker, err := tool(ctx, environ, stderr)
	if err != nil {
		return err
	}
	defer closeBroker()
	// The tool runs the embedded server itself only when no serve holds
	// the store (the store's lock), so there is no live writer to wait for.
	follow := b.emb == nil
	n, err := sinks.Tail(ctx, b.js, stdout, sinks.TailOptions{Raw: *raw, Subject: *subject, Conversation: *conversation, Since: *since, All: *all, Follow: follow})
	if err != nil {
		return err
	}
	what := "events"
	if *raw || strings.HasPrefix(*subject, spec.SubjectRawPrefix) {
		what = "records"
	}
	switch {
	case follow:
	case n == 0:
		fmt.Fprintf(stderr, "no %s stored that match (store %s, no chattap serve running on it)\n", what, c.DataDir)
	default:
		fmt.Fprintf(stderr, "printed the %d %s stored; no chattap serve is running on %s, so nothing new will come\n", n, what, c.DataDir)
	}
	return nil
}

func runReplay(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("replay", "Deliver events from CHATTAP_EVENTS again to one sink, configured as for serve.\nDestinations drop the duplicates by messageId; the running consumers are not touched.", stderr)
	sinkName := fs.String("sink", "", "the sink: segment, webhook or file (required)")
	since := fs.Duration("since", 0, "the events stored in this last stretch of time, e.g. 2h")
	from := fs.String("from", "", "the events stored from this time on (RFC 3339)")
	to := fs.String("to", "", "with -from: up to this time (RFC 3339); default now")
	fromSeq := fs.Uint64("from-seq", 0, "the events from this stream sequence on")
	toSeq := fs.Uint64("to-seq", 0, "with -from-seq: up to this sequence, included; default the end")
	subject := fs.String("subject", "", "only this subject, e.g. chattap.events.live_chat_message_sent")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r := sinks.Range{Since: *since, FromSeq: *fromSeq, ToSeq: *toSeq, Subject: *subject}
	var err error
	if r.From, r.To, err = timeRange(*from, *to); err != nil {
		return err
	}
	chosen := 0
	for _, set := range []bool{r.Since > 0, !r.From.IsZero(), r.FromSeq > 0} {
		if set {
			chosen++
		}
	}
	if *sinkName == "" || chosen != 1 {
		return errors.New("replay needs -sink and exactly one of -since, -from or -from-seq (see `chattap replay -h`)")
	}
	c, b, log, closeBroker, err := tool(ctx, environ, stderr)
	if err != nil {
		return err
	}
	defer closeBroker()
	list, err := sinks.New(c.Sinks, sinks.Deps{Logger: log, Stdout: stdout})
	if err != nil {
		return err
	}
	defer closeSinks(list)
	sink, err := pickSink(list, *sinkName)
	if err != nil {
		return err
	}
	res, err := sinks.Replay(ctx, b.js, sink, r, sinks.ReplayOptions{})
	if err == nil && empty(res) {
		fmt.Fprintln(stderr, "no events stored in that range: nothing to replay")
		return nil
	}
	printJSON(stderr, res)
	return err
}

func runDLQ(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	usage := "Usage: chattap dlq list|replay|drop [flags]\n\n" +
		"  list    print dead letters as JSON lines\n" +
		"  replay  deliver the selected dead letters again through their sink; delivered ones leave the DLQ\n" +
		"  drop    delete the selected dead letters\n\n" +
		"replay and drop need -id, -seq or -all. `chattap dlq list -h` shows the flags.\n\n" +
		"Example:\n  " + examples["dlq"]
	if len(args) == 0 {
		return errors.New("dlq needs a subcommand: list, replay or drop (see `chattap dlq -h`)")
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprintln(stderr, usage)
		return nil
	}
	if strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("dlq: %s before the subcommand: name list, replay or drop first (see `chattap dlq -h`)", args[0])
	}
	verb, args := args[0], args[1:]
	summary := map[string]string{
		"list":   "Print dead letters as JSON lines: seq, sink, reason, attempts, time, id, event and the message.",
		"replay": "Deliver the selected dead letters again through their sink, configured as for serve.\nDelivered ones leave the DLQ; failing ones stay.",
		"drop":   "Delete the selected dead letters.",
	}[verb]
	if summary == "" {
		return fmt.Errorf("dlq: unknown subcommand %q: list, replay or drop (see `chattap dlq -h`)", verb)
	}
	fs := newFlagSet("dlq "+verb, summary, stderr)
	var f sinks.DLQFilter
	fs.StringVar(&f.Sink, "sink", "", "only the dead letters of this sink")
	if verb != "list" {
		fs.Func("id", "a messageId to select (repeat or comma-separate)", func(s string) error {
			f.IDs = append(f.IDs, strings.Split(s, ",")...)
			return nil
		})
		fs.Func("seq", "a CHATTAP_DLQ sequence to select (repeat or comma-separate)", func(s string) error {
			for _, part := range strings.Split(s, ",") {
				n, err := strconv.ParseUint(strings.TrimSpace(part), 10, 64)
				if err != nil {
					return err
				}
				f.Sequences = append(f.Sequences, n)
			}
			return nil
		})
		fs.BoolVar(&f.All, "all", false, "select every dead letter (of -sink, if given)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, b, log, closeBroker, err := tool(ctx, environ, stderr)
	if err != nil {
		return err
	}
	defer closeBroker()
	switch verb {
	case "list":
		n, err := sinks.ListDLQ(ctx, b.js, f, stdout)
		if err == nil && n == 0 {
			fmt.Fprintln(stderr, noDeadLetters(f))
		}
		return err
	case "drop":
		n, err := sinks.DropDLQ(ctx, b.js, f)
		if err != nil {
			return err
		}
		if n == 0 {
			fmt.Fprintln(stderr, noDeadLetters(f)+" selected: dropped none")
			return nil
		}
		fmt.Fprintf(stderr, "dropped %d dead letters\n", n)
		return nil
	}
	list, err := sinks.New(c.Sinks, sinks.Deps{Logger: log, Stdout: stdout})
	if err != nil {
		return err
	}
	defer closeSinks(list)
	res, err := sinks.ReplayDLQ(ctx, b.js, list, f, sinks.ReplayOptions{})
	if err == nil && empty(res) {
		fmt.Fprintln(stderr, noDeadLetters(f)+" selected: nothing to replay")
		return nil
	}
	printJSON(stderr, res)
	return err
}

// noDeadLetters says that the DLQ (of f's sink) holds nothing f selects.
func noDeadLetters(f sinks.DLQFilter) string {
	if f.Sink != "" {
		return "no dead letters of sink " + f.Sink
	}
	return "no dead letters"
}

func pickSink(list []sinks.Sink, name string) (sinks.Sink, error) {
	var names []string
	for _, s := range list {
		if s.Name() == name {
			return s, nil
		}
		names = append(names, s.Name())
	}
	return nil, fmt.Errorf("sink %q is not configured (configured: %s)", name, strings.Join(names, ", "))
}

func closeSinks(list []sinks.Sink) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range list {
		_ = s.Close(ctx)
	}
}

func printJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintln(w, string(b))
}

// empty says a replay found nothing to do.
func empty(r sinks.ReplayResult) bool {
	return r.Delivered == 0 && r.Failed == 0 && r.DeadLettered == 0 && r.Skipped == 0
}

// timeRange reads the -from and -to flags of replay and remap: RFC 3339
// times, each optional.
func timeRange(from, to string) (time.Time, time.Time, error) {
	var f, t time.Time
	var err error
	if from != "" {
		if f, err = time.Parse(time.RFC3339, from); err != nil {
			return f, t, fmt.Errorf("-from: %w", err)
		}
	}
	if to != "" {
		if t, err = time.Parse(time.RFC3339, to); err != nil {
			return f, t, fmt.Errorf("-to: %w", err)
		}
	}
	return f, t, nil
}
