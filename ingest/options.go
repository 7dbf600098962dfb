// Package ingest is chattap's HTTP side: the chi routes of every tap, token
// checks, body limits, transparent proxying to the configured upstreams,
// decoding Userlike envelopes into Observations, and publishing them to
// JetStream. It also serves /healthz, /readyz, /metrics and /admin.
package ingest

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Options configure the taps. The env tags are read by cmd/chattap.
type Options struct {
	BotWebhookURL      string        `env:"CHATTAP_BOT_WEBHOOK_URL" secret:"url" help:"the bot server's webhook URL; empty: chattap answers webhooks itself with {}"`
	WebhookToken       string        `env:"CHATTAP_WEBHOOK_TOKEN" secret:"true" help:"expected SECURITY-TOKEN header on webhooks from Userlike"`
	UserlikeAPIURL     string        `env:"CHATTAP_USERLIKE_API_URL" secret:"url" help:"the Userlike API URL that /userlike/api forwards to"`
	UserlikeAPIToken   string        `env:"CHATTAP_USERLIKE_API_TOKEN" secret:"true" help:"expected SECURITY-TOKEN header on your bot's calls to /userlike/api (the chatbot's own token, which Userlike also checks)"`
	ChannelOutboundURL string        `env:"CHATTAP_CHANNEL_OUTBOUND_URL" secret:"url" help:"your channel server's endpoint that /userlike/channel/outbound forwards to"`
	ChannelOutboundTok string        `env:"CHATTAP_CHANNEL_OUTBOUND_TOKEN" secret:"true" help:"expected API-SECURITY-TOKEN on outbound calls from Userlike"`
	ChannelInboundURL  string        `env:"CHATTAP_CHANNEL_INBOUND_URL" secret:"url" help:"the Userlike Inbound URL that /userlike/channel/inbound forwards to"`
	ChannelInboundTok  string        `env:"CHATTAP_CHANNEL_INBOUND_TOKEN" secret:"true" help:"expected API-SECURITY-TOKEN header on your channel server's inbound calls to /userlike/channel/inbound (the inbound auth token, which Userlike also checks)"`
	AddonToken         string        `env:"CHATTAP_ADDON_TOKEN" secret:"true" help:"expected token on add-on callbacks (token query parameter or X-Chattap-Token header)"`
	AdminToken         string        `env:"CHATTAP_ADMIN_TOKEN" secret:"true" help:"bearer token for /admin/* and /debugger; empty: those are off"`
	MaxBodyBytes       int64         `env:"CHATTAP_MAX_BODY_BYTES" envDefault:"1048576" help:"largest request body a tap accepts (413 beyond); also the largest reply recorded"`
	UpstreamTimeout    time.Duration `env:"CHATTAP_UPSTREAM_TIMEOUT" envDefault:"30s" help:"how long a tap waits for its upstream's whole answer, headers and body (502 beyond, or the answer cut off once it has begun)"`
	TapAck             string        `env:"CHATTAP_TAP_ACK" envDefault:"async" help:"async: record in the background; sync: the proxied answer waits until JetStream stored the exchange's record, at most CHATTAP_TAP_ACK_TIMEOUT"`
	TapAckTimeout      time.Duration `env:"CHATTAP_TAP_ACK_TIMEOUT" envDefault:"500ms" help:"in sync mode, how long an exchange waits for JetStream to store its record before it is answered anyway (the miss is counted and logged with the exchange id)"`
	AddonAckTimeout    time.Duration `env:"CHATTAP_ADDON_ACK_TIMEOUT" envDefault:"5s" help:"how long /userlike/addon waits for JetStream before answering 503"`
	PublishBuffer      int           `env:"CHATTAP_PUBLISH_BUFFER" envDefault:"100000" help:"records (one per exchange) held in memory while the broker is slow or away; past it new ones are dropped and counted"`
	PublishWindow      int           `env:"CHATTAP_PUBLISH_WINDOW" envDefault:"4096" help:"records published asynchronously and awaiting JetStream's ack at once"`
}

// Ack modes of CHATTAP_TAP_ACK.
const (
	AckAsync = "async"
	AckSync  = "sync"
)

// Validate reports every invalid option at once, each with its variable.
func (o *Options) Validate() error {
	var errs []error
	for _, u := range []struct{ env, val string }{
		{"CHATTAP_BOT_WEBHOOK_URL", o.BotWebhookURL},
		{"CHATTAP_USERLIKE_API_URL", o.UserlikeAPIURL},
		{"CHATTAP_CHANNEL_OUTBOUND_URL", o.ChannelOutboundURL},
		{"CHATTAP_CHANNEL_INBOUND_URL", o.ChannelInboundURL},
	} {
		if u.val == "" {
			continue
		}
		parsed, err := url.Parse(u.val)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			errs = append(errs, fmt.Errorf("%s: %q is not an http(s) URL with a host", u.env, RedactURL(u.val)))
		}
	}
	if o.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_MAX_BODY_BYTES: must be positive, is %d", o.MaxBodyBytes))
	}
	if o.UpstreamTimeout <= 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_UPSTREAM_TIMEOUT: must be positive, is %s", o.UpstreamTimeout))
	}
	if o.TapAck != AckAsync && o.TapAck != AckSync {
		errs = append(errs, fmt.Errorf("CHATTAP_TAP_ACK: must be %q or %q, is %q", AckAsync, AckSync, o.TapAck))
	}
	if o.TapAckTimeout <= 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_TAP_ACK_TIMEOUT: must be positive, is %s", o.TapAckTimeout))
	}
	if o.AddonAckTimeout <= 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_ADDON_ACK_TIMEOUT: must be positive, is %s", o.AddonAckTimeout))
	}
	if o.PublishBuffer <= 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_PUBLISH_BUFFER: must be positive, is %d", o.PublishBuffer))
	}
	if o.PublishWindow <= 0 {
		errs = append(errs, fmt.Errorf("CHATTAP_PUBLISH_WINDOW: must be positive, is %d", o.PublishWindow))
	}
	return errors.Join(errs...)
}

// redactURL drops the user info and query of a URL, which may hold a
// secret, before it is written anywhere.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}
