package mapper

import (
	"errors"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/chattap/chattap/spec"
)

// Mapper maps Observations to Segment messages. It holds only its
// compiled Options, never changes after New, and is safe for concurrent
// use by any number of goroutines.
type Mapper struct {
	c compiled
}

// New returns a Mapper for o, or every invalid option at once.
func New(o Options) (*Mapper, error) {
	c, err := o.compile()
	if err != nil {
		return nil, fmt.Errorf("mapper options: %w", err)
	}
	return &Mapper{c: c}, nil
}

// Options are the Mapper's options with every default filled in.
func (m *Mapper) Options() Options { return m.c.Options }

// Map maps one Observation, given the State of its conversation (the zero
// State for a conversation never seen), to the Segment messages it yields,
// in the order they should be delivered, and the conversation's next
// State. It does no I/O and reads no clock: timestamps come from the
// payload or obs.ReceivedAt, and every messageId is derived from obs.ID
// (or, for the once-per-conversation Started and Ended, from the
// conversation), so the same obs and st always give byte-identical
// messages.
//
// An Observation already applied to st yields nothing and st unchanged,
// which makes redelivery and replay harmless. With set.RecordLiveChatEvents
// off, Map yields nothing and st unchanged, so the Observation can be
// mapped again later. An event in set.DisabledEvents is left out, while
// the State it implies is kept. An exchange the upstream refused with 401
// or 403 yields nothing either: it was not the contact's. An Observation
// that can never yield anything (not
// JSON, no conversation, an unknown source) returns an error wrapping
// ErrUnmappable; retrying it cannot help. Messages of one call may share
// their read-only maps (context.traits): copy before changing one.
func (m *Mapper) Map(obs *spec.Observation, st State, set spec.Settings) (out []spec.Message, next State, err error) {
	out, next, _, err = m.apply(obs, st, set)
	return out, next, err
}

// MapContact is Map for a mapper that keeps each contact's state across
// its conversations: ct is the Contact of ContactKey(obs, st) (the zero
// Contact for one never announced), and nextCt the one to store, which
// differs from ct only when ctChanged. An identify is emitted when the
// conversation's userId or traits say something ct has not announced,
// so a contact's second conversation that tells nothing new yields none;
// it carries only those new or changed traits, never the rest of ct.
// A ct with another Key than the conversation's contact is ignored, as
// if it were the zero Contact. Like Map, it does no I/O, never changes
// what it is given, and gives byte-identical messages for the same
// arguments.
func (m *Mapper) MapContact(obs *spec.Observation, st State, ct Contact, set spec.Settings) (out []spec.Message, next State, nextCt Contact, ctChanged bool, err error) {
	out, next, nextCt, _, ctChanged, err = m.applyContact(obs, st, ct, set)
	return out, next, nextCt, ctChanged, err
}

// ContactKey is the key of the Contact MapContact needs for obs on st:
// the conversation's anonymousId, chosen at its first event; "" when obs
// names no contact it could announce (not mappable, or no conversation).
// For a conversation's first Observation it maps obs once to find out.
func (m *Mapper) ContactKey(obs *spec.Observation, st State) string {
	if st.AnonymousID != "" {
		return st.AnonymousID
	}
	_, next, _, _, _, err := m.applyContact(obs, st, Contact{}, spec.DefaultSettings)
	if err != nil {
		return ""
	}
	return next.AnonymousID
}

// apply is Map that also says whether next differs from st, so the
// runner writes the bucket only when there is something to remember. The
// contact is the one the conversation's State remembers.
func (m *Mapper) apply(obs *spec.Observation, st State, set spec.Settings) (out []spec.Message, next State, changed bool, err error) {
	var ct Contact
	if st.Contact != nil {
		ct = *st.Contact
	}
	out, next, nextCt, changed, ctChanged, err := m.applyContact(obs, st, ct, set)
	if ctChanged {
		next.Contact, changed = &nextCt, true
	}
	return out, next, changed, err
}

// applyContact is MapContact that also says whether next differs from st.
func (m *Mapper) applyContact(obs *spec.Observation, st State, ct Contact, set spec.Settings) (out []spec.Message, next State, nextCt Contact, changed, ctChanged bool, err error) {
	switch {
	case obs == nil:
		return nil, st, ct, false, false, unmappable("no observation")
	case !set.RecordLiveChatEvents:
		return nil, st, ct, false, false, nil
	case refusedUpstream(obs.Status):
		return nil, st, ct, false, false, nil
	case obs.Kind == spec.KindUndecodable:
		return nil, st, ct, false, false, unmappable("payload is not JSON")
	case obs.ReceivedAt.IsZero():
		return nil, st, ct, false, false, unmappable("observation has no received_at")
	case obs.ID == "":
		return nil, st, ct, false, false, unmappable("observation has no id")
	}
	if st.HasApplied(obs.ID) {
		return nil, st, ct, false, false, nil
	}
	defer func() {
		// A payload no test foresaw must not take the runner down with it;
		// it is unmappable, and the stack says why.
		if r := recover(); r != nil {
			out, next, nextCt, changed, ctChanged = nil, st, ct, false, false
			err = unmappable(fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	given := ct
	if ct.Key != "" && st.AnonymousID != "" && ct.Key != st.AnonymousID {
		ct = Contact{}
	}
	c := m.newConv(obs, st, ct)
	switch obs.Source {
	case spec.SourceChatbotWebhook:
		err = c.chatbotWebhook()
	case spec.SourceChatbotReply, spec.SourceChatbotAPI:
		err = c.chatbotFromBot()
	case spec.SourceChannelInbound, spec.SourceChannelOutbound:
		err = c.channel()
	case spec.SourceAddon:
		err = c.addon()
	default:
		err = unmappable(fmt.Sprintf("unknown source %q", obs.Source))
	}
	if err != nil {
		return nil, st, given, false, false, err
	}
	c.announce()
	if !c.ctChanged {
		c.ct = given
	}
	if len(set.DisabledEvents) > 0 {
		c.out = slices.DeleteFunc(c.out, func(m spec.Message) bool {
			return m.Type == spec.TypeTrack && !set.EventEnabled(m.Event)
		})
	}
	if !c.changed {
		return c.out, st, c.ct, false, c.ctChanged, nil
	}
	c.st.V = StateVersion
	if obs.ReceivedAt.After(c.st.LastAt) {
		c.st.LastAt = obs.ReceivedAt.UTC()
	}
	c.st.Applied = appendBounded(c.st.Applied, hashString(obs.ID), maxApplied)
	return c.out, c.st, c.ct, true, c.ctChanged, nil
}

// ErrUnmappable is wrapped by every error of an Observation that can
// never yield a message: acking it is right, retrying it is not.
var ErrUnmappable = errors.New("unmappable observation")

// UnmappableError says why an Observation yields nothing. It is
// permanent: errors.Is(err, ErrUnmappable) holds.
type UnmappableError struct {
	Reason string
}

// Error says why, for the log.
func (e *UnmappableError) Error() string { return "unmappable observation: " + e.Reason }

// Unwrap makes errors.Is(err, ErrUnmappable) hold.
func (e *UnmappableError) Unwrap() error { return ErrUnmappable }

func unmappable(reason string) error { return &UnmappableError{Reason: reason} }
