package main

import (
	"context"
	"io"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/metrics"
)

// startStages starts the mapper and the sinks this process runs.
func (p *process) startStages(ctx context.Context, c *config, settings *broker.SettingsStore, reg *metrics.Registry, stdout io.Writer) error {
	return nil
}
