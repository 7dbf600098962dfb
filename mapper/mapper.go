package mapper

import (
	"errors"
	"fmt"
	"runtime/debug"

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
// mapped again later. An exchange the upstream refused with 401 or 403
// yields nothing either: it was not the contact's. An Observation that can never yield anything (not
// JSON, no conversation, an unknown source) returns an error wrapping
// ErrUnmappable; retrying it cannot help. Messages of one call may share
// their read-only maps (context.traits): copy before changing one.
func (m *Mapper) Map(obs *spec.Observation, st State, set spec.Settings) (out []spec.Message, next State, err error) {
	out, next, _, err = m.apply(obs, st, set)
	return out, next, err
}

// apply is Map that also says whether next differs from st, so the
// runner writes the bucket only when there is something to remember.
func (m *Mapper) apply(obs *spec.Observation, st State, set spec.Settings) (out []spec.Message, next State, changed bool, err error) {
	switch {
	case obs == nil:
		return nil, st, false, unmappable("no observation")
	case !set.RecordLiveChatEvents:
		return nil, st, false, nil
	case refusedUpstream(obs.Status):
		return nil, st, false, nil
	case obs.Kind == spec.KindUndecodable:
		return nil, st, false, unmappable("payload is not JSON")
	case obs.ReceivedAt.IsZero():
		return nil, st, false, unmappable("observation has no received_at")
	case obs.ID == "":
		return nil, st, false, unmappable("observation has no id")
	}
	if st.HasApplied(obs.ID) {
		return nil, st, false, nil
	}
	defer func() {
		// A payload no test foresaw must not take the runner down with it;
		// it is unmappable, and the stack says why.
		if r := recover(); r != nil {
			out, next, changed = nil, st, false
			err = unmappable(fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	c := m.newConv(obs, st)
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
		return nil, st, false, err
	}
	if !c.changed {
		return c.out, st, false, nil
	}
	c.st.V = StateVersion
	c.st.Applied = appendBounded(c.st.Applied, hashString(obs.ID), maxApplied)
	return c.out, c.st, true, nil
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
