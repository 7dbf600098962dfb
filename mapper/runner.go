package mapper

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// RunnerOptions size the runner. The env tags are read by cmd/chattap; a
// zero RunnerOptions means every default.
type RunnerOptions struct {
	Workers        int           `env:"CHATTAP_MAPPER_WORKERS" envDefault:"32" help:"conversations mapped at once; one conversation's observations are always mapped in order"`
	MaxAckPending  int           `env:"CHATTAP_MAPPER_MAX_ACK_PENDING" envDefault:"1024" help:"observations each partition's consumer holds unacked at once (17 consumers: 16 partitions and the records stored before partitioning)"`
	AckWait        time.Duration `env:"CHATTAP_MAPPER_ACK_WAIT" envDefault:"30s" help:"how long an observation may stay unacked before JetStream redelivers it; one being retried is kept alive with InProgress"`
	PublishTimeout time.Duration `env:"CHATTAP_MAPPER_PUBLISH_TIMEOUT" envDefault:"10s" help:"how long one attempt at a worker's batch (read state, publish its events, write state) may take before it is retried in place"`
	PinnedTTL      time.Duration `env:"CHATTAP_MAPPER_PINNED_TTL" envDefault:"3s" help:"how long a partition stays pinned to a mapper replica that stopped pulling before a standby takes it over"`
}

func (o RunnerOptions) withDefaults() RunnerOptions {
	if o.Workers == 0 {
		o.Workers = 32
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = 1024
	}
	if o.AckWait == 0 {
		o.AckWait = 30 * time.Second
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = 10 * time.Second
	}
	if o.PinnedTTL == 0 {
		o.PinnedTTL = 3 * time.Second
	}
	return o
}

// Validate reports every invalid option at once, each with its variable's
// name. Zero values stand for their defaults.
func (o RunnerOptions) Validate() error {
	o = o.withDefaults()
	var errs []error
	if o.Workers < 1 || o.Workers > 4096 {
		errs = append(errs, fmt.Errorf("CHATTAP_MAPPER_WORKERS: must be 1 to 4096, is %d", o.Workers))
	}
	if o.MaxAckPending < 1 {
		errs = append(errs, fmt.Errorf("CHATTAP_MAPPER_MAX_ACK_PENDING: must be positive, is %d", o.MaxAckPending))
	}
	if o.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("CHATTAP_MAPPER_ACK_WAIT: must be at least 1s, is %s", o.AckWait))
	}
	if o.PublishTimeout <= 0 || o.PublishTimeout >= o.AckWait {
		errs = append(errs, fmt.Errorf("CHATTAP_MAPPER_PUBLISH_TIMEOUT: must be positive and shorter than CHATTAP_MAPPER_ACK_WAIT (%s), is %s", o.AckWait, o.PublishTimeout))
	}
	if o.PinnedTTL < 2*time.Second || o.PinnedTTL >= o.AckWait {
		errs = append(errs, fmt.Errorf("CHATTAP_MAPPER_PINNED_TTL: must be at least 2s and shorter than CHATTAP_MAPPER_ACK_WAIT (%s), is %s", o.AckWait, o.PinnedTTL))
	}
	return errors.Join(errs...)
}

// pullExpiry is how long one pull request waits. A pinned client keeps
// its pin only while it sends pull requests, so a request must expire,
// and be renewed, well within PinnedTTL.
func (o RunnerOptions) pullExpiry() time.Duration {
	return max(time.Second, o.PinnedTTL/3)
}

// Runner maps CHATTAP_RAW to CHATTAP_EVENTS. Each partition of
// CHATTAP_RAW (and the Observations stored before partitioning) has a
// durable consumer with a pinned priority group, so among all replicas
// exactly one maps a partition at a time and the others stand by; a
// standby takes a partition over PinnedTTL after its owner stopped
// pulling, or at once when the owner stopped gracefully.
//
// Within a partition a conversation's records are applied in stream
// order, each once: a worker that cannot publish or reach the bucket
// retries in place, holding that conversation, instead of naking past it;
// and a replica that takes a partition over first replays, in stream
// order, what the consumer had delivered and not yet seen acked, before it
// maps anything newer. Re-applying is harmless: the conversation's State
// records the stream sequence of the last record applied.
//
// An Observation is acked only after every message it yields was stored
// on CHATTAP_EVENTS and the conversation's State was written; one it
// cannot map is acked and counted. Observations of different
// conversations are mapped concurrently, in batches: one State read and
// one compare-and-set write per conversation and batch.
type Runner struct {
	js       jetstream.JetStream
	pub      jetstream.JetStream // js's connection, with a publish timeout
	m        *Mapper
	settings func() spec.Settings
	log      *slog.Logger
	metrics  *metrics.Mapper
	o        RunnerOptions

	mu      sync.Mutex
	started bool
	store   stateStore
	lanes   []*lane
	queues  []chan job
	// work ends the workers: gracefully once the queues are drained, or
	// at once when Stop's context runs out.
	work     context.Context
	cancel   context.CancelFunc
	workers  sync.WaitGroup
	inflight sync.WaitGroup
	stopOnce sync.Once
	stopped  chan struct{}
}

// job is one Observation taken from a partition: a version 1 message, or
// one event of a version 2 record, whose message it settles through a
// recordShare.
type job struct {
	msg acker
	obs *spec.Observation
	// lane is the partition it came from; epoch is the lane's ownership
	// when it was taken: a job of an older epoch is dropped unsettled.
	lane  *lane
	epoch uint64
	// seq is its stream sequence; replay marks a copy read from the
	// stream during a takeover, which has nothing to ack.
	seq    uint64
	replay bool
	taken  time.Time
}

// NewRunner returns a Runner that has not started. settings is read for
// every Observation (broker.SettingsStore.Current fits; nil means
// spec.DefaultSettings); metrics may be nil.
func NewRunner(js jetstream.JetStream, m *Mapper, settings func() spec.Settings, logger *slog.Logger, mm *metrics.Mapper, o RunnerOptions) *Runner {
	if settings == nil {
		settings = func() spec.Settings { return spec.DefaultSettings }
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{js: js, m: m, settings: settings, log: logger, metrics: mm, o: o.withDefaults(), stopped: make(chan struct{})}
}

// Start declares the partition consumers, opens the state bucket and
// starts consuming; it returns once consuming has begun and does not
// block. ctx bounds only the setup: the Runner runs until Stop.
func (r *Runner) Start(ctx context.Context) error {
	if err := r.o.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("mapper runner: already started")
	}
	kv, err := r.js.KeyValue(ctx, spec.BucketConversations)
	if err != nil {
		return fmt.Errorf("open conversation bucket: %w", err)
	}
	// The runner's own handle, whose asynchronous publishes give up after
	// PublishTimeout: a future a batch stopped waiting for must not stay
	// pending for ever, or the handle's pending limit stalls every later
	// publish.
	pub, err := jetstream.New(r.js.Conn(), jetstream.WithPublishAsyncTimeout(r.o.PublishTimeout))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	r.pub = pub
	status, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("conversation bucket status: %w", err)
	}
	// A bucket replicated later is read from its leader after a restart.
	replicated := false
	if kvs, ok := status.(*jetstream.KeyValueBucketStatus); ok {
		replicated = kvs.StreamInfo().Config.Replicas > 1
	}
	r.store = newStateStore(pub, kv, replicated)
	lanes, err := r.declareLanes(ctx)
	if err != nil {
		return err
	}
	r.lanes = lanes
	r.work, r.cancel = context.WithCancel(context.Background())
	r.queues = make([]chan job, r.o.Workers)
	for i := range r.queues {
		r.queues[i] = make(chan job, 64)
		r.workers.Add(1)
		go r.worker(r.queues[i])
	}
	for _, l := range r.lanes {
		if err := r.consume(l); err != nil {
			for _, l := range r.lanes {
				if l.cc != nil {
					l.cc.Stop()
				}
			}
			r.cancel()
			r.workers.Wait()
			return err
		}
	}
	r.started = true
	return nil
}

// Stop stops taking Observations, waits for those already taken to be
// mapped, published and acked, gives up the partitions it holds so a
// standby takes them over at once, and returns. If ctx ends first, work
// in flight is abandoned unacked (the next owner replays it in order) and
// Stop returns ctx's error. Stop is idempotent and safe to call from any
// goroutine, also on a Runner never started.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if !started {
		return nil
	}
	r.stopOnce.Do(func() { go r.shutdown() })
	select {
	case <-r.stopped:
		return nil
	case <-ctx.Done():
		r.cancel()
		<-r.stopped
		return fmt.Errorf("stop mapper: %w", ctx.Err())
	}
}

// shutdown is Stop's order: intake first, then the queues, then workers,
// then the pins.
func (r *Runner) shutdown() {
	defer close(r.stopped)
	for _, l := range r.lanes {
		l.cc.Drain()
	}
	drained := make(chan struct{})
	go func() {
		for _, l := range r.lanes {
			<-l.cc.Closed()
		}
		close(drained)
	}()
	select {
	case <-drained:
		// Nothing more is dispatched, so waiting on the jobs is safe.
		r.inflight.Wait()
	case <-r.work.Done():
		for _, l := range r.lanes {
			l.cc.Stop()
		}
	}
	r.cancel()
	r.workers.Wait()
	r.unpin()
}

// shard is the worker queue of a conversation: all of its Observations,
// from whichever partition or replay, go through one worker, in order.
func (r *Runner) shard(obs *spec.Observation) chan job {
	key := obs.ConversationID
	if key == "" {
		key = obs.ID
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return r.queues[int(h.Sum32()%uint32(len(r.queues)))]
}

// enqueue hands a job to its conversation's worker. It runs on a
// partition's consumer goroutine, one message at a time, so blocking on
// a full queue holds back intake rather than growing memory. It reports
// false when the runner stopped first; the job is then left unsettled.
func (r *Runner) enqueue(j job) bool {
	r.inflight.Add(1)
	select {
	case r.shard(j.obs) <- j:
		return true
	case <-r.work.Done():
		r.inflight.Done()
		return false
	}
}

// maxBatch bounds the Observations a worker takes from its queue to map
// together: whatever has queued up while it settled the last batch, so a
// batch is one Observation when the stage keeps up and grows under load.
const maxBatch = 64

// cachedStates bounds the States the workers keep decoded, together: a
// long conversation's State is some KB in memory.
const cachedStates = 4096

// worker maps one shard's jobs in order, in batches, until the runner
// stops.
func (r *Runner) worker(q chan job) {
	defer r.workers.Done()
	batch := make([]job, 0, maxBatch)
	cache := newStateCache(max(1, cachedStates/r.o.Workers))
	for {
		select {
		case j := <-q:
			batch = append(batch[:0], j)
		more:
			for len(batch) < maxBatch {
				select {
				case j := <-q:
					batch = append(batch, j)
				default:
					break more
				}
			}
			r.handleBatch(batch, cache)
			for i := range batch {
				batch[i].done()
				r.inflight.Done()
			}
			clear(batch)
		case <-r.work.Done():
			// Left unacked: the next owner of each partition replays
			// them in order (a nak would hand them out ahead of the
			// records their conversations hold pending elsewhere).
			for {
				select {
				case j := <-q:
					j.done()
					r.inflight.Done()
				default:
					return
				}
			}
		}
	}
}
