package mapper

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// headerPinID is the header the server sets on every message it delivers
// to the pinned client of a priority group: a new value means this
// replica was (re)pinned and takes the partition over.
const headerPinID = "Nats-Pin-Id"

// lane is one durable consumer of CHATTAP_RAW: a partition, or the
// legacy subjects of Observations stored before partitioning.
type lane struct {
	name    string
	filters []string
	// partition is the lane's partition, -1 for the legacy subjects: their
	// records are not in stream order with the partitions' (an older tap
	// may still write them during an upgrade), so their sequence is
	// neither checked against nor stored in a State.
	partition int
	cons      jetstream.Consumer
	cc        jetstream.ConsumeContext
	// slots bounds what this replica holds of the lane unacked to half the
	// consumer's MaxAckPending, so that if it dies the replica taking the
	// lane over is delivered new records at once, not only after the ack
	// wait frees what the dead one held.
	slots chan struct{}

	mu sync.Mutex
	// pin is the pin id this replica holds for the lane, "" when it holds
	// none; epoch counts the changes, and a job of an older epoch is
	// dropped unsettled: the lane's next owner replays it.
	pin   string
	epoch uint64
}

func (l *lane) current() (pin string, epoch uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pin, l.epoch
}

// lose forgets the pin: another replica owns the lane now.
func (l *lane) lose() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pin != "" {
		l.pin = ""
		l.epoch++
	}
}

// owns reports whether jobs of epoch may still be settled.
func (l *lane) owns(epoch uint64) bool {
	_, e := l.current()
	return e == epoch
}

// Lanes lists the durable consumers a Runner declares on CHATTAP_RAW, in
// the order they are declared: one per partition, then the legacy one.
func (o RunnerOptions) Lanes() []jetstream.ConsumerConfig {
	o = o.withDefaults()
	out := make([]jetstream.ConsumerConfig, 0, spec.RawPartitions+1)
	for p := range spec.RawPartitions {
		out = append(out, o.laneConfig(spec.ConsumerMapperPartition(p), fmt.Sprintf("partition %d", p), []string{spec.RawPartitionFilter(p)}))
	}
	return append(out, o.laneConfig(spec.ConsumerMapperLegacy, "observations stored before partitioning", spec.RawLegacyFilters))
}

func (o RunnerOptions) laneConfig(name, what string, filters []string) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "chattap: observations to Live Chat events, " + what,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		// A failure is retried in place for as long as it takes: the
		// record stays on CHATTAP_RAW, pending.
		MaxDeliver:     -1,
		MaxAckPending:  o.MaxAckPending,
		ReplayPolicy:   jetstream.ReplayInstantPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{spec.MapperPriorityGroup},
		PinnedTTL:      o.PinnedTTL,
	}
	if len(filters) == 1 {
		cfg.FilterSubject = filters[0]
	} else {
		cfg.FilterSubjects = filters
	}
	return cfg
}

// declareLanes creates or updates every lane's consumer. A consumer that
// does not exist yet, on a stream the pre-partitioning consumer "mapper"
// was reading, starts where that one had got to, so an upgrade does not
// map the whole stream again.
func (r *Runner) declareLanes(ctx context.Context) ([]*lane, error) {
	var start uint64
	if old, err := r.js.Consumer(ctx, spec.StreamRaw, spec.ConsumerMapper); err == nil {
		if info, err := old.Info(ctx); err == nil {
			start = info.AckFloor.Stream + 1
		}
	}
	var lanes []*lane
	for i, cfg := range r.o.Lanes() {
		cons, err := r.declare(ctx, cfg, start)
		if err != nil {
			return nil, fmt.Errorf("declare mapper consumer %s: %w", cfg.Durable, err)
		}
		filters := cfg.FilterSubjects
		if cfg.FilterSubject != "" {
			filters = []string{cfg.FilterSubject}
		}
		p := i
		if cfg.Durable == spec.ConsumerMapperLegacy {
			p = -1
		}
		lanes = append(lanes, &lane{name: cfg.Durable, filters: filters, partition: p, cons: cons,
			slots: make(chan struct{}, max(1, r.o.MaxAckPending/2))})
	}
	return lanes, nil
}

func (r *Runner) declare(ctx context.Context, cfg jetstream.ConsumerConfig, start uint64) (jetstream.Consumer, error) {
	existing, err := r.js.Consumer(ctx, spec.StreamRaw, cfg.Durable)
	switch {
	case err == nil:
		// Where a consumer starts cannot change once it exists.
		info := existing.CachedInfo()
		cfg.DeliverPolicy, cfg.OptStartSeq = info.Config.DeliverPolicy, info.Config.OptStartSeq
		return r.js.UpdateConsumer(ctx, spec.StreamRaw, cfg)
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, err
	}
	if start > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	cons, err := r.js.CreateConsumer(ctx, spec.StreamRaw, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		// Another replica created it meanwhile.
		return r.declare(ctx, cfg, start)
	}
	return cons, err
}

// consume starts pulling a lane in its priority group.
func (r *Runner) consume(l *lane) error {
	cc, err := l.cons.Consume(func(msg jetstream.Msg) { r.dispatch(l, msg) },
		jetstream.PullPriorityGroup(spec.MapperPriorityGroup),
		jetstream.PullMaxMessages(max(1, min(r.o.MaxAckPending/4, 256))),
		jetstream.PullExpiry(r.o.pullExpiry()),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrPinIDMismatch) {
				// The server pinned another client: what this replica
				// still holds of the lane is the new owner's to replay.
				l.lose()
				r.log.Info("mapper: partition taken over by another replica", "consumer", l.name)
				return
			}
			r.log.Warn("mapper consumer", "consumer", l.name, "err", err)
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", l.name, err)
	}
	l.cc = cc
	return nil
}

// dispatch hands a delivered message to the worker of its conversation.
// The first message under a new pin is a takeover: before it, whatever
// the consumer had delivered and not seen acked is replayed from the
// stream in order, so nothing newer of a conversation is mapped before
// what was still pending for it.
func (r *Runner) dispatch(l *lane, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		r.log.Warn("mapper: message without metadata, acked and dropped", "subject", msg.Subject(), "err", err)
		r.ack(msg)
		return
	}
	pin := msg.Headers().Get(headerPinID)
	l.mu.Lock()
	takeover := pin != l.pin
	if takeover {
		l.pin = pin
		l.epoch++
	}
	epoch := l.epoch
	l.mu.Unlock()
	if takeover && !r.catchUp(l, epoch, md.Sequence.Stream, md.NumDelivered > 1) {
		return
	}
	r.enqueueMsg(l, epoch, msg, md.Sequence.Stream, false)
}

// enqueueMsg splits a stored message into its Observations (spec.ReadRaw)
// and queues each, in order; it reports false when the runner stopped.
// Each queued Observation of a delivered message takes one of the lane's
// slots until it is settled.
func (r *Runner) enqueueMsg(l *lane, epoch uint64, msg jetstream.Msg, seq uint64, replay bool) bool {
	obs, err := spec.ReadRaw(msg.Data())
	if err != nil {
		if !replay {
			r.log.Warn("mapper: record is not readable, acked and dropped", "subject", msg.Subject(), "err", err)
			r.ack(msg)
			r.metrics.Observation("unknown", metrics.MapperUnmappable, 0)
		}
		return true
	}
	var settle acker = msg
	if len(obs) > 1 {
		settle = newRecordShare(msg, len(obs))
	}
	taken := time.Now()
	for i := range obs {
		if !replay {
			select {
			case l.slots <- struct{}{}:
			case <-r.work.Done():
				return false
			}
		}
		if !r.enqueue(job{msg: settle, obs: &obs[i], lane: l, epoch: epoch, seq: seq, replay: replay, taken: taken}) {
			if !replay {
				<-l.slots
			}
			return false
		}
	}
	return true
}

// done releases a job's slot once it is settled, dropped or abandoned.
func (j *job) done() {
	if !j.replay {
		<-j.lane.slots
	}
}

// catchUp replays, in stream order, the records of the lane from the
// consumer's ack floor up to first, the message that revealed the
// takeover: those the previous owner held unacked, which the server hands
// out again only after the ack wait, and then out of order. A first
// delivery is newer than anything the server delivered before it; a
// redelivered one (redelivered) need not be, so then the replay goes on to
// the last record the consumer delivered, this replica's own included.
// Records already applied map to nothing (their sequence is in the
// conversation's State), so replaying too much is harmless. It retries
// until it succeeds or the runner stops (false).
func (r *Runner) catchUp(l *lane, epoch uint64, first uint64, redelivered bool) bool {
	for attempt := 1; ; attempt++ {
		n, err := r.replay(l, epoch, first, redelivered)
		if err == nil {
			if n > 0 {
				r.log.Info("mapper: took a partition over, replayed what was pending", "consumer", l.name, "records", n)
			}
			return true
		}
		if errors.Is(err, errStopped) {
			return false
		}
		r.log.Warn("mapper: replay of a partition taken over failed, retrying", "consumer", l.name, "err", err)
		select {
		case <-time.After(backoff(attempt)):
		case <-r.work.Done():
			return false
		}
	}
}

var errStopped = errors.New("mapper stopped")

func (r *Runner) replay(l *lane, epoch uint64, first uint64, redelivered bool) (int, error) {
	ctx, cancel := context.WithTimeout(r.work, r.o.PublishTimeout)
	defer cancel()
	info, err := l.cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer info: %w", err)
	}
	from, last := info.AckFloor.Stream+1, first-1
	if redelivered {
		last = max(last, info.Delivered.Stream)
	}
	if from > last {
		return 0, nil
	}
	oc, err := r.js.OrderedConsumer(ctx, spec.StreamRaw, jetstream.OrderedConsumerConfig{
		FilterSubjects: l.filters,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return 0, fmt.Errorf("replay consumer: %w", err)
	}
	n := 0
	for {
		batch, err := oc.Fetch(min(256, int(last-from)+1), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return n, fmt.Errorf("replay: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream > last {
				return n, nil
			}
			if !r.enqueueMsg(l, epoch, msg, md.Sequence.Stream, true) {
				return n, errStopped
			}
			n++
			if md.Sequence.Stream == last {
				return n, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return n, fmt.Errorf("replay: %w", err)
		}
		if got == 0 {
			// The rest up to last was deleted (retention) or filtered.
			return n, nil
		}
	}
}

// stillOwns asks the server whether this replica still holds the lane's
// pin; a worker retrying in place asks, so that it gives a partition up
// to the replica that took it over.
func (r *Runner) stillOwns(ctx context.Context, l *lane, epoch uint64) bool {
	pin, e := l.current()
	if e != epoch || pin == "" {
		return false
	}
	info, err := l.cons.Info(ctx)
	if err != nil {
		// Not known: keep it; the server says so on the next pull.
		return true
	}
	for _, g := range info.PriorityGroups {
		if g.Group == spec.MapperPriorityGroup && g.PinnedClientID != "" && g.PinnedClientID != pin {
			l.lose()
			return false
		}
	}
	return true
}

// unpin gives up the pins this replica holds, so a standby takes the
// partitions over now instead of after PinnedTTL.
func (r *Runner) unpin() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := r.js.Stream(ctx, spec.StreamRaw)
	if err != nil {
		return
	}
	for _, l := range r.lanes {
		pin, _ := l.current()
		if pin == "" {
			continue
		}
		info, err := l.cons.Info(ctx)
		if err != nil {
			continue
		}
		for _, g := range info.PriorityGroups {
			if g.Group == spec.MapperPriorityGroup && g.PinnedClientID == pin {
				if err := st.UnpinConsumer(ctx, l.name, spec.MapperPriorityGroup); err != nil {
					r.log.Warn("mapper: unpin", "consumer", l.name, "err", err)
				}
			}
		}
	}
}
