// Package mapper turns Observations into Segment Live Chat events.
//
// It has two halves. Mapper is the pure mapping: one Observation plus the
// State of its conversation in, zero or more Segment messages and the next
// State out, with no I/O, no clock and no randomness, so that the same
// input always gives byte-identical output. Runner is the adapter to NATS:
// a durable pull consumer per partition of CHATTAP_RAW, each pinned to one
// replica at a time (priority groups), that splits each record into its
// Observations (spec.ReadRaw), maps a conversation's records in stream
// order, keeps each conversation's State in the chattap_conversations KV
// bucket, publishes every message to
// CHATTAP_EVENTS with its messageId as Nats-Msg-Id, and acks a record only
// after every message of every one of its Observations was stored.
package mapper
