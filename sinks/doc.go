// Package sinks delivers the Live Chat events on CHATTAP_EVENTS to their
// destinations: Segment (through analytics-go), any HTTP endpoint that takes
// Segment's /v1/batch JSON (webhook), and a JSON-lines file or standard
// output (file).
//
// Each enabled Sink gets its own durable pull consumer ("sink-<name>"), so a
// slow or dead destination only ever holds back itself. A JetStream message
// is acked only once its destination accepted it; a retryable failure is
// NAKed with a growing delay (a destination's Retry-After is honoured); a
// permanent failure, or one that is still failing after
// DeliveryOptions.MaxDeliveries, is published to chattap.dlq.<sink> with
// headers saying why, and only then terminated. Nothing is ever acked on
// the way out: whatever was not delivered when the Runner stops is simply
// redelivered by JetStream later, and destinations drop the duplicates by
// messageId.
//
// The operations behind `chattap dlq`, `chattap replay` and `chattap tail`
// (ListDLQ, DropDLQ, ReplayDLQ, Replay, Tail) are plain functions over a
// jetstream.JetStream, so they work on the embedded store of a stopped
// chattap as well as on an external NATS.
package sinks
