package mapper

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
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
	// msgGet is the bucket stream's message-get API subject, which its
	// leader answers; replicated says the bucket has followers, whose
	// direct gets may be stale, so reads go to the leader (see last).
	msgGet     string
	replicated bool
}

func newStateStore(js jetstream.JetStream, kv jetstream.KeyValue, replicated bool) stateStore {
	return stateStore{kv: kv, js: js, subject: "$KV." + kv.Bucket() + ".", msgGet: "$JS.API.STREAM.MSG.GET.KV_" + kv.Bucket(), replicated: replicated}
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
	data, rev, found, err := s.read(ctx, StateKey(conversation))
	if err != nil {
		return State{}, 0, fmt.Errorf("read conversation state: %w", err)
	}
	if !found {
		return State{}, 0, nil
	}
	if c != nil {
		if st, ok := c.get(conversation, rev); ok {
			return st, rev, nil
		}
	}
	st, err := DecodeState(data)
	if err != nil {
		// A State this version cannot read must not stop the conversation
		// for good: the caller maps on from scratch and overwrites it at
		// its revision.
		return State{}, rev, fmt.Errorf("%w: %w", errBadState, err)
	}
	return st, rev, nil
}

// read is last on a replicated bucket, KeyValue.Get (a direct get, which
// the only server answers, and cheaper to decode) on a single one.
func (s *stateStore) read(ctx context.Context, key string) ([]byte, uint64, bool, error) {
	if s.replicated {
		return s.last(ctx, key)
	}
	entry, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	return entry.Value(), entry.Revision(), true, nil
}

// msgGetResponse is the answer of JetStream's STREAM.MSG.GET.
type msgGetResponse struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Message *struct {
		Seq    uint64 `json:"seq"`
		Header []byte `json:"hdrs"`
		Data   []byte `json:"data"`
	} `json:"message"`
}

// jsErrNoMessageFound is JetStream's error code for "no message found".
const jsErrNoMessageFound = 10037

// last reads the latest value of key from the bucket stream's leader.
// KeyValue.Get uses direct gets, which on a replicated bucket any replica
// answers, a follower possibly a write or two behind: a mapper would then
// map on a State older than the one it (or the replica it took the
// partition over from) had just written, and publish what that older
// State makes before its compare-and-set fails. TestReplicasOnCluster
// caught it, a Custom Channel conversation's record mapped on a State from
// before its first record. found is false for a key never written,
// deleted, purged or expired.
func (s *stateStore) last(ctx context.Context, key string) (data []byte, rev uint64, found bool, err error) {
	// A key is [-/_=.a-zA-Z0-9]: nothing in it needs escaping.
	req := []byte(`{"last_by_subj":"` + s.subject + key + `"}`)
	msg, err := s.js.Conn().RequestWithContext(ctx, s.msgGet, req)
	if err != nil {
		return nil, 0, false, err
	}
	var resp msgGetResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, 0, false, fmt.Errorf("decode message get: %w", err)
	}
	if resp.Error != nil {
		if resp.Error.ErrCode == jsErrNoMessageFound {
			return nil, 0, false, nil
		}
		return nil, 0, false, fmt.Errorf("message get: %s (%d)", resp.Error.Description, resp.Error.ErrCode)
	}
	if resp.Message == nil {
		return nil, 0, false, errors.New("message get: empty answer")
	}
	if op := kvOperation(resp.Message.Header); op == "DEL" || op == "PURGE" {
		return nil, 0, false, nil
	}
	return resp.Message.Data, resp.Message.Seq, true, nil
}

// kvOperation reads the KV-Operation header of a stored message's header
// block ("NATS/1.0\r\nKV-Operation: DEL\r\n\r\n"); "" for a plain put.
func kvOperation(hdr []byte) string {
	const name = "KV-Operation:"
	i := bytes.Index(hdr, []byte(name))
	if i < 0 {
		return ""
	}
	rest := hdr[i+len(name):]
	if j := bytes.IndexByte(rest, '\r'); j >= 0 {
		rest = rest[:j]
	}
	return string(bytes.TrimSpace(rest))
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
