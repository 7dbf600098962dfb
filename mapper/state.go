package mapper

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// StateVersion is written in State.V, so that a later chattap can read
// what an earlier one stored.
const StateVersion = 1

// Bounds of what a State remembers, so a long conversation's KV value
// stays a few KB: the last maxApplied Observation ids and maxSeen messages.
const (
	maxApplied = 512
	maxSeen    = 1024
)

// State is what the mapping remembers of one conversation between two
// Observations. It is a value: Map never changes the State it is given,
// and returns the next one. It encodes to JSON for the KV bucket.
type State struct {
	V int `json:"v"`
	// ConversationID is the conversation this State is about, for whoever
	// reads the bucket (keys are hashed).
	ConversationID string `json:"conversation_id,omitempty"`
	// Generation counts how often a Custom Channel conversation ended and
	// its contact wrote again; a channel has no session id of its own.
	Generation int `json:"generation,omitempty"`
	// Instance names the current conversation of a Custom Channel
	// contact: a hash of the id of the record that opened it, so a contact
	// who comes back after Ended or after the bucket's TTL starts a
	// conversation with a conversation_id and Started/Ended messageIds of
	// its own, and a replay of the same records names it the same. Empty
	// in States written before instances (their ids stay as they were).
	Instance string `json:"instance,omitempty"`

	// Seq is the CHATTAP_RAW stream sequence of the last partitioned
	// record applied (0 if none). A partition is mapped in stream order,
	// so a record at or below it was applied already.
	Seq uint64 `json:"seq,omitempty"`
	// LastAt is the latest received_at applied: a record older than it
	// arrives late (a tap's buffer emptied after an outage, a replay).
	LastAt time.Time `json:"last_at,omitzero"`

	Started   bool      `json:"started,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	Ended     bool      `json:"ended,omitempty"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	// Tracked is set once the conversation emitted a Live Chat event: an
	// identify is only for a contact that has one.
	Tracked bool `json:"tracked,omitempty"`
	// Rated is set once Conversation Rated was emitted (or would have
	// been, had it been enabled); Rating holds what the callbacks told of
	// the rating so far.
	Rated  bool   `json:"rated,omitempty"`
	Rating Rating `json:"rating,omitzero"`

	// AnonymousID is chosen at the conversation's first event and kept, so
	// every event of a conversation names the same anonymous user.
	AnonymousID string            `json:"anonymous_id,omitempty"`
	UserID      string            `json:"user_id,omitempty"`
	Traits      map[string]string `json:"traits,omitempty"`

	WidgetID   string `json:"widget_id,omitempty"`
	WidgetName string `json:"widget_name,omitempty"`
	// Agent is the human operator last named by a payload; the bot's
	// identity comes from Options instead.
	Agent Agent `json:"agent,omitzero"`
	// Operators are the operators the payloads named, newest last, so a
	// transcript line can be given to the one whose name it carries.
	Operators []Agent `json:"operators,omitempty"`
	// Options are the labels of the bot's last bubbles or carousel, so a
	// click that names only an index can be read as its label.
	Options []string `json:"options,omitempty"`

	// Contact is the contact as this conversation last announced it in
	// an identify, for Map, which has no contact store; MapContact keeps
	// it in the Contact it is given and returns instead.
	Contact *Contact `json:"contact,omitempty"`

	// Seen holds a hash of every message emitted (its direction and body),
	// once per occurrence, so a transcript re-emits none of them.
	Seen Hashes `json:"seen,omitempty"`
	// Applied holds a hash of the last Observation ids applied, so a
	// redelivered or replayed Observation yields nothing new.
	Applied Hashes `json:"applied,omitempty"`
}

// Agent is who answers the contact.
type Agent struct {
	ID       string `json:"id,omitempty"`
	Name     string `json:"name,omitempty"`
	Username string `json:"username,omitempty"`
}

// Rating is what the add-on's rating, feedback and survey callbacks (and
// a finished session's rate, feedback_message, post_survey_option) told
// of one conversation's rating: the latest of each, and what the emitted
// Conversation Rated carried.
type Rating struct {
	Rate     string `json:"rate,omitempty"`
	Feedback string `json:"feedback,omitempty"`
	Survey   string `json:"survey,omitempty"`
	// SentFeedback and SentSurvey are the texts Conversation Rated
	// carried, so Ended carries only the ones that came later.
	SentFeedback string `json:"sent_feedback,omitempty"`
	SentSurvey   string `json:"sent_survey,omitempty"`
}

// maxOperators bounds State.Operators: a chat forwarded more often than
// this gives its oldest operators' lines to the current one.
const maxOperators = 16

// IsZero reports whether a names nobody.
func (a Agent) IsZero() bool { return a == Agent{} }

// DecodeState reads a State stored by EncodeState; empty data is the
// State of a conversation never seen.
func DecodeState(data []byte) (State, error) {
	var st State
	if len(data) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, fmt.Errorf("decode conversation state: %w", err)
	}
	return st, nil
}

// Encode returns st as the JSON stored in the KV bucket.
func (st *State) Encode() ([]byte, error) {
	st.V = StateVersion
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode conversation state: %w", err)
	}
	return b, nil
}

// HasApplied reports whether the Observation with this id was already
// mapped into st.
func (st *State) HasApplied(obsID string) bool {
	return slices.Contains(st.Applied, hashString(obsID))
}

// Hashes is a list of 64-bit hashes that encodes to JSON as one base64
// string, a third of the size of a list of numbers.
type Hashes []uint64

// MarshalText implements encoding.TextMarshaler: JSON carries it as one
// string, and encoding/json copies it without re-parsing it as it would a
// MarshalJSON result, which for a long conversation was most of the cost
// of storing its State.
func (h Hashes) MarshalText() ([]byte, error) {
	raw := make([]byte, 8*len(h))
	for i, v := range h {
		binary.LittleEndian.PutUint64(raw[8*i:], v)
	}
	out := make([]byte, base64.RawURLEncoding.EncodedLen(len(raw)))
	base64.RawURLEncoding.Encode(out, raw)
	return out, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hashes) UnmarshalText(b []byte) error {
	if len(b)%4 == 1 || base64.RawURLEncoding.DecodedLen(len(b))%8 != 0 {
		return fmt.Errorf("hashes: not base64 of 8-byte words")
	}
	raw := make([]byte, base64.RawURLEncoding.DecodedLen(len(b)))
	n, err := base64.RawURLEncoding.Decode(raw, b)
	if err != nil || n%8 != 0 {
		return fmt.Errorf("hashes: not base64 of 8-byte words")
	}
	out := make(Hashes, n/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	*h = out
	return nil
}

// appendBounded appends v to a copy-on-write list, dropping the oldest
// entries past limit; the caller's backing array is never written.
func appendBounded(h Hashes, v uint64, limit int) Hashes {
	if len(h) >= limit {
		h = h[len(h)-limit+1:]
	}
	return append(slices.Clip(h), v)
}

// fnv64a is FNV-1a, 64 bits, as hash/fnv computes it, written inline so
// that hashing a message allocates nothing.
type fnv64a uint64

const (
	fnvOffset fnv64a = 14695981039346656037
	fnvPrime  fnv64a = 1099511628211
)

func (h *fnv64a) byte(c byte) { *h = (*h ^ fnv64a(c)) * fnvPrime }

func (h *fnv64a) string(s string) {
	for i := 0; i < len(s); i++ {
		h.byte(s[i])
	}
}

func hashString(s string) uint64 {
	h := fnvOffset
	h.string(s)
	return uint64(h)
}

// messageHash identifies a message by its direction and its body, salted
// with the conversation so that a hash in the bucket says nothing about a
// short, common text on its own. Space around and inside the body is
// folded, so the live and the transcript form of a message compare equal.
func messageHash(conversation string, fromContact bool, body string) uint64 {
	h := fnvOffset
	h.string(conversation)
	h.byte(0)
	if fromContact {
		h.byte('c')
	} else {
		h.byte('a')
	}
	h.byte(0)
	space, wrote := false, false
	for i := 0; i < len(body); i++ {
		c := body[i]
		if isSpace(c) {
			space = true
			continue
		}
		if space && wrote {
			h.byte(' ')
		}
		space, wrote = false, true
		h.byte(c)
	}
	return uint64(h)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
