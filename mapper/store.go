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
// revision 0.
func (s *stateStore) get(ctx context.Context, conversation string) (State, uint64, error) {
	entry, err := s.kv.Get(ctx, StateKey(conversation))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return State{}, 0, nil
	}
	if err != nil {
		return State{}, 0, fmt.Errorf("read conversation state: %w", err)
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

// put writes st if the key is still at rev (0: if it does not exist).
func (s *stateStore) put(ctx context.Context, conversation string, st State, rev uint64) error {
	b, err := st.Encode()
	if err != nil {
		return err
	}
	key := StateKey(conversation)
	if rev == 0 {
		_, err = s.kv.Create(ctx, key, b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return errConflict
		}
	} else {
		_, err = s.kv.Update(ctx, key, b, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return errConflict
		}
	}
	if err != nil {
		return fmt.Errorf("write conversation state: %w", err)
	}
	return nil
}
