package mapper

import (
	"time"
)

// Property keys of the opt-in extended events, beyond the Live Chat spec.
const (
	// Conversation Forwarded: forward_type is group (the bot's
	// forward_group), any (forward_any), abort (the bot gave up) or
	// operator (an add-on forward), with the group where one is named.
	PropForwardType = "forward_type"
	PropGroupID     = "group_id"
	PropGroupName   = "group_name"
	// Option Selected: the one-based index, label and value of the option
	// the contact clicked, as far as the payload and the bot's last
	// bubbles or carousel tell.
	PropOptionIndex = "option_index"
	PropOptionLabel = "option_label"
	PropOptionValue = "option_value"
	// Conversation Rated: the rating (a number where it is one), the
	// contact's feedback text (dropped with CHATTAP_MESSAGE_BODY=drop) and
	// the post-chat survey option.
	PropRating       = "rating"
	PropFeedback     = "feedback_message"
	PropSurveyOption = "survey_option"
)

const (
	forwardToGroup    = "group"
	forwardToAnyone   = "any"
	forwardAfterAbort = "abort"
	forwardByOperator = "operator"
	// optionLabelJoinSep joins a carousel's titles into the message_body
	// of a carousel without text of its own.
	optionLabelJoinSep = " | "
)

// extended emits one of the opt-in events beyond the spec, after Started.
func (c *conv) extended(event string, ts time.Time, props map[string]any) {
	if !c.m.c.enabled[event] {
		return
	}
	c.begin(ts)
	c.track(event, c.messageID(slotExtended), ts, props)
}
