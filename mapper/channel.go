package mapper

import (
	"strings"

	"github.com/chattap/chattap/spec"
)

// channel maps a Custom Channel message: inbound is the contact writing
// (Message Sent), outbound an operator answering (Message Received). A
// channel has no start or end event, so the first message starts the
// conversation.
func (c *conv) channel() error {
	msg, err := spec.DecodeChannelMessage(c.obs.Payload, c.m.c.ChannelFields)
	if err != nil {
		return unmappable("channel message: " + err.Error())
	}
	if c.obs.ConversationID == "" {
		return unmappable("channel message names no contact")
	}
	inbound := c.obs.Source == spec.SourceChannelInbound
	// The contact's side is recorded whatever became of it upstream;
	// an operator's message the channel server refused never reached the
	// contact.
	if !inbound && !c.obs.Delivered() {
		return nil
	}
	w := who{channel: msg.Contact}
	w.traits[traitName] = msg.ContactName
	if strings.Contains(msg.Contact, "@") {
		w.traits[traitEmail] = msg.Contact
	}
	if f := c.userIDField(); f != "" {
		w.userID = spec.FindScalar(c.obs.Payload, f, "contact."+f)
	}
	c.identify(&w)
	ts := c.obs.ReceivedAt
	c.when = ts
	body := spec.FirstOf(spec.Str(msg.Body), spec.Str(msg.URL))
	ends := !inbound && endsConversation(msg.Event)
	if (!inbound && msg.Deleted) || (body == "" && !ends) {
		return nil
	}
	if c.st.Ended {
		if ends {
			return nil
		}
		// A message from before the end that arrives after it belongs to
		// the conversation that ended: a late record never opens a new one.
		if c.st.EndedAt.IsZero() || ts.After(c.st.EndedAt) {
			c.restart()
		}
	}
	if inbound {
		c.setAgent(Agent{}, true)
		c.message(slotEvent, true, body, "", ts)
		return nil
	}
	c.setAgent(Agent{ID: msg.OperatorID, Name: msg.OperatorName, Username: msg.OperatorUsername}, true)
	if ends {
		c.end(ts, -1, nil)
		return nil
	}
	c.message(slotEvent, false, body, "", ts)
	return nil
}

// endsConversation reads an outbound message.event: Userlike does not
// publish their names, so any that says the chat ended or closed does.
func endsConversation(event string) bool {
	e := strings.ToLower(event)
	return e == "end" || strings.HasSuffix(e, "_end") || strings.HasSuffix(e, "ended") ||
		strings.HasSuffix(e, "closed") || e == "close"
}
