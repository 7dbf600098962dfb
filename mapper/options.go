package mapper

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	// A sidecar often runs in a container without /usr/share/zoneinfo;
	// CHATTAP_TIMEZONE must still resolve there.
	_ "time/tzdata"

	"github.com/chattap/chattap/spec"
)

// Options configure the mapping. The env tags are read by cmd/chattap with
// caarlos0/env; a zero Options means every default.
type Options struct {
	BotAgentID       string `env:"CHATTAP_BOT_AGENT_ID" envDefault:"bot" help:"agent_id of the chatbot on Live Chat events of the Chatbot API flows"`
	BotAgentName     string `env:"CHATTAP_BOT_AGENT_NAME" envDefault:"Chatbot" help:"agent_name of the chatbot on Live Chat events of the Chatbot API flows"`
	BotAgentUsername string `env:"CHATTAP_BOT_AGENT_USERNAME" envDefault:"" help:"agent_username of the chatbot on Live Chat events of the Chatbot API flows; empty: none"`
	MessageBody      string `env:"CHATTAP_MESSAGE_BODY" envDefault:"keep" help:"keep: message_body carries the text; drop: message bodies and feedback texts never leave chattap"`
	Events           string `env:"CHATTAP_EVENTS" envDefault:"started,sent,received,ended" help:"comma list of the Live Chat events to emit: started, sent, received, ended; none emits none of them"`
	ExtendedEvents   string `env:"CHATTAP_EXTENDED_EVENTS" envDefault:"" help:"comma list of opt-in events beyond the spec: forwarded, option_selected, rated"`
	UserIDField      string `env:"CHATTAP_USER_ID_FIELD" envDefault:"external_customer_id" help:"contact field whose value becomes the Segment userId; - never sets a userId"`
	Timezone         string `env:"CHATTAP_TIMEZONE" envDefault:"UTC" help:"IANA zone in which zone-less payload times (2014-12-29 11:26:24) are read"`

	// Version is chattap's version, written in context.library.version.
	Version string `env:"-"`
	// ChannelFields are the Custom Channel field paths, shared with ingest
	// so both read a channel message alike; zero: spec.DefaultChannelFields.
	ChannelFields spec.ChannelFields `env:"-"`
}

// Message-body policies of CHATTAP_MESSAGE_BODY.
const (
	BodyKeep = "keep"
	BodyDrop = "drop"
)

// NoUserID as CHATTAP_USER_ID_FIELD turns userId off: only anonymousId.
const NoUserID = "-"

// The option words of CHATTAP_EVENTS and CHATTAP_EXTENDED_EVENTS, and the
// event each stands for.
var (
	eventWords = map[string]string{
		"started":  spec.EventConversationStarted,
		"sent":     spec.EventMessageSent,
		"received": spec.EventMessageReceived,
		"ended":    spec.EventConversationEnded,
	}
	extendedWords = map[string]string{
		"forwarded":       spec.EventConversationForwarded,
		"option_selected": spec.EventOptionSelected,
		"rated":           spec.EventConversationRated,
	}
)

// withDefaults fills what a zero Options leaves empty, so that an Options
// built in code means the same as the env defaults.
func (o Options) withDefaults() Options {
	if o.BotAgentID == "" {
		o.BotAgentID = "bot"
	}
	if o.BotAgentName == "" {
		o.BotAgentName = "Chatbot"
	}
	if o.MessageBody == "" {
		o.MessageBody = BodyKeep
	}
	if o.Events == "" {
		o.Events = "started,sent,received,ended"
	}
	if o.UserIDField == "" {
		o.UserIDField = "external_customer_id"
	}
	if o.Timezone == "" {
		o.Timezone = "UTC"
	}
	return o
}

// Validate reports every invalid option at once, each with its variable's
// name. Empty values stand for their defaults.
func (o Options) Validate() error {
	_, err := o.compile()
	return err
}

// compiled is Options in the form Map reads on its hot path.
type compiled struct {
	Options
	loc      *time.Location
	keepBody bool
	enabled  map[string]bool
	library  spec.Library
}

func (o Options) compile() (compiled, error) {
	o = o.withDefaults()
	c := compiled{Options: o, enabled: map[string]bool{}, library: spec.Library{Name: spec.LibraryName, Version: o.Version}}
	var errs []error
	switch o.MessageBody {
	case BodyKeep:
		c.keepBody = true
	case BodyDrop:
	default:
		errs = append(errs, fmt.Errorf("CHATTAP_MESSAGE_BODY: %q is neither %s nor %s", o.MessageBody, BodyKeep, BodyDrop))
	}
	if err := parseEventList(o.Events, eventWords, c.enabled); err != nil {
		errs = append(errs, fmt.Errorf("CHATTAP_EVENTS: %w", err))
	}
	if err := parseEventList(o.ExtendedEvents, extendedWords, c.enabled); err != nil {
		errs = append(errs, fmt.Errorf("CHATTAP_EXTENDED_EVENTS: %w", err))
	}
	if !validField(o.UserIDField) {
		errs = append(errs, fmt.Errorf("CHATTAP_USER_ID_FIELD: %q is not a field name (letters, digits, _ and dots) or %s", o.UserIDField, NoUserID))
	}
	loc, err := time.LoadLocation(o.Timezone)
	if err != nil {
		errs = append(errs, fmt.Errorf("CHATTAP_TIMEZONE: %q is not an IANA zone: %w", o.Timezone, err))
	}
	c.loc = loc
	if len(errs) > 0 {
		return compiled{}, errors.Join(errs...)
	}
	return c, nil
}

// parseEventList reads a comma list of option words into enabled; the
// full event names are accepted too, since that is what a user sees in
// Segment's debugger.
func parseEventList(list string, words map[string]string, enabled map[string]bool) error {
	if strings.TrimSpace(list) == "none" {
		return nil
	}
	var unknown []string
	for w := range strings.SplitSeq(list, ",") {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		key := strings.ReplaceAll(strings.ToLower(w), "-", "_")
		if ev, ok := words[key]; ok {
			enabled[ev] = true
			continue
		}
		found := false
		for _, ev := range words {
			if strings.EqualFold(ev, w) {
				enabled[ev], found = true, true
			}
		}
		if !found {
			unknown = append(unknown, fmt.Sprintf("%q", w))
		}
	}
	if len(unknown) > 0 {
		known := make([]string, 0, len(words))
		for k := range words {
			known = append(known, k)
		}
		slices.Sort(known)
		return fmt.Errorf("unknown %s (known: %s)", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return nil
}

func validField(f string) bool {
	if f == NoUserID {
		return true
	}
	if f == "" || len(f) > 128 || f[0] == '.' || f[len(f)-1] == '.' {
		return false
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '_' && c != '.' && c != '-' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
