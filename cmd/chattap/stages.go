package main

import (
	"context"
	"io"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/sinks"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// startStages starts the mapper and the sinks this process runs, in the
// order they must stop: the mapper first, so that the sinks see its last
// events.
func (p *process) startStages(ctx context.Context, c *config, settings *broker.SettingsStore, reg *metrics.Registry, stdout io.Writer) error {
	var consumers []metrics.ConsumerState // the durable consumers whose lag this process exports
	defer func() {
		if len(consumers) > 0 {
			reg.WatchConsumers(consumerStates(p.broker.js, consumers))
		}
	}()
	if c.has(roleMapper) {
		m, err := mapper.New(c.mapperOptions())
		if err != nil {
			return err
		}
		r := mapper.NewRunner(p.broker.js, m, settings.Current, p.log, metrics.NewMapper(reg), c.MapperRunner)
		if err := r.Start(ctx); err != nil {
			return err
		}
		p.stages = append(p.stages, r)
		for _, lane := range c.MapperRunner.Lanes() {
			consumers = append(consumers, metrics.ConsumerState{Stream: spec.StreamRaw, Consumer: lane.Durable})
		}
	}
	if c.has(roleSinks) {
		deps := sinks.Deps{Logger: p.log, Metrics: metrics.NewSinks(reg), Stdout: stdout}
		list, err := sinks.New(c.Sinks, deps)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			p.log.Warn("no sink is configured: events stay on CHATTAP_EVENTS (set CHATTAP_SEGMENT_WRITE_KEY, CHATTAP_WEBHOOK_SINK_URL or CHATTAP_FILE_SINK_PATH)")
			return nil
		}
		names := make([]string, len(list))
		for i, s := range list {
			names[i] = s.Name()
		}
		r, err := sinks.NewRunner(p.broker.js, c.Sinks.Delivery, deps, list...)
		if err != nil {
			closeSinks(list)
			return err
		}
		if err := r.Start(ctx); err != nil {
			return err
		}
		p.stages = append(p.stages, r)
		for _, s := range list {
			consumers = append(consumers, metrics.ConsumerState{Stream: spec.StreamEvents, Consumer: sinks.ConsumerName(s.Name())})
		}
		p.sinks = r
		p.log.Info("sinks on", "sinks", names, "file", fileSinkTarget(c))
	}
	return nil
}

// consumerStates reads the lag of the named consumers from the broker at
// each scrape; a consumer it cannot read is left out of that scrape.
func consumerStates(js jetstream.JetStream, named []metrics.ConsumerState) func(context.Context) []metrics.ConsumerState {
	return func(ctx context.Context) []metrics.ConsumerState {
		out := make([]metrics.ConsumerState, 0, len(named))
		for _, n := range named {
			cons, err := js.Consumer(ctx, n.Stream, n.Consumer)
			if err != nil {
				continue
			}
			info, err := cons.Info(ctx)
			if err != nil {
				continue
			}
			n.Pending, n.AckPending = info.NumPending, uint64(info.NumAckPending)
			out = append(out, n)
		}
		return out
	}
}

// fileSinkTarget says where the file sink writes, for the startup log.
func fileSinkTarget(c *config) string {
	switch c.Sinks.File.Path {
	case "":
		return "off"
	case "-":
		return "standard output"
	}
	return c.Sinks.File.Path
}
