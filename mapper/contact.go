package mapper

import (
	"encoding/json"
	"fmt"
	"maps"
)

// ContactVersion is written in Contact.V.
const ContactVersion = 1

// Contact is what the mapping remembers of one contact across all of its
// conversations: the userId and traits it last announced in an identify.
// A contact is keyed by its anonymousId (ContactKey), which is stable for
// the contact wherever a payload names one (a Userlike contact id, a
// uuid, a channel identifier or an email) and per conversation otherwise.
// It is a value: MapContact never changes the Contact it is given and
// returns the next one.
type Contact struct {
	V int `json:"v"`
	// Key is the contact's anonymousId, for whoever reads the bucket.
	Key    string            `json:"key,omitempty"`
	UserID string            `json:"user_id,omitempty"`
	Traits map[string]string `json:"traits,omitempty"`
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
// traits) says anything ct has not announced: a userId or a trait value
// that is new or changed. Traits ct has and st lacks say nothing: a later
// conversation that names only the contact's name leaves the email known
// from an earlier one alone.
func (ct *Contact) announces(st *State) bool {
	if st.UserID != "" && st.UserID != ct.UserID {
		return true
	}
	for k, v := range st.Traits {
		if ct.Traits[k] != v {
			return true
		}
	}
	return false
}

// merged is ct with st's userId and traits over it, copied: ct is never
// changed.
func (ct Contact) merged(st *State) Contact {
	next := Contact{V: ContactVersion, Key: st.AnonymousID, UserID: ct.UserID}
	if st.UserID != "" {
		next.UserID = st.UserID
	}
	if len(ct.Traits)+len(st.Traits) > 0 {
		next.Traits = make(map[string]string, len(ct.Traits)+len(st.Traits))
		maps.Copy(next.Traits, ct.Traits)
		maps.Copy(next.Traits, st.Traits)
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
	if next.UserID != ct.UserID {
		out.UserID = next.UserID
	}
	for k, v := range next.Traits {
		if old, ok := ct.Traits[k]; ok && old == v {
			continue
		}
		if out.Traits == nil {
			out.Traits = make(map[string]string, len(next.Traits))
		}
		out.Traits[k] = v
	}
	return out
}
