package mapper

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// stateStore keeps each conversation's State in the chattap_conversations
// bucket, written with compare-and-set on the key's revision so that two
// mapper replicas can never both apply an Observation on the same State.
type stateStore struct {
	kv jetstream.KeyValue
	js jetstream.JetStream
	// subject is where the bucket stores a key: putAsync writes there
	// directly, as KeyValue.Update does, but without waiting.
	subject string
}

func newStateStore(js jetstream.JetStream, kv jetstream.KeyValue) stateStore {
	return stateStore{kv: kv, js: js, subject: "$KV." + kv.Bucket() + "."}
}

// errConflict says another writer changed the State since it was read:
// read it again and map again.
var errConflict = errors.New("conversation state changed concurrently")

// errBadState comes with a usable zero State and revision: the stored
// one could not be read.
var errBadState = errors.New("unreadable conversation state")

// StateKey is the bucket key of a conversation's State. KV keys allow only
// [-/_=.a-zA-Z0-9] and conversation ids hold colons, at signs and anything
// else a Custom Channel contact id holds, so the key is a hash: the
// conversation id itself is inside the State.
func StateKey(conversation string) string {
	sum := sha256.Sum256([]byte(conversation))
	return "c." + base64.RawURLEncoding.EncodeToString(sum[:])
}

// get returns the conversation's State and its revision; a conversation
// never seen, or forgotten after the bucket's TTL, is the zero State at
// revision 0. A State found in c at the bucket's revision is not decoded
// again; c may be nil.
func (s *stateStore) get(ctx context.Context, conversation string, c *stateCache) (State, uint64, error) {
	entry, err := s.kv.Get(ctx, StateKey(conversation))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return State{}, 0, nil
	}
	if err != nil {
		return State{}, 0, fmt.Errorf("read conversation state: %w", err)
	}
	if c != nil {
		if st, ok := c.get(conversation, entry.Revision()); ok {
			return st, entry.Revision(), nil
		}
	}
	st, err := DecodeState(entry.Value())
	if err != nil {
		// A State this version cannot read must not stop the conversation
		// for good: the caller maps on from scratch and overwrites it at
		// its revision.
		return State{}, entry.Revision(), fmt.Errorf("%w: %w", errBadState, err)
	}
	return st, entry.Revision(), nil
}

// put writes st if the key is still at rev (0: if it does not exist, or
// was deleted) and returns the new revision.
func (s *stateStore) put(ctx context.Context, conversation string, st State, rev uint64) (uint64, error) {
	b, err := st.Encode()
	if err != nil {
		return 0, err
	}
	key := StateKey(conversation)
	var next uint64
	if rev == 0 {
		next, err = s.kv.Create(ctx, key, b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return 0, errConflict
		}
	} else {
		next, err = s.kv.Update(ctx, key, b, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return 0, errConflict
		}
	}
	if err != nil {
		return 0, fmt.Errorf("write conversation state: %w", err)
	}
	return next, nil
}

// putAsync starts writing st if the key is still at rev (0: if it has
// never been written); the future's error says isWrongLastSequence when it
// was not. It is KeyValue.Update without the wait, so a batch's writes
// travel together. A key deleted or purged holds a marker, so writing it
// at 0 fails as a conflict; put, through KeyValue.Create, handles that.
func (s *stateStore) putAsync(conversation string, st State, rev uint64) (jetstream.PubAckFuture, error) {
	b, err := st.Encode()
	if err != nil {
		return nil, err
	}
	f, err := s.js.PublishAsync(s.subject+StateKey(conversation), b, jetstream.WithExpectLastSequencePerSubject(rev))
	if err != nil {
		return nil, fmt.Errorf("write conversation state: %w", err)
	}
	return f, nil
}

// isWrongLastSequence reports whether a write lost its compare-and-set;
// replicated streams report it with another code than single ones.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
