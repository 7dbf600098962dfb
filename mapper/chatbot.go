package mapper

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/chattap/chattap/spec"
)

// botPayload is packet.payload of every Chatbot API event chattap reads,
// in one struct: the event's name says which fields matter. The keys of
// click, bubbles and carousel payloads are not public, so the likely ones
// are all tried.
type botPayload struct {
	Body        spec.Str        `json:"body"`
	Text        spec.Str        `json:"text"`
	Message     spec.Str        `json:"message"`
	Title       spec.Str        `json:"title"`
	Label       spec.Str        `json:"label"`
	Value       spec.Str        `json:"value"`
	URL         spec.Str        `json:"url"`
	Option      json.RawMessage `json:"option"`
	Index       spec.Str        `json:"index"`
	OptionIndex spec.Str        `json:"option_index"`
	Selected    spec.Str        `json:"selected"`
	Options     []botOption     `json:"options"`
	Elements    []botOption     `json:"elements"`
	Items       []botOption     `json:"items"`
	Buttons     []botOption     `json:"buttons"`
	Group       spec.Str        `json:"group"`
	GroupID     spec.Str        `json:"group_id"`
	GroupName   spec.Str        `json:"group_name"`
	// contact_update
	Name         spec.Str `json:"name"`
	Email        spec.Str `json:"email"`
	MobileNumber spec.Str `json:"mobile_number"`
	PhoneNumber  spec.Str `json:"phone_number"`
}

// botOption is one option of a bubbles or carousel element.
type botOption struct {
	Label spec.Str `json:"label"`
	Title spec.Str `json:"title"`
	Text  spec.Str `json:"text"`
	Body  spec.Str `json:"body"`
	Value spec.Str `json:"value"`
}

func (o *botOption) label() string { return first(o.Label, o.Title, o.Text, o.Body, o.Value) }

func first(ss ...spec.Str) string {
	for _, s := range ss {
		if s != "" {
			return string(s)
		}
	}
	return ""
}

func (p *botPayload) text() string { return first(p.Body, p.Text, p.Message, p.Title) }

func (p *botPayload) options() []botOption {
	for _, l := range [][]botOption{p.Options, p.Elements, p.Items, p.Buttons} {
		if len(l) > 0 {
			return l
		}
	}
	return nil
}

// botEvent is a Chatbot API event read in one pass, payload included;
// spec.ChatbotEvent keeps packet.payload and info.context raw, which
// would cost a second pass and copies the mapping never reads.
type botEvent struct {
	Info struct {
		Cid     spec.Str     `json:"cid"`
		Contact spec.Contact `json:"contact"`
		Widget  spec.Widget  `json:"widget"`
	} `json:"info"`
	Packet struct {
		Name    spec.Str   `json:"name"`
		Event   spec.Str   `json:"event"`
		Payload botPayload `json:"payload"`
	} `json:"packet"`
}

// name is packet.name, else packet.event, as spec.ChatbotEvent.Name.
func (e *botEvent) name() string { return first(e.Packet.Name, e.Packet.Event) }

// decodeBot reads a Chatbot API event; the conversation must be known, or
// nothing can be said of it.
func (c *conv) decodeBot() (*botEvent, error) {
	var ev botEvent
	if !isObject(c.obs.Payload) || !unmarshalLenient(c.obs.Payload, &ev) {
		return nil, unmappable("chatbot event is not a JSON object")
	}
	if c.obs.ConversationID == "" {
		return nil, unmappable("chatbot event without info.cid")
	}
	return &ev, nil
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
	switch ev.name() {
	case "start":
		c.begin(ts)
	case "click":
		c.click(p, ts)
	case "message":
		c.message(slotEvent, true, first(p.Body, p.Text, p.Message, p.URL), "", ts)
	default:
		// An event this version does not know is recorded, not rejected:
		// if it carries text, the contact said something.
		if text := p.text(); text != "" {
			c.message(slotEvent, true, text, "", ts)
		}
	}
	return nil
}

// click is the contact choosing an option of the bot's bubbles or
// carousel: a Message Sent with the option's label, and the opt-in
// Option Selected.
func (c *conv) click(p *botPayload, ts time.Time) {
	var opt botOption
	index := 0
	if len(p.Option) > 0 {
		if p.Option[0] == '{' {
			unmarshalLenient(p.Option, &opt)
		} else {
			var s spec.Str
			_ = s.UnmarshalJSON(p.Option)
			if n, ok := s.Int(); ok {
				index = int(n)
			} else {
				opt.Label = s
			}
		}
	}
	label := first(opt.Label, opt.Title, opt.Text, p.Label, p.Title, p.Text)
	value := first(opt.Value, p.Value)
	for _, s := range []spec.Str{p.Index, p.OptionIndex, p.Selected} {
		if n, ok := s.Int(); ok && index == 0 {
			index = int(n)
		}
	}
	// Options are one-indexed.
	if label == "" && index > 0 && index <= len(c.st.Options) {
		label = c.st.Options[index-1]
	}
	body := label
	if body == "" {
		body = first(spec.Str(value), p.Body, p.Message)
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
	name := ev.name()
	if name == "contact_update" {
		w.traits[traitName] = first(p.Name, spec.Str(w.traits[traitName]))
		w.traits[traitEmail] = first(p.Email, spec.Str(w.traits[traitEmail]))
		w.traits[traitPhone] = first(p.MobileNumber, p.PhoneNumber, spec.Str(w.traits[traitPhone]))
	}
	c.identify(&w)
	c.setWidget(ev.Info.Widget.ID, ev.Info.Widget.Name)
	c.setAgent(c.botAgent(), false)
	// The events of one reply share the tap's time; a microsecond per
	// position keeps their order for tools that sort by timestamp.
	ts := c.obs.ReceivedAt.Add(time.Duration(max(c.obs.Index, 0)) * time.Microsecond)
	switch name {
	case "contact_update":
	case "end":
		c.end(ts, -1)
	case "forward_group":
		c.extended(spec.EventConversationForwarded, ts, nonEmpty(map[string]any{
			PropForwardType: forwardToGroup,
			PropGroupID:     first(p.GroupID, p.Group, p.Body),
			PropGroupName:   string(p.GroupName),
		}))
	case "forward_any":
		c.extended(spec.EventConversationForwarded, ts, map[string]any{PropForwardType: forwardToAnyone})
	case "abort":
		// The bot gives up and Userlike hands the contact on.
		c.extended(spec.EventConversationForwarded, ts, map[string]any{PropForwardType: forwardAfterAbort})
	case "navigate":
		c.message(slotEvent, false, first(p.URL, p.Body, p.Text), "", ts)
	default:
		c.botSays(p, ts)
	}
	return nil
}

// botSays maps message, bubbles, carousel, the deprecated button and any
// event with text: a Message Received. The options offered are kept so a
// later click that names only an index reads as its label.
func (c *conv) botSays(p *botPayload, ts time.Time) {
	opts := p.options()
	var labels []string
	if len(opts) > 0 {
		labels = make([]string, 0, len(opts))
		for i := range opts {
			labels = append(labels, opts[i].label())
		}
		c.st.Options, c.changed = labels, true
	}
	text := p.text()
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
func (c *conv) chatbotWho(ev *botEvent) who {
	ct := &ev.Info.Contact
	w := who{contactID: string(ct.ID), uuid: string(ct.UUID), email: string(ct.Email)}
	w.traits = [numTraits]string{string(ct.Name), string(ct.Email), first(ct.MobileNumber, ct.PhoneNumber), string(ct.Company), string(ct.Locale)}
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
		w.userID = lookup(c.obs.Payload, "info.contact."+f)
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
