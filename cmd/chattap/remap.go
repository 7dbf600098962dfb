package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/mapper"
)

const remapSummary = `Map recorded exchanges on CHATTAP_RAW again, with today's settings (the Record
Live Chat Events toggle) and mapper options (CHATTAP_EVENTS, CHATTAP_EXTENDED_EVENTS,
…, as serve reads them), and publish to CHATTAP_EVENTS the events that are not
there yet: those recording was off for, an event disabled then, or a mapping
fixed since. Events already delivered keep their messageIds and are skipped, so
running it twice publishes nothing the second time. Each conversation the range
touches is mapped from its own first record, in memory: the running mapper's
conversation state (chattap_conversations) is never read or written.

It reads CHATTAP_RAW from its start to the end of the range and the headers of
CHATTAP_EVENTS since the first record of the conversations it maps. The summary
(records, events produced, already on CHATTAP_EVENTS, published) goes to stderr.

Other ranges:
  chattap remap -since 24h
  chattap remap -from 2026-11-21T00:00:00Z -to 2026-11-22T00:00:00Z
  chattap remap -from-seq 1200 -to-seq 1300
  chattap remap -conversation 'chatbot::258:a56785fb6fb84edd890905913b0c0821'`

func runRemap(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("remap", remapSummary, stderr)
	var r mapper.RemapRange
	fs.DurationVar(&r.Since, "since", 0, "the records stored in this last stretch of time, e.g. 24h")
	from := fs.String("from", "", "the records stored from this time on (RFC 3339)")
	to := fs.String("to", "", "with -from: up to this time (RFC 3339); default now")
	fs.Uint64Var(&r.FromSeq, "from-seq", 0, "the records from this CHATTAP_RAW sequence on")
	fs.Uint64Var(&r.ToSeq, "to-seq", 0, "with -from-seq: up to this sequence, included; default the end")
	fs.StringVar(&r.Conversation, "conversation", "", "only the records of this conversation (alone: all of them)")
	dryRun := fs.Bool("dry-run", false, "publish nothing; print the events that would be published as JSON lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if r.From, r.To, err = timeRange(*from, *to); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("%w (see `chattap remap -h`)", err)
	}
	c, b, log, closeBroker, err := tool(ctx, environ, stderr)
	if err != nil {
		return err
	}
	defer closeBroker()
	m, err := mapper.New(c.mapperOptions())
	if err != nil {
		return err
	}
	settings, err := broker.OpenSettings(ctx, b.js)
	if err != nil {
		return err
	}
	set := settings.Current()
	if !set.RecordLiveChatEvents {
		log.Warn("Record Live Chat Events is off: remapping yields no event; turn it on first (PUT /admin/settings)")
	}
	res, err := mapper.Remap(ctx, b.js, m, set, r, mapper.RemapOptions{DryRun: *dryRun})
	if *dryRun {
		for _, e := range res.Events {
			if _, werr := fmt.Fprintf(stdout, "%s\n", e); werr != nil {
				err = errors.Join(err, werr)
				break
			}
		}
	}
	printJSON(stderr, res)
	return err
}
