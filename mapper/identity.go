package mapper

import (
	"slices"
	"strings"

	"github.com/chattap/chattap/spec"
)

// who is what one payload tells of the contact.
type who struct {
	userID string
	// Candidates for the anonymousId, best first: each is namespaced, and
	// the ones that could expose a person are hashed.
	contactID, uuid, channel, email string
	traits                          [numTraits]string
}

// The contact traits chattap fills, in the order of traitKeys.
const (
	traitName = iota
	traitEmail
	traitPhone
	traitCompany
	traitLocale
	numTraits
)

var traitKeys = [numTraits]string{spec.TraitName, spec.TraitEmail, spec.TraitPhone, spec.TraitCompany, spec.TraitLocale}

// Longest contact id or uuid used in an anonymousId as it is; a longer
// one is hashed so the anonymousId stays short.
const maxPlainID = 64

// anonymousID picks the anonymousId for w: stable for the contact where
// the payload names one, else derived from the conversation.
func (w *who) anonymousID(conversation string) string {
	switch {
	case w.contactID != "":
		return namespaced("userlike-contact", w.contactID)
	case w.uuid != "":
		return namespaced("userlike-uuid", w.uuid)
	case w.channel != "":
		// A channel names its contact by an email, a phone number or a
		// customer id: always hashed, never guessed which.
		return "channel-sha256:" + shortHash(w.channel)
	case w.email != "":
		return "email-sha256:" + shortHash(strings.ToLower(strings.TrimSpace(w.email)))
	}
	return "conversation-sha256:" + shortHash(conversation)
}

func namespaced(ns, id string) string {
	if len(id) > maxPlainID {
		return ns + "-sha256:" + shortHash(id)
	}
	return ns + ":" + id
}

// identify brings the conversation's identity up to date with w: its
// anonymousId at the first event, then the userId and traits the payload
// names. It runs before any track of the Observation, so that every track
// carries the identity and traits known so far; whether that is news for
// the contact, and so an identify, announce decides once the tracks are
// known.
func (c *conv) identify(w *who) {
	if c.st.ConversationID == "" {
		c.st.ConversationID, c.changed = c.obs.ConversationID, true
	}
	if c.st.AnonymousID == "" {
		c.st.AnonymousID, c.changed = w.anonymousID(c.obs.ConversationID), true
	}
	if w.userID != "" && w.userID != c.st.UserID {
		c.st.UserID, c.changed = w.userID, true
	}
	if c.st.UserID == "" && c.ct.UserID != "" {
		// A returning contact whose payload does not repeat the userId
		// keeps the one it announced.
		c.st.UserID, c.changed = c.ct.UserID, true
	}
	var merged map[string]string
	for i, v := range w.traits {
		v = strings.TrimSpace(v)
		if v == "" || c.st.Traits[traitKeys[i]] == v {
			continue
		}
		if merged == nil {
			// Copy on write: the State Map was given is never changed.
			merged = make(map[string]string, len(c.st.Traits)+numTraits)
			for k, old := range c.st.Traits {
				merged[k] = old
			}
		}
		merged[traitKeys[i]] = v
	}
	if merged != nil {
		c.st.Traits, c.changed = merged, true
	}
}

// announce emits an identify, before the Observation's tracks, when the
// conversation's userId or traits say something the contact has not
// announced yet, and only for a contact that has a Live Chat event: this
// Observation emitted a track, or the conversation did before. Its
// timestamp is that of the first track it comes with (else the time of
// the Observation's event), so it is never stamped apart from the event
// that carried the change. Held back, the news stays in the State and is
// announced with the next track.
func (c *conv) announce() {
	first := -1
	for i := range c.out {
		if c.out[i].Type == spec.TypeTrack {
			first = i
			break
		}
	}
	if first >= 0 && !c.st.Tracked {
		c.st.Tracked, c.changed = true, true
	}
	ts := c.when
	if first >= 0 {
		ts = c.out[first].Timestamp
	}
	if ts.IsZero() {
		ts = c.obs.ReceivedAt
	}
	at := ts.UnixMilli()
	if c.st.AnonymousID == "" || !c.st.Tracked || !c.ct.announces(&c.st, at) {
		return
	}
	next := c.ct.merged(&c.st, at)
	// Only the news, not the whole Contact: the rest is what this
	// conversation read, and another conversation of the contact may have
	// announced a newer value since; a trait sent again here would
	// overwrite it at the destination. Segment merges an identify's
	// traits into what it knows.
	news := c.ct.news(next)
	c.ct, c.ctChanged, c.changed = next, true, true
	var traits map[string]any
	if len(news.Traits) > 0 {
		traits = make(map[string]any, len(news.Traits))
		for k, v := range news.Traits {
			traits[k] = v
		}
	}
	c.out = slices.Insert(c.out, 0, spec.Message{
		Type:        spec.TypeIdentify,
		MessageID:   c.messageID(slotIdentify),
		AnonymousID: c.st.AnonymousID,
		UserID:      next.UserID,
		Timestamp:   ts.UTC(),
		Traits:      traits,
		Context:     &spec.Context{Library: &c.m.c.library},
	})
}

// userIDField is the contact field the userId is read from, "" when
// userIds are off.
func (c *conv) userIDField() string {
	if c.m.c.UserIDField == NoUserID {
		return ""
	}
	return c.m.c.UserIDField
}
