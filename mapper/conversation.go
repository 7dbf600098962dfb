package mapper

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"time"

	"github.com/chattap/chattap/spec"
)

// conv is the mapping of one Observation in progress: the conversation's
// next State and the messages emitted so far.
type conv struct {
	m   *Mapper
	obs *spec.Observation
	st  State
	out []spec.Message
	// changed is set when st differs from the State Map was given.
	changed bool
	// agent is who answers the contact on this Observation's events.
	agent Agent
	// traits is context.traits, built once per Observation from st.
	traits map[string]any
	// ct is the contact's next Contact; ctChanged is set when it differs
	// from the one the mapping was given.
	ct        Contact
	ctChanged bool
	// startAt is the conversation's own start where the payload names it
	// (created_at), and startAgent who took the chat: Started carries
	// them whichever callback names the conversation first.
	startAt    time.Time
	startAgent Agent
	// when is the time of the Observation's event, for an identify that
	// comes with no track.
	when time.Time
}

func (m *Mapper) newConv(obs *spec.Observation, st State, ct Contact) conv {
	return conv{m: m, obs: obs, st: st, ct: ct}
}

// emit appends msg to the output. Most Observations yield one to three
// messages (identify, Started, the event): room for three at the first
// saves the slice's regrowth, and none yields a nil slice.
func (c *conv) emit(msg spec.Message) {
	if c.out == nil {
		c.out = make([]spec.Message, 0, 3)
	}
	c.out = append(c.out, msg)
}

// conversationID is the conversation_id property: the Observation's, with
// the instance suffix of a Custom Channel conversation (States written
// before instances keep their generation suffix, or none).
func (c *conv) conversationID() string {
	switch {
	case c.st.Instance != "":
		return c.obs.ConversationID + "#" + c.st.Instance
	case c.st.Generation == 0:
		return c.obs.ConversationID
	}
	return c.obs.ConversationID + "#" + strconv.Itoa(c.st.Generation+1)
}

// instanceLen is how much of a hash names a channel conversation
// instance: 48 bits, unique enough among one contact's conversations.
const instanceLen = 12

// channelFamily reports whether the conversation is named by its contact
// (Custom Channel) rather than by a session id.
func (c *conv) channelFamily() bool {
	return c.obs.Source == spec.SourceChannelInbound || c.obs.Source == spec.SourceChannelOutbound
}

// late reports whether the Observation is older than what the State has
// already applied.
func (c *conv) late() bool { return c.obs.ReceivedAt.Before(c.st.LastAt) }

// Slots of the outputs of one Observation. A messageId is the Observation
// id plus its slot, so it does not depend on which other outputs the State
// let through: a re-mapping against a newer State (after a conflict in
// the bucket) gives each output the id it had the first time.
const (
	slotIdentify = "id"
	slotEvent    = "ev"
	slotExtended = "xt"
	slotMessage  = "m" // + transcript index
)

func (c *conv) messageID(slot string) string {
	id := c.obs.ID
	if len(id)+1+len(slot) > spec.MaxMessageIDLen {
		id = shortHash(id)
	}
	return id + "-" + slot
}

// onceID is the messageId of an event a conversation has at most once. It
// comes from the conversation, not the Observation: should two replicas
// both emit Started for one conversation, JetStream and Segment keep one.
func (c *conv) onceID(what string) string {
	return "lc-" + what + "-" + shortHash(c.conversationID())
}

// shortHash is 128 bits of sha256 in hex: stable, short, and saying
// nothing of what was hashed.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// payloadTime reads a payload's time in the configured zone; a missing,
// unreadable or implausible one is obs.ReceivedAt.
func (c *conv) payloadTime(s spec.Str) time.Time {
	if t, ok := c.payloadTimeOK(s); ok {
		return t
	}
	return c.obs.ReceivedAt.UTC()
}

// payloadTimeOK is payloadTime that says whether the payload had one.
func (c *conv) payloadTimeOK(s spec.Str) (time.Time, bool) {
	if s != "" {
		if t, err := spec.ParseLocalTime(string(s), c.m.c.loc); err == nil && plausible(t) {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// plausible rejects times Segment could not take (JSON needs a four-digit
// year) or would misfile.
func plausible(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1970 && y <= 9999
}

// setAgent names who answers on this Observation and, for a human, keeps
// them for the events that do not name one.
func (c *conv) setAgent(a Agent, human bool) {
	if a.IsZero() {
		if human {
			c.agent = c.st.Agent
		}
		return
	}
	c.agent = a
	if human && a != c.st.Agent {
		c.st.Agent = a
		c.changed = true
	}
}

func (c *conv) botAgent() Agent {
	return Agent{ID: c.m.c.BotAgentID, Name: c.m.c.BotAgentName, Username: c.m.c.BotAgentUsername}
}

// setWidget keeps the widget a payload names, for the events that do not.
func (c *conv) setWidget(id, name spec.Str) {
	if id != "" && string(id) != c.st.WidgetID {
		c.st.WidgetID, c.changed = string(id), true
	}
	if name != "" && string(name) != c.st.WidgetName {
		c.st.WidgetName, c.changed = string(name), true
	}
}

// track emits a track of event at ts, with the properties every Live
// Chat event carries plus props. A disabled event is not emitted, but
// whatever State it implies is still kept by the caller.
func (c *conv) track(event, messageID string, ts time.Time, props map[string]any) {
	if !c.m.c.enabled[event] {
		return
	}
	if props == nil {
		props = make(map[string]any, 6)
	}
	props[spec.PropConversationID] = c.conversationID()
	if c.agent.ID != "" {
		props[spec.PropAgentID] = c.agent.ID
	}
	if c.agent.Name != "" {
		props[spec.PropAgentName] = c.agent.Name
	}
	if c.agent.Username != "" {
		props[spec.PropAgentUsername] = c.agent.Username
	}
	if c.st.WidgetID != "" {
		props[spec.PropWidgetID] = c.st.WidgetID
	}
	if c.st.WidgetName != "" {
		props[spec.PropWidgetName] = c.st.WidgetName
	}
	ctx := &spec.Context{Library: &c.m.c.library}
	if len(c.st.Traits) > 0 {
		if c.traits == nil {
			c.traits = make(map[string]any, len(c.st.Traits))
			for k, v := range c.st.Traits {
				c.traits[k] = v
			}
		}
		ctx.Traits = c.traits
	}
	c.emit(spec.Message{
		Type:        spec.TypeTrack,
		Event:       event,
		MessageID:   messageID,
		AnonymousID: c.st.AnonymousID,
		UserID:      c.st.UserID,
		Timestamp:   ts.UTC(),
		Properties:  props,
		Context:     ctx,
	})
}

// begin makes the conversation started: the first Live Chat event of a
// conversation is always Conversation Started, whatever its source.
//
// It is stamped with the conversation's own start where a payload named
// one, and never later than ts, the event it comes before; it carries
// the operator who took the chat where a payload named them.
func (c *conv) begin(ts time.Time) {
	if c.st.Started {
		if ts.Before(c.st.StartedAt) {
			// A late record: the conversation began earlier than the
			// first one applied said, which durations are counted from.
			c.st.StartedAt, c.changed = ts.UTC(), true
		}
		return
	}
	if !c.startAt.IsZero() && c.startAt.Before(ts) {
		ts = c.startAt
	}
	if c.channelFamily() && c.st.Instance == "" {
		c.st.Instance = shortHash(c.obs.ID)[:instanceLen]
	}
	c.st.Started, c.st.StartedAt, c.changed = true, ts.UTC(), true
	agent := c.agent
	if !c.startAgent.IsZero() {
		c.agent = c.startAgent
	}
	c.track(spec.EventConversationStarted, c.onceID("started"), ts, nil)
	c.agent = agent
}

// restart begins the next conversation with the same contact: a Custom
// Channel conversation is named by its contact, so a message after it
// ended begins a new one. The other families have a session id per
// conversation and never restart.
func (c *conv) restart() {
	keep := c.st
	c.st = State{
		ConversationID: keep.ConversationID,
		Generation:     keep.Generation + 1,
		Seq:            keep.Seq,
		LastAt:         keep.LastAt,
		AnonymousID:    keep.AnonymousID,
		UserID:         keep.UserID,
		Traits:         keep.Traits,
		WidgetID:       keep.WidgetID,
		WidgetName:     keep.WidgetName,
		Applied:        keep.Applied,
	}
	c.changed = true
}

// seen reports whether a message with this direction and body was
// emitted already in this conversation.
func (c *conv) seen(fromContact bool, body string) bool {
	return slices.Contains(c.st.Seen, messageHash(c.obs.ConversationID, fromContact, body))
}

// message emits Message Sent (from the contact) or Received (to the
// contact), after Started, and remembers it as seen for transcripts.
func (c *conv) message(slot string, fromContact bool, body, payloadMsgID string, ts time.Time) {
	c.begin(ts)
	c.st.Seen = appendBounded(c.st.Seen, messageHash(c.obs.ConversationID, fromContact, body), maxSeen)
	c.changed = true
	event := spec.EventMessageReceived
	if fromContact {
		event = spec.EventMessageSent
	}
	id := c.messageID(slot)
	if payloadMsgID == "" {
		payloadMsgID = id
	}
	props := make(map[string]any, 9)
	props[spec.PropMessageID] = payloadMsgID
	if c.m.c.keepBody {
		props[spec.PropMessageBody] = body
	}
	c.track(event, id, ts, props)
}

// end emits Conversation Ended, at most once per conversation. dur is the
// conversation's length when the payload tells it, else negative.
// extra are properties beyond the spec's that Ended carries (a rating's
// late texts), or nil.
func (c *conv) end(ts time.Time, dur time.Duration, extra map[string]any) {
	if c.st.Ended {
		return
	}
	c.begin(ts)
	if dur < 0 && !c.st.StartedAt.IsZero() {
		dur = ts.Sub(c.st.StartedAt)
	}
	props := make(map[string]any, 7+len(extra))
	for k, v := range extra {
		props[k] = v
	}
	if dur >= 0 {
		props[spec.PropConversationDuration] = int64(dur / time.Second)
	}
	c.st.Ended, c.st.EndedAt, c.changed = true, ts.UTC(), true
	c.track(spec.EventConversationEnded, c.onceID("ended"), ts, props)
}

// body returns text under the message-body policy, for properties other
// than message_body that carry what a person wrote.
func (c *conv) body(text string) (string, bool) {
	return text, c.m.c.keepBody && text != ""
}

// blank reports whether a message body holds nothing but space, which
// messageHash would hash as empty.
func blank(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isSpace(s[i]) {
			return false
		}
	}
	return true
}
