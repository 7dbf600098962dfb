package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// FileOptions configure the file sink: one Segment message per line.
type FileOptions struct {
	Path  string `env:"CHATTAP_FILE_SINK_PATH" envDefault:"-" help:"JSON lines of every event, appended; - is standard output; empty turns the sink off; when not set at all, it is - only while no other sink is on"`
	Fsync bool   `env:"CHATTAP_FILE_SINK_FSYNC" envDefault:"false" help:"fsync the file after each batch before acking it"`
}

// Enabled reports whether the file sink is on (Path is not empty; unlike
// other fields, an empty Path means off, not the default).
func (o FileOptions) Enabled() bool { return o.Path != "" }

// Validate reports every bad value with its variable's name.
func (o FileOptions) Validate() error { return nil }

// File is the file sink. It writes each batch of events as compact JSON
// lines in one write, in order, and acks them once written (and synced,
// when asked): safe for `tail -f` and `jq`.
type File struct {
	w      io.Writer
	f      *os.File // nil for standard output: never closed or synced
	fsync  bool
	linger time.Duration
	tr     tracker
	b      *batcher
	buf    bytes.Buffer

	closeOnce sync.Once
	closeErr  error
}

var _ Sink = (*File)(nil)

// NewFile opens o.Path for appending (creating it), or takes deps.Stdout
// for "-".
func NewFile(o FileOptions, d DeliveryOptions, deps Deps) (*File, error) {
	d = d.withDefaults()
	s := &File{fsync: o.Fsync, linger: d.FlushInterval}
	switch o.Path {
	case "":
		return nil, errors.New("file sink: CHATTAP_FILE_SINK_PATH is empty")
	case "-":
		if deps.Stdout == nil {
			return nil, errors.New("file sink: no standard output to write to")
		}
		s.w = deps.Stdout
	default:
		f, err := os.OpenFile(o.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("file sink: %w", err)
		}
		s.w, s.f = f, f
	}
	// One writer keeps the lines in the order they were delivered.
	s.b = newBatcher(d.BatchSize, d.FlushInterval, 1, s.write)
	return s, nil
}

// Name is "file".
func (s *File) Name() string { return "file" }

// MaxLatency is the longest a delivery can take: a linger and a write.
func (s *File) MaxLatency() time.Duration { return s.linger + 5*time.Second }

// Deliver queues d for the next write; see Sink.
func (s *File) Deliver(_ context.Context, d Delivery, done func(error)) {
	s.b.add(item{d: d, done: s.tr.track(done)})
}

func (s *File) write(items []item) {
	s.buf.Reset()
	for _, it := range items {
		s.buf.Write(it.d.Raw)
		s.buf.WriteByte('\n')
	}
	_, err := s.w.Write(s.buf.Bytes())
	if err == nil && s.fsync && s.f != nil {
		err = s.f.Sync()
	}
	if err != nil {
		// A full disk or a closed pipe may recover; a retry writes the
		// lines again, which readers tolerate as duplicates by messageId.
		err = Retryable(fmt.Errorf("file sink: %w: %w", errWrite, err), 0)
	}
	for _, it := range items {
		it.done(err)
	}
}

// Close writes what is queued, then closes the file (never standard
// output).
func (s *File) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closeErr = s.tr.closeWith(ctx, s.b.close)
		if s.f != nil {
			if err := s.f.Close(); err != nil {
				s.closeErr = errors.Join(s.closeErr, fmt.Errorf("file sink: close: %w", err))
			}
		}
	})
	return s.closeErr
}
