package mapper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fetchBatch is how many messages one fetch of readStream asks for.
const fetchBatch = 512

// readStream calls fn for each message of stream that cfg selects, in
// stream order, up to and including sequence last, until fn says stop.
// Callers pass the stream's last sequence when they began as last, so a
// read ends although live traffic keeps arriving. It reads through an
// ephemeral ordered consumer: it acks nothing and no durable consumer of
// the stream notices it.
func readStream(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, last uint64, fn func(jetstream.Msg, *jetstream.MsgMetadata) (bool, error)) error {
	c, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	for {
		n, done, err := fetchOnce(ctx, c, last, fn)
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if done {
			return nil
		}
		if n == 0 {
			// A whole fetch wait without a message: what is left of the
			// range was removed meanwhile (retention), or matches nothing.
			return ctx.Err()
		}
	}
}

func fetchOnce(ctx context.Context, c jetstream.Consumer, last uint64, fn func(jetstream.Msg, *jetstream.MsgMetadata) (bool, error)) (n int, done bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	batch, err := c.Fetch(fetchBatch, jetstream.FetchContext(ctx))
	if err != nil {
		return 0, true, err
	}
	for msg := range batch.Messages() {
		n++
		md, err := msg.Metadata()
		if err != nil {
			return n, true, err
		}
		if md.Sequence.Stream > last {
			return n, true, nil
		}
		more, err := fn(msg, md)
		if err != nil || !more {
			return n, true, err
		}
		// The batch would otherwise wait out its second for messages that
		// are not there.
		if md.Sequence.Stream >= last || md.NumPending == 0 {
			return n, true, nil
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		return n, true, err
	}
	return n, false, nil
}
