package mapper

import (
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// acker is what settling an Observation needs of the message it came
// from: a jetstream.Msg itself, or a recordShare of one.
type acker interface {
	Ack() error
	InProgress() error
	Metadata() (*jetstream.MsgMetadata, error)
}

// recordShare is how the several Observations of one version 2 record
// settle its one JetStream message: each acks it once, and the message is
// acked when the last one has. One that is never acked (its partition
// changed hands, the runner stopped) leaves the message unacked for the
// partition's next owner, which replays the record whole; the
// Observations already applied are then in their conversation's State
// and map to nothing (their ids are derived from the record's, so they
// are the same).
//
// Several workers may hold Observations of one record (a reply that names
// another conversation): it is safe for concurrent use.
type recordShare struct {
	msg  jetstream.Msg
	mu   sync.Mutex
	left int
}

func newRecordShare(msg jetstream.Msg, n int) *recordShare { return &recordShare{msg: msg, left: n} }

func (s *recordShare) Ack() error {
	s.mu.Lock()
	s.left--
	last := s.left == 0
	s.mu.Unlock()
	if !last {
		return nil
	}
	return s.msg.Ack()
}

// InProgress extends the whole record's ack deadline.
func (s *recordShare) InProgress() error { return s.msg.InProgress() }

func (s *recordShare) Metadata() (*jetstream.MsgMetadata, error) { return s.msg.Metadata() }
