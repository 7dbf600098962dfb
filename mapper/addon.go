package mapper

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/chattap/chattap/spec"
)

// addon maps an API add-on callback. Only session callbacks (chat_meta,
// chat_session, conversation) are about a conversation; operator status,
// widget config and offline messages yield nothing and stay raw.
//
// Whichever callback names a conversation first, its Started is stamped
// with the session's created_at and carries operator_created (who took
// the chat); Ended carries operator_current (who has it at the end); a
// transcript line carries the operator who wrote it.
func (c *conv) addon() error {
	e, err := spec.DecodeAddonEvent(c.obs.Payload)
	if err != nil {
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
		w.userID = spec.FindScalar(c.obs.Payload, f, "client_"+f, "contact."+f, "custom."+f)
	}
	c.identify(&w)
	c.setWidget(e.ChatWidget.ID, e.ChatWidget.Name)
	created, current := operatorAgent(e.OperatorCreated), operatorAgent(e.OperatorCurrent)
	c.knowOperator(created)
	c.knowOperator(current)
	if t, ok := c.payloadTimeOK(e.CreatedAt); ok {
		c.startAt = t
	}
	c.startAgent = created
	if c.startAgent.IsZero() {
		c.startAgent = current
	}
	c.setAgent(current, true)
	c.when = c.obs.ReceivedAt

	switch string(e.Event) {
	case "start":
		c.begin(c.payloadTime(e.CreatedAt))
	case "message_received":
		c.live(e, true)
	case "message_sent":
		c.live(e, false)
	case "end", "ended", "receive":
		c.finished(e)
	case "forward":
		props := map[string]any{PropForwardType: forwardByOperator}
		if op := e.OperatorCurrent; op != nil && op.OperatorGroup != nil {
			props[PropGroupID] = string(op.OperatorGroup.ID)
			props[PropGroupName] = string(op.OperatorGroup.Name)
		}
		c.extended(spec.EventConversationForwarded, c.obs.ReceivedAt, nonEmpty(props))
	case "rating", "feedback", "survey":
		c.rating(e, c.obs.ReceivedAt)
	}
	return nil
}

// operatorAgent reads an operator as the agent of Live Chat events.
func operatorAgent(op *spec.Operator) Agent {
	if op == nil {
		return Agent{}
	}
	return Agent{ID: string(op.ID), Name: op.DisplayName(), Username: string(op.Username)}
}

// knowOperator remembers an operator a payload named, so a transcript
// line can be matched to them by name. One named again is updated with
// what the newer payload tells (an id, a username).
func (c *conv) knowOperator(a Agent) {
	if a.IsZero() {
		return
	}
	for i, known := range c.st.Operators {
		if sameOperator(known, a) {
			if merged := mergeAgent(known, a); merged != known {
				c.st.Operators = append([]Agent(nil), c.st.Operators...)
				c.st.Operators[i], c.changed = merged, true
			}
			return
		}
	}
	ops := c.st.Operators
	if len(ops) >= maxOperators {
		ops = ops[len(ops)-maxOperators+1:]
	}
	c.st.Operators, c.changed = append(append([]Agent(nil), ops...), a), true
}

// sameOperator: the same id, or no ids to tell and the same name.
func sameOperator(a, b Agent) bool {
	if a.ID != "" && b.ID != "" {
		return a.ID == b.ID
	}
	return a.Name != "" && foldName(a.Name) == foldName(b.Name)
}

func mergeAgent(old, a Agent) Agent {
	if a.ID == "" {
		a.ID = old.ID
	}
	if a.Name == "" {
		a.Name = old.Name
	}
	if a.Username == "" {
		a.Username = old.Username
	}
	return a
}

// foldName compares names as people write them: case and runs of space
// do not matter.
func foldName(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// lineAuthor is the operator who wrote a transcript line, by its person
// against the operators the payloads named: their full name, else their
// username, else a first name only one of them has. ok is false when
// none matches.
func (c *conv) lineAuthor(person string) (Agent, bool) {
	p := foldName(person)
	if p == "" {
		return Agent{}, false
	}
	for _, op := range c.st.Operators {
		if foldName(op.Name) == p || (op.Username != "" && strings.ToLower(op.Username) == p) {
			return op, true
		}
	}
	var found Agent
	n := 0
	for _, op := range c.st.Operators {
		if first, _, _ := strings.Cut(foldName(op.Name), " "); first == p {
			found, n = op, n+1
		}
	}
	return found, n == 1
}

// live maps a message event: the payload's own message, else the newest
// message of its transcript that goes the same way.
func (c *conv) live(e *spec.AddonEvent, fromContact bool) {
	body := e.MessageText()
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
	c.when = ts
	c.message(slotEvent, fromContact, body, e.LiveMessageID(), ts)
}

// finished maps end, receive and conversation.ended: the transcript's
// messages not yet seen, the rating the session carries, and
// Conversation Ended once, with the operator who has the chat at the end.
func (c *conv) finished(e *spec.AddonEvent) {
	c.begin(c.payloadTime(e.CreatedAt))
	c.transcript(e.Messages)
	end := c.payloadTime(e.EndedAt)
	c.when = end
	c.setAgent(operatorAgent(e.OperatorCurrent), true)
	if e.HasRating() {
		c.rating(e, end)
	}
	dur := time.Duration(-1)
	if d, err := spec.ParseDuration(string(e.Duration)); err == nil {
		dur = d
	} else if e.EndedAt != "" && e.CreatedAt != "" {
		if start := c.payloadTime(e.CreatedAt); !end.Before(start) {
			dur = end.Sub(start)
		}
	}
	c.end(end, dur, c.lateRatingTexts())
}

// transcript emits the messages of a finished session that no live event
// delivered already. Seen counts each occurrence, so a contact who wrote
// "yes" twice gets two messages, but one already seen live is not
// doubled. An operator's line carries the operator its person names
// (else the current one); a contact's line the operator of the last
// operator's line before it, else the one who took the chat: in a
// forwarded chat, what the contact said before the forward went to the
// first operator.
func (c *conv) transcript(msgs []spec.AddonMessage) {
	if len(msgs) == 0 {
		return
	}
	seen := make(map[uint64]int, len(c.st.Seen))
	for _, h := range c.st.Seen {
		seen[h]++
	}
	current := c.agent
	addressed := c.startAgent
	if addressed.IsZero() {
		addressed = current
	}
	inTranscript := make(map[uint64]int, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		body := string(m.Message)
		if blank(body) {
			continue
		}
		from := m.FromContact()
		if !from {
			author, ok := c.lineAuthor(string(m.Person))
			if !ok {
				author = current
			}
			addressed = author
		}
		h := messageHash(c.obs.ConversationID, from, body)
		inTranscript[h]++
		if inTranscript[h] <= seen[h] {
			continue
		}
		c.agent = addressed
		c.message(slotMessage+strconv.Itoa(i), from, body, "", c.payloadTime(m.SentAt))
	}
	c.agent = current
}

// rating keeps what a rating, feedback or survey callback (or a finished
// session's rate, feedback_message, post_survey_option) tells, and emits
// the opt-in Conversation Rated once per conversation: at the first
// callback that carries the rating itself, with the feedback and survey
// answer known by then. Texts that come later are carried by
// Conversation Ended where it is still to come (lateRatingTexts); a
// rating told again (a finished session repeats it) or changed adds no
// second Rated, so counts and averages count each conversation once.
//
// Why not wait for the session's end: Userlike sends rating, feedback and
// survey after the session ended (the survey only once the conversation
// was set to ended), and the newer format has no finished-session
// callback that would close them, so waiting could hold a rating back
// for ever.
func (c *conv) rating(e *spec.AddonEvent, ts time.Time) {
	r := c.st.Rating
	if v := e.RateValue(); v != "" {
		r.Rate = v
	}
	if fb, ok := c.body(e.FeedbackText()); ok {
		r.Feedback = fb
	}
	if s := string(e.PostSurveyOption); s != "" {
		r.Survey = s
	}
	emit := !c.st.Rated && r.Rate != ""
	if emit {
		r.SentFeedback, r.SentSurvey = r.Feedback, r.Survey
	}
	if r != c.st.Rating {
		c.st.Rating, c.changed = r, true
	}
	if !emit {
		return
	}
	c.st.Rated, c.changed = true, true
	props := map[string]any{}
	if n, err := strconv.ParseFloat(r.Rate, 64); err == nil && !math.IsInf(n, 0) && !math.IsNaN(n) {
		props[PropRating] = n
	} else {
		props[PropRating] = r.Rate
	}
	if r.Feedback != "" {
		props[PropFeedback] = r.Feedback
	}
	if r.Survey != "" {
		props[PropSurveyOption] = r.Survey
	}
	c.extended(spec.EventConversationRated, ts, props)
}

// lateRatingTexts are the feedback and survey answer that Conversation
// Rated did not carry (it was emitted before them, or there is no rating),
// for Conversation Ended, when Conversation Rated is enabled.
func (c *conv) lateRatingTexts() map[string]any {
	if !c.m.c.enabled[spec.EventConversationRated] {
		return nil
	}
	r := &c.st.Rating
	props := map[string]any{}
	if r.Feedback != "" && r.Feedback != r.SentFeedback {
		props[PropFeedback] = r.Feedback
	}
	if r.Survey != "" && r.Survey != r.SentSurvey {
		props[PropSurveyOption] = r.Survey
	}
	return props
}
