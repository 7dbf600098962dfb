package mapper

import (
	"encoding/json"
	"fmt"
	"maps"
)

// ContactVersion is written in Contact.V. Version 2 adds At; a version 1
// Contact (no At) reads as values known since the beginning of time, so
// any later value that differs is news, as it was.
const ContactVersion = 2

// Contact is what the mapping remembers of one contact across all of its
// conversations: the userId and traits it last announced in an identify,
// and when. A contact is keyed by its anonymousId (ContactKey), which is
// stable for the contact wherever a payload names one (a Userlike contact
// id, a uuid, a channel identifier or an email) and per conversation
// otherwise. It is a value: MapContact never changes the Contact it is
// given and returns the next one.
//
// At is why a contact's identifies never put an old value back. The
// conversations of one contact sit in different partitions of
// CHATTAP_RAW, each mapped in order by its own consumer but not in step
// with the others: a partition that is behind (a takeover replaying what
// the dead owner held, records a publisher kept while the store was full,
// a remap) maps an older conversation after a newer one. Without times, its
// older email would differ from the newer one announced and be announced
// again after it: a destination that applies identifies as they come would
// end with the old value (case 9 of the fault suite did this). With At, a
// value is news only when it
// differs and its event is not older than the one that announced the
// stored value; an older value that differs is history, not news.
type Contact struct {
	V int `json:"v"`
	// Key is the contact's anonymousId, for whoever reads the bucket.
	Key    string            `json:"key,omitempty"`
	UserID string            `json:"user_id,omitempty"`
	Traits map[string]string `json:"traits,omitempty"`
	// At is, per trait (and atUserID for the userId), the Unix
	// milliseconds of the event whose identify announced the value.
	At map[string]int64 `json:"at,omitempty"`
}

// atUserID is the userId's key in Contact.At (trait keys have no "$").
const atUserID = "$user_id"

// newer reports whether a value of key seen at at, different from ct's,
// is news: ct never announced one, or announced it from an event that is
// not newer (two events of one millisecond: the one mapped later wins, as
// without times).
func (ct *Contact) newer(key string, at int64) bool {
	return at >= ct.At[key]
}

// DecodeContact reads a Contact stored by Encode; empty data is a contact
// never announced.
func DecodeContact(data []byte) (Contact, error) {
	var ct Contact
	if len(data) == 0 {
		return ct, nil
	}
	if err := json.Unmarshal(data, &ct); err != nil {
		return Contact{}, fmt.Errorf("decode contact state: %w", err)
	}
	return ct, nil
}

// Encode returns ct as the JSON stored in the KV bucket.
func (ct *Contact) Encode() ([]byte, error) {
	ct.V = ContactVersion
	b, err := json.Marshal(ct)
	if err != nil {
		return nil, fmt.Errorf("encode contact state: %w", err)
	}
	return b, nil
}

// announces reports whether the conversation's identity (st's userId and
// traits), seen at at (Unix ms), says anything ct has not announced: a
// userId or a trait value that is new, or changed by an event not older
// than the one that announced ct's. Traits ct has and st lacks say nothing: a
// later conversation that names only the contact's name leaves the email
// known from an earlier one alone.
func (ct *Contact) announces(st *State, at int64) bool {
	if st.UserID != "" && st.UserID != ct.UserID && ct.newer(atUserID, at) {
		return true
	}
	for k, v := range st.Traits {
		if ct.Traits[k] != v && ct.newer(k, at) {
			return true
		}
	}
	return false
}

// merged is ct with st's userId and traits, seen at at, over it where they
// are news (announces), copied: ct is never changed.
func (ct Contact) merged(st *State, at int64) Contact {
	next := Contact{V: ContactVersion, Key: st.AnonymousID, UserID: ct.UserID}
	if len(ct.At) > 0 {
		next.At = maps.Clone(ct.At)
	}
	stamp := func(key string) {
		if next.At == nil {
			next.At = map[string]int64{}
		}
		next.At[key] = at
	}
	if st.UserID != "" && st.UserID != ct.UserID && ct.newer(atUserID, at) {
		next.UserID = st.UserID
		stamp(atUserID)
	}
	if len(ct.Traits)+len(st.Traits) > 0 {
		next.Traits = make(map[string]string, len(ct.Traits)+len(st.Traits))
		maps.Copy(next.Traits, ct.Traits)
		for k, v := range st.Traits {
			if old, ok := ct.Traits[k]; ok && old == v || !ct.newer(k, at) {
				continue
			}
			next.Traits[k] = v
			stamp(k)
		}
	}
	return next
}

// news is what next says that ct did not: next's userId if it changed,
// and the traits whose value is new or changed. It is what an identify
// announces and what a contact write merges over the stored Contact. The
// rest of next is only what this conversation read, maybe before another
// conversation of the contact announced something newer: sending or
// storing it again would put an old value back. A ct of another contact
// says nothing of next's: all of next is news.
func (ct Contact) news(next Contact) Contact {
	if ct.Key != "" && ct.Key != next.Key {
		ct = Contact{}
	}
	out := Contact{V: ContactVersion, Key: next.Key}
	at := func(key string) {
		if t, ok := next.At[key]; ok {
			if out.At == nil {
				out.At = map[string]int64{}
			}
			out.At[key] = t
		}
	}
	if next.UserID != ct.UserID {
		out.UserID = next.UserID
		at(atUserID)
	}
	for k, v := range next.Traits {
		if old, ok := ct.Traits[k]; ok && old == v {
			continue
		}
		if out.Traits == nil {
			out.Traits = make(map[string]string, len(next.Traits))
		}
		out.Traits[k] = v
		at(k)
	}
	return out
}
