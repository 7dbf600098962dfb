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
	MaxAckPending  int           `env:"CHATTAP_MAPPER_MAX_ACK_PENDING" envDefault:"2048" help:"observations the mapper consumer holds unacked at once, over all replicas"`
	AckWait        time.Duration `env:"CHATTAP_MAPPER_ACK_WAIT" envDefault:"30s" help:"how long an observation may stay unacked before JetStream redelivers it"`
	PublishTimeout time.Duration `env:"CHATTAP_MAPPER_PUBLISH_TIMEOUT" envDefault:"10s" help:"how long a worker's batch of observations may take to read state, publish its events and write state before it is naked"`
}

func (o RunnerOptions) withDefaults() RunnerOptions {
	if o.Workers == 0 {
		o.Workers = 32
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = 2048
	}
	if o.AckWait == 0 {
		o.AckWait = 30 * time.Second
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = 10 * time.Second
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
	return errors.Join(errs...)
}

// Runner consumes CHATTAP_RAW through the durable consumer "mapper",
// which every replica shares, and publishes what the Mapper makes of each
// Observation to CHATTAP_EVENTS. Observations of different conversations
// are mapped concurrently, those of one conversation in stream order (a
// redelivered one aside). An Observation is acked only after every
// message it yields was stored on CHATTAP_EVENTS and the conversation's
// State was written; one it cannot map is acked and counted; a failure to
// publish or to reach the bucket naks it with a delay that grows with
// each delivery. A record of several events is split into its
// Observations, and its message is settled once all of them are (see
// recordShare).
//
// Under load a worker settles what has queued up for it as one batch:
// one State read and one compare-and-set write per conversation, every
// message of the batch published at once, then the acks. PublishTimeout
// bounds a whole batch.
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
	cc      jetstream.ConsumeContext
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

// job is one Observation taken from the consumer: a version 1 message,
// or one event of a version 2 record, whose message it settles through a
// recordShare.
type job struct {
	msg   acker
	obs   *spec.Observation
	taken time.Time
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

// ConsumerConfig is the durable consumer the runner creates or updates on
// CHATTAP_RAW. It uses only fields a nats-server 2.9 knows.
func (o RunnerOptions) ConsumerConfig() jetstream.ConsumerConfig {
	o = o.withDefaults()
	return jetstream.ConsumerConfig{
		Durable:       spec.ConsumerMapper,
		Description:   "chattap: observations to Live Chat events",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		// A publish failure is retried for as long as it takes: the
		// Observation stays in CHATTAP_RAW, and the nak delay bounds the rate.
		MaxDeliver:    -1,
		MaxAckPending: o.MaxAckPending,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}

// Start creates or updates the durable consumer, opens the state bucket
// and starts consuming; it returns once consuming has begun and does not
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
	r.store = newStateStore(pub, kv)
	cons, err := r.js.CreateOrUpdateConsumer(ctx, spec.StreamRaw, r.o.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("declare mapper consumer: %w", err)
	}
	r.work, r.cancel = context.WithCancel(context.Background())
	r.queues = make([]chan job, r.o.Workers)
	for i := range r.queues {
		r.queues[i] = make(chan job, 64)
		r.workers.Add(1)
		go r.worker(r.queues[i])
	}
	r.cc, err = cons.Consume(r.dispatch,
		jetstream.PullMaxMessages(min(r.o.MaxAckPending, 512)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			r.log.Warn("mapper consumer", "err", err)
		}))
	if err != nil {
		r.cancel()
		r.workers.Wait()
		return fmt.Errorf("consume %s: %w", spec.StreamRaw, err)
	}
	r.started = true
	return nil
}

// Stop stops taking Observations, waits for those already taken to be
// mapped, published and acked, and returns. If ctx ends first, work in
// flight is abandoned (it is naked or, at worst, redelivered after the ack
// wait) and Stop returns ctx's error. Stop is idempotent and safe to call
// from any goroutine, also on a Runner never started.
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

// shutdown is Stop's order: intake first, then the queues, then workers.
func (r *Runner) shutdown() {
	defer close(r.stopped)
	r.cc.Drain()
	select {
	case <-r.cc.Closed():
		// Nothing more is dispatched, so waiting on the jobs is safe.
		r.inflight.Wait()
	case <-r.work.Done():
		r.cc.Stop()
	}
	r.cancel()
	r.workers.Wait()
}

// dispatch splits a message into its Observations (spec.ReadRaw) and
// hands each to the worker of its conversation, in order. It runs on the
// consumer's goroutine, one message at a time, so blocking on a full
// queue holds back intake rather than growing memory.
func (r *Runner) dispatch(msg jetstream.Msg) {
	obs, err := spec.ReadRaw(msg.Data())
	if err != nil {
		r.log.Warn("mapper: record is not readable, acked and dropped", "subject", msg.Subject(), "err", err)
		r.ack(msg)
		r.metrics.Observation("unknown", metrics.MapperUnmappable, 0)
		return
	}
	var settle acker = msg
	if len(obs) > 1 {
		settle = newRecordShare(msg, len(obs))
	}
	taken := time.Now()
	for i := range obs {
		o := &obs[i]
		key := o.ConversationID
		if key == "" {
			key = o.ID
		}
		h := fnv.New32a()
		h.Write([]byte(key))
		q := r.queues[int(h.Sum32()%uint32(len(r.queues)))]
		r.inflight.Add(1)
		select {
		case q <- job{msg: settle, obs: o, taken: taken}:
		case <-r.work.Done():
			r.inflight.Done()
			_ = settle.Nak()
		}
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
			for range batch {
				r.inflight.Done()
			}
			clear(batch)
		case <-r.work.Done():
			for {
				select {
				case j := <-q:
					_ = j.msg.Nak()
					r.inflight.Done()
				default:
					return
				}
			}
		}
	}
}
