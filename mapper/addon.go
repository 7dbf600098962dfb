package mapper

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/chattap/chattap/spec"
)

// addonWire is an add-on callback with the fields chattap reads beyond
// spec.AddonEvent's, decoded in one pass.
type addonWire struct {
	spec.AddonEvent
	MessageID spec.Str `json:"message_id"`
	SentAt    spec.Str `json:"sent_at"`
	Body      spec.Str `json:"body"`
	Text      spec.Str `json:"text"`
	Rating    spec.Str `json:"rating"`
	Feedback  spec.Str `json:"feedback"`
}

// addon maps an API add-on callback. Only session callbacks (chat_meta,
// chat_session, conversation) are about a conversation; operator status,
// widget config and offline messages yield nothing and stay raw.
func (c *conv) addon() error {
	var e addonWire
	if !unmarshalLenient(c.obs.Payload, &e) {
		return unmappable("add-on callback is not a JSON object")
	}
	if !e.IsSession() {
		return nil
	}
	if c.obs.ConversationID == "" {
		return unmappable("add-on session callback names no session")
	}
	w := who{uuid: string(e.ClientUUID), email: string(e.ClientEmail)}
	w.traits[traitName] = string(e.ClientName)
	w.traits[traitEmail] = string(e.ClientEmail)
	if f := c.userIDField(); f != "" {
		w.userID = lookup(c.obs.Payload, f, "client_"+f, "contact."+f, "custom."+f)
	}
	c.identify(&w)
	c.setWidget(e.ChatWidget.ID, e.ChatWidget.Name)
	op := e.OperatorCurrent
	if op == nil {
		op = e.OperatorCreated
	}
	c.setAgent(operatorAgent(op), true)

	switch string(e.Event) {
	case "start":
		c.begin(c.payloadTime(e.CreatedAt))
	case "message_received":
		c.live(&e, true)
	case "message_sent":
		c.live(&e, false)
	case "end", "ended", "receive":
		c.finished(&e)
	case "forward":
		props := map[string]any{PropForwardType: forwardByOperator}
		if op != nil && op.OperatorGroup != nil {
			props[PropGroupID] = string(op.OperatorGroup.ID)
			props[PropGroupName] = string(op.OperatorGroup.Name)
		}
		c.extended(spec.EventConversationForwarded, c.obs.ReceivedAt, nonEmpty(props))
	case "rating", "feedback", "survey":
		c.rated(&e, c.obs.ReceivedAt)
	}
	return nil
}

// operatorAgent reads an operator as the agent of Live Chat events.
func operatorAgent(op *spec.Operator) Agent {
	if op == nil {
		return Agent{}
	}
	name := string(op.Name)
	if name == "" {
		name = strings.TrimSpace(string(op.FirstName) + " " + string(op.LastName))
	}
	return Agent{ID: string(op.ID), Name: name, Username: string(op.Username)}
}

// live maps a message event: the payload's own message, else the newest
// message of its transcript that goes the same way.
func (c *conv) live(e *addonWire, fromContact bool) {
	body := first(e.Message, e.Body, e.Text)
	ts := c.payloadTime(e.SentAt)
	if body == "" {
		for i := len(e.Messages) - 1; i >= 0; i-- {
			if m := &e.Messages[i]; m.FromContact() == fromContact && m.Message != "" {
				body, ts = string(m.Message), c.payloadTime(m.SentAt)
				break
			}
		}
	}
	if body == "" {
		return
	}
	if c.st.Ended && c.seen(fromContact, body) {
		// A live event that arrives after the transcript that held it.
		return
	}
	msgID := string(e.MessageID)
	if msgID == "" && e.ID != "" && string(e.ID) != e.SessionKey() {
		// id names the message only where another field names the session.
		msgID = string(e.ID)
	}
	c.message(slotEvent, fromContact, body, msgID, ts)
}

// finished maps end, receive and conversation.ended: the transcript's
// messages not yet seen, a rating the session carries, and Conversation
// Ended once.
func (c *conv) finished(e *addonWire) {
	c.begin(c.payloadTime(e.CreatedAt))
	c.transcript(e.Messages)
	end := c.payloadTime(e.EndedAt)
	if !c.st.Rated && (e.Rate != "" || e.Rating != "" || e.FeedbackMessage != "" || e.Feedback != "" || e.PostSurveyOption != "") {
		c.rated(e, end)
	}
	dur := time.Duration(-1)
	if d, err := spec.ParseDuration(string(e.Duration)); err == nil {
		dur = d
	} else if e.EndedAt != "" && e.CreatedAt != "" {
		if start := c.payloadTime(e.CreatedAt); !end.Before(start) {
			dur = end.Sub(start)
		}
	}
	c.end(end, dur)
}

// transcript emits the messages of a finished session that no live event
// delivered already. Seen counts each occurrence, so a contact who wrote
// "yes" twice gets two messages, but one already seen live is not doubled.
func (c *conv) transcript(msgs []spec.AddonMessage) {
	if len(msgs) == 0 {
		return
	}
	seen := make(map[uint64]int, len(c.st.Seen))
	for _, h := range c.st.Seen {
		seen[h]++
	}
	inTranscript := make(map[uint64]int, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		body := string(m.Message)
		if blank(body) {
			continue
		}
		h := messageHash(c.obs.ConversationID, m.FromContact(), body)
		inTranscript[h]++
		if inTranscript[h] <= seen[h] {
			continue
		}
		c.message(slotMessage+strconv.Itoa(i), m.FromContact(), body, "", c.payloadTime(m.SentAt))
	}
}

// rated emits the opt-in Conversation Rated.
func (c *conv) rated(e *addonWire, ts time.Time) {
	if !c.m.c.enabled[spec.EventConversationRated] {
		return
	}
	props := map[string]any{}
	if r := first(e.Rate, e.Rating); r != "" {
		if n, err := strconv.ParseFloat(r, 64); err == nil && !math.IsInf(n, 0) && !math.IsNaN(n) {
			props[PropRating] = n
		} else {
			props[PropRating] = r
		}
	}
	if fb, ok := c.body(first(e.FeedbackMessage, e.Feedback)); ok {
		props[PropFeedback] = fb
	}
	if e.PostSurveyOption != "" {
		props[PropSurveyOption] = string(e.PostSurveyOption)
	}
	c.st.Rated, c.changed = true, true
	c.extended(spec.EventConversationRated, ts, props)
}
