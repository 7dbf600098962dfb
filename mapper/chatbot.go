package mapper

import (
	"strconv"
	"strings"
	"time"

	"github.com/chattap/chattap/spec"
)

// decodeBot reads a Chatbot API event; the conversation must be known, or
// nothing can be said of it.
func (c *conv) decodeBot() (*spec.ChatbotEvent, error) {
	ev, err := spec.DecodeChatbotEvent(c.obs.Payload)
	if err != nil {
		return nil, unmappable("chatbot event is not a JSON object")
	}
	if c.obs.ConversationID == "" {
		return nil, unmappable("chatbot event without info.cid")
	}
	return ev, nil
}

// chatbotWebhook maps an event Userlike sent to the bot: the contact
// speaking, with the bot as the agent.
func (c *conv) chatbotWebhook() error {
	ev, err := c.decodeBot()
	if err != nil {
		return err
	}
	p := &ev.Packet.Payload
	w := c.chatbotWho(ev)
	c.identify(&w)
	c.setWidget(ev.Info.Widget.ID, ev.Info.Widget.Name)
	c.setAgent(c.botAgent(), false)
	ts := c.obs.ReceivedAt
	c.when = ts
	switch ev.Name() {
	case "start":
		c.begin(ts)
	case "click":
		c.click(p, ts)
	case "message":
		c.message(slotEvent, true, spec.FirstOf(p.Body, p.Text, p.Message, p.URL), "", ts)
	default:
		// An event this version does not know is recorded, not rejected:
		// if it carries text, the contact said something.
		if text := p.Said(); text != "" {
			c.message(slotEvent, true, text, "", ts)
		}
	}
	return nil
}

// click is the contact choosing an option of the bot's bubbles or
// carousel: a Message Sent with the option's label, and the opt-in
// Option Selected.
func (c *conv) click(p *spec.ChatbotPayload, ts time.Time) {
	ch := p.Choice()
	label, value, index := ch.Label, ch.Value, ch.Index
	// Options are one-indexed.
	if label == "" && index > 0 && index <= len(c.st.Options) {
		label = c.st.Options[index-1]
	}
	body := label
	if body == "" {
		body = spec.FirstOf(spec.Str(value), p.Body, p.Message)
	}
	if body == "" && index > 0 {
		body = "option " + strconv.Itoa(index)
	}
	c.message(slotEvent, true, body, "", ts)
	props := map[string]any{}
	if index > 0 {
		props[PropOptionIndex] = index
	}
	if label != "" {
		props[PropOptionLabel] = label
	}
	if value != "" {
		props[PropOptionValue] = value
	}
	c.extended(spec.EventOptionSelected, ts, props)
}

// chatbotFromBot maps an event of the bot's reply or of its own call to
// the API URL: the bot speaking to the contact. One Userlike did not
// accept, or one of a reply the bot failed with, never reached the
// contact and yields nothing.
func (c *conv) chatbotFromBot() error {
	if !c.obs.Delivered() {
		return nil
	}
	ev, err := c.decodeBot()
	if err != nil {
		return err
	}
	p := &ev.Packet.Payload
	w := c.chatbotWho(ev)
	name := ev.Name()
	if name == "contact_update" {
		w.traits[traitName] = spec.FirstOf(p.Name, spec.Str(w.traits[traitName]))
		w.traits[traitEmail] = spec.FirstOf(p.Email, spec.Str(w.traits[traitEmail]))
		w.traits[traitPhone] = spec.FirstOf(p.MobileNumber, p.PhoneNumber, spec.Str(w.traits[traitPhone]))
	}
	c.identify(&w)
	c.setWidget(ev.Info.Widget.ID, ev.Info.Widget.Name)
	c.setAgent(c.botAgent(), false)
	// The events of one reply share the tap's time; a microsecond per
	// position keeps their order for tools that sort by timestamp.
	ts := c.obs.ReceivedAt.Add(time.Duration(max(c.obs.Index, 0)) * time.Microsecond)
	c.when = ts
	switch name {
	case "contact_update":
	case "end":
		c.end(ts, -1, nil)
	case "forward_group":
		c.extended(spec.EventConversationForwarded, ts, nonEmpty(map[string]any{
			PropForwardType: forwardToGroup,
			PropGroupID:     spec.FirstOf(p.GroupID, p.Group, p.Body),
			PropGroupName:   string(p.GroupName),
		}))
	case "forward_any":
		c.extended(spec.EventConversationForwarded, ts, map[string]any{PropForwardType: forwardToAnyone})
	case "abort":
		// The bot gives up and Userlike hands the contact on.
		c.extended(spec.EventConversationForwarded, ts, map[string]any{PropForwardType: forwardAfterAbort})
	case "navigate":
		c.message(slotEvent, false, spec.FirstOf(p.URL, p.Body, p.Text), "", ts)
	default:
		c.botSays(p, ts)
	}
	return nil
}

// botSays maps message, bubbles, carousel, the deprecated button and any
// event with text: a Message Received. The options offered are kept so a
// later click that names only an index reads as its label.
func (c *conv) botSays(p *spec.ChatbotPayload, ts time.Time) {
	opts := p.OptionList()
	var labels []string
	if len(opts) > 0 {
		labels = make([]string, 0, len(opts))
		for i := range opts {
			labels = append(labels, opts[i].Caption())
		}
		c.st.Options, c.changed = labels, true
	}
	text := p.Said()
	if text == "" {
		text = strings.Join(labels, optionLabelJoinSep)
	}
	if text == "" {
		text = string(p.URL)
	}
	if text == "" {
		return
	}
	c.message(slotEvent, false, text, "", ts)
}

// chatbotWho reads info.contact.
func (c *conv) chatbotWho(ev *spec.ChatbotEvent) who {
	ct := &ev.Info.Contact
	w := who{contactID: string(ct.ID), uuid: string(ct.UUID), email: string(ct.Email)}
	w.traits = [numTraits]string{string(ct.Name), string(ct.Email), spec.FirstOf(ct.MobileNumber, ct.PhoneNumber), string(ct.Company), string(ct.Locale)}
	switch f := c.userIDField(); f {
	case "":
	case "external_customer_id":
		w.userID = string(ct.ExternalCustomerID)
	case "id":
		w.userID = string(ct.ID)
	case "uuid":
		w.userID = string(ct.UUID)
	case "email":
		w.userID = string(ct.Email)
	default:
		w.userID = spec.FindScalar(c.obs.Payload, "info.contact."+f)
	}
	return w
}

// nonEmpty drops the properties a payload left empty.
func nonEmpty(props map[string]any) map[string]any {
	for k, v := range props {
		if s, ok := v.(string); ok && s == "" {
			delete(props, k)
		}
	}
	return props
}
