package mapper

import (
	"context"
	"fmt"
	"strings"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// liveMapper is how far the live mapper has got on CHATTAP_RAW: the ack
// floor of each of its durable consumers, with the subjects each reads.
// Remap selects no record beyond the floor of the consumer that maps it:
// a record the live mapper has yet to map would be published by both, and
// the stream's duplicate window would drop the second copy only if the
// live mapper got there within minutes. Reading a consumer's info moves
// nothing. (Records acked beyond a floor wait for a later remap.)
//
// The live mapper's consumers are found by name, not by asking the Runner,
// so that remap follows a deployment whose layout it did not declare: the
// single consumer "mapper" of an unpartitioned one, or the consumers
// "mapper-…" of one mapped by partition, beside which "mapper" is retired
// and no longer read.
type liveMapper struct {
	lanes []liveLane
}

type liveLane struct {
	filters []string
	floor   uint64
}

func readLiveMapper(ctx context.Context, js jetstream.JetStream) (liveMapper, error) {
	var l liveMapper
	st, err := js.Stream(ctx, spec.StreamRaw)
	if err != nil {
		return l, fmt.Errorf("live mapper consumers: %w", err)
	}
	var retired *liveLane
	list := st.ListConsumers(ctx)
	for info := range list.Info() {
		name := info.Config.Durable
		if name != spec.ConsumerMapper && !strings.HasPrefix(name, spec.ConsumerMapper+"-") {
			continue
		}
		lane := liveLane{filters: info.Config.FilterSubjects, floor: info.AckFloor.Stream}
		if f := info.Config.FilterSubject; f != "" {
			lane.filters = append(lane.filters, f)
		}
		if name == spec.ConsumerMapper {
			retired = &lane
			continue
		}
		l.lanes = append(l.lanes, lane)
	}
	if err := list.Err(); err != nil {
		return l, fmt.Errorf("live mapper consumers: %w", err)
	}
	if len(l.lanes) == 0 && retired != nil {
		l.lanes = append(l.lanes, *retired)
	}
	return l, nil
}

// past reports whether the live mapper is done with the record at seq,
// stored on subject: every consumer of its that reads the subject has
// acked it. With no live mapper every record is.
func (l liveMapper) past(subject string, seq uint64) bool {
	for _, lane := range l.lanes {
		if seq > lane.floor && lane.reads(subject) {
			return false
		}
	}
	return true
}

func (lane liveLane) reads(subject string) bool {
	if len(lane.filters) == 0 {
		return true
	}
	for _, f := range lane.filters {
		if subjectMatches(f, subject) {
			return true
		}
	}
	return false
}

// subjectMatches reports whether a NATS subject matches a filter, with
// "*" for one token and a final ">" for one or more.
func subjectMatches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return len(st) > i
		}
		if i >= len(st) || (f != "*" && f != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}
