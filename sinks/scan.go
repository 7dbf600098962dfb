package sinks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// scan reads the messages of stream on subject from where cfg says, in
// order, and calls fn for each until fn says stop, or the messages that
// were there when it began are read. It reads through an ephemeral ordered
// consumer and acks nothing, so it works on any stream at any time.
func scan(ctx context.Context, js jetstream.JetStream, stream, subject string, cfg jetstream.OrderedConsumerConfig, fn func(jetstream.Msg) (bool, error)) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	var stored uint64
	for _, n := range info.State.Subjects {
		stored += n
	}
	if stored == 0 {
		return nil
	}
	cfg.FilterSubjects = []string{subject}
	c, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	for {
		n, done, err := fetchSome(ctx, c, fn)
		if err != nil || done {
			return err
		}
		if n == 0 {
			return ctx.Err()
		}
	}
}

// fetchSome reads one batch; done says fn asked to stop or the end was
// reached.
func fetchSome(ctx context.Context, c jetstream.Consumer, fn func(jetstream.Msg) (bool, error)) (n int, done bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	batch, err := c.Fetch(256, jetstream.FetchContext(ctx))
	if err != nil {
		return 0, true, fmt.Errorf("read: %w", err)
	}
	for msg := range batch.Messages() {
		n++
		more, err := fn(msg)
		if err != nil || !more {
			return n, true, err
		}
		if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
			return n, true, nil
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		return n, true, fmt.Errorf("read: %w", err)
	}
	return n, false, nil
}
