package mapper

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// ContactStateKey is the bucket key of a contact's Contact in
// chattap_conversations: "p." and a hash of its key (an anonymousId holds
// colons), beside the conversations' "c." keys. The bucket's TTL forgets a
// contact not heard of for as long as a conversation.
func ContactStateKey(contact string) string {
	sum := sha256.Sum256([]byte(contact))
	return "p." + base64.RawURLEncoding.EncodeToString(sum[:])
}

// contactStore keeps each contact's Contact in the conversations bucket.
// A Contact only says what an identify already announced, so losing a
// write costs at most one identify sent again, never a wrong one: a
// conflicting write is merged with what the other writer stored and
// tried again, instead of mapping anything again.
type contactStore struct {
	kv jetstream.KeyValue
}

// maxContactConflicts bounds the merges of one contact write; past it the
// write is given up (the next identify for the contact may repeat news).
const maxContactConflicts = 8

// get returns the contact's Contact; one never stored, forgotten, or
// unreadable is the zero Contact.
func (s contactStore) get(ctx context.Context, contact string) (Contact, error) {
	entry, err := s.kv.Get(ctx, ContactStateKey(contact))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return Contact{}, nil
	}
	if err != nil {
		return Contact{}, fmt.Errorf("read contact state: %w", err)
	}
	ct, err := DecodeContact(entry.Value())
	if err != nil {
		return Contact{}, nil
	}
	return ct, nil
}

// put merges news (what a batch announced: Contact.news) over the stored
// Contact, with compare-and-set on the key's revision; on a conflict it
// reads again and merges the same news over what the other writer
// stored. Never the whole Contact the batch read: that may be older than
// what another conversation of the contact announced meanwhile, and would
// put the old values back.
func (s contactStore) put(ctx context.Context, news Contact) error {
	key := ContactStateKey(news.Key)
	for range maxContactConflicts {
		var rev uint64
		stored := Contact{}
		entry, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		case err != nil:
			return fmt.Errorf("read contact state: %w", err)
		default:
			rev = entry.Revision()
			stored, _ = DecodeContact(entry.Value())
		}
		next := stored.over(news)
		b, err := next.Encode()
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, b)
		} else {
			_, err = s.kv.Update(ctx, key, b, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || isWrongLastSequence(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write contact state: %w", err)
		}
		return nil
	}
	return fmt.Errorf("write contact state: %w, %d times", errConflict, maxContactConflicts)
}

// over is news's userId and traits over stored's, copied, each where news
// announced it from an event not older than the one stored (a value without a
// time, from a version 1 Contact, always); an empty userId keeps stored's.
// Another conversation of the contact may have stored a newer value since
// news was read: it stays.
func (stored Contact) over(news Contact) Contact {
	next := Contact{V: ContactVersion, Key: cmp.Or(news.Key, stored.Key), UserID: stored.UserID}
	if len(stored.At)+len(news.At) > 0 {
		next.At = maps.Clone(stored.At)
		if next.At == nil {
			next.At = map[string]int64{}
		}
	}
	wins := func(key string) bool {
		at, ok := news.At[key]
		if !ok {
			return true
		}
		if at < stored.At[key] {
			return false
		}
		next.At[key] = at
		return true
	}
	if news.UserID != "" && news.UserID != stored.UserID && wins(atUserID) {
		next.UserID = news.UserID
	}
	if len(stored.Traits)+len(news.Traits) > 0 {
		next.Traits = maps.Clone(stored.Traits)
		if next.Traits == nil {
			next.Traits = map[string]string{}
		}
		for k, v := range news.Traits {
			if stored.Traits[k] != v && wins(k) {
				next.Traits[k] = v
			}
		}
	}
	return next
}

// contactBatch is the contacts of one batch of a worker: read from the
// bucket once per batch, threaded through the batch's Observations in
// order (two conversations of one contact in a batch announce news once),
// and written once the batch's messages are stored. This is the whole of
// the runner's part in keeping contacts; the runner calls apply instead
// of Mapper.apply, and commit after its publishes, before its state
// writes.
type contactBatch struct {
	store contactStore
	ctx   context.Context
	read  map[string]Contact
	// news is, per contact, what the batch's identifies announced: all
	// that commit writes.
	news    map[string]Contact
	pending map[string][]*group
}

func newContactBatch(ctx context.Context, kv jetstream.KeyValue) *contactBatch {
	return &contactBatch{store: contactStore{kv: kv}, ctx: ctx, read: map[string]Contact{}, news: map[string]Contact{}, pending: map[string][]*group{}}
}

// apply maps obs on st with its contact's Contact, as Mapper.apply does
// with the contact kept in the State. A contact that cannot be read
// fails the Observation (it is naked and mapped again later), so an
// identify is never decided on a Contact that was not read.
func (b *contactBatch) apply(m *Mapper, g *group, obs *spec.Observation, st State, set spec.Settings) ([]spec.Message, State, bool, error) {
	if !set.RecordLiveChatEvents || g.conversation == "" {
		return m.apply(obs, st, set)
	}
	key := m.ContactKey(obs, st)
	if key == "" {
		return m.apply(obs, st, set)
	}
	ct, ok := b.read[key]
	if !ok {
		var err error
		if ct, err = b.store.get(b.ctx, key); err != nil {
			return nil, st, false, err
		}
		b.read[key] = ct
	}
	out, next, nextCt, changed, ctChanged, err := m.applyContact(obs, st, ct, set)
	if err == nil && ctChanged {
		b.news[key] = b.news[key].over(ct.news(nextCt))
		b.read[key] = nextCt
		if !slices.Contains(b.pending[key], g) {
			b.pending[key] = append(b.pending[key], g)
		}
	}
	return out, next, changed, err
}

// commit stores the Contacts that changed, where every group that
// changed one had its messages stored, and forgets them: a Contact that
// remembered an identify not published would keep it from ever being
// sent. A write skipped or failed (the caller logs it) can make a later
// identify repeat news, never lose one.
func (b *contactBatch) commit(ctx context.Context) error {
	var errs []error
	for key, groups := range b.pending {
		if slices.ContainsFunc(groups, func(g *group) bool { return g.err != nil }) {
			continue
		}
		if err := b.store.put(ctx, b.news[key]); err != nil {
			errs = append(errs, err)
		}
		// Written (or given up): written again later, it would put back
		// what another conversation may have announced anew since.
		delete(b.news, key)
		delete(b.pending, key)
	}
	return errors.Join(errs...)
}
