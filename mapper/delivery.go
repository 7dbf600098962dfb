package mapper

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// acker is what settling an Observation needs of the message it came
// from: a jetstream.Msg itself, or a recordShare of one.
type acker interface {
	Ack() error
	Nak() error
	NakWithDelay(time.Duration) error
	Metadata() (*jetstream.MsgMetadata, error)
}

// recordShare is how the several Observations of one version 2 record
// settle its one JetStream message: each settles it once (ack or nak);
// the message is acked when the last one settles and all were acked, and
// naked, with the shortest delay asked for, when any was naked. A naked
// record comes back whole; the Observations already applied are then in
// their conversation's State and map to nothing (their ids are derived
// from the record's, so they are the same).
//
// Several workers may hold Observations of one record (a reply that names
// another conversation): it is safe for concurrent use.
type recordShare struct {
	msg   jetstream.Msg
	mu    sync.Mutex
	left  int
	nak   bool
	delay time.Duration
}

func newRecordShare(msg jetstream.Msg, n int) *recordShare { return &recordShare{msg: msg, left: n} }

func (s *recordShare) Ack() error                         { return s.settle(false, 0) }
func (s *recordShare) Nak() error                         { return s.settle(true, 0) }
func (s *recordShare) NakWithDelay(d time.Duration) error { return s.settle(true, d) }

func (s *recordShare) Metadata() (*jetstream.MsgMetadata, error) { return s.msg.Metadata() }

func (s *recordShare) settle(nak bool, delay time.Duration) error {
	s.mu.Lock()
	if nak && (!s.nak || delay < s.delay) {
		s.delay = delay
	}
	s.nak = s.nak || nak
	s.left--
	last, nak, delay := s.left == 0, s.nak, s.delay
	s.mu.Unlock()
	switch {
	case !last:
		return nil
	case nak && delay > 0:
		return s.msg.NakWithDelay(delay)
	case nak:
		return s.msg.Nak()
	default:
		return s.msg.Ack()
	}
}
