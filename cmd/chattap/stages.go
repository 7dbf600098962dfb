package main

import (
	"context"
	"io"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/sinks"
)

// startStages starts the mapper and the sinks this process runs, in the
// order they must stop: the mapper first, so that the sinks see its last
// events.
func (p *process) startStages(ctx context.Context, c *config, settings *broker.SettingsStore, reg *metrics.Registry, stdout io.Writer) error {
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
		p.sinks = r
		p.log.Info("sinks on", "sinks", names, "file", fileSinkTarget(c))
	}
	return nil
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
