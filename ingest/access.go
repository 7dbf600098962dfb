package ingest

// RouteAccess is how one route that records is guarded.
type RouteAccess struct {
	Route string
	// TokenEnv is the variable that holds the route's token.
	TokenEnv string
	// Protected says a token is set: a request without it gets 403.
	Protected bool
}

// RecordingRoutes lists every route that records what it is sent, as o
// configures them, with the token each one checks. A proxied route with no
// upstream answers 404 and records nothing, so it is left out; the
// webhook records even without a bot (chattap answers {} itself), and so
// does the add-on callback.
func (o Options) RecordingRoutes() []RouteAccess {
	var out []RouteAccess
	for _, r := range []struct {
		route, upstream, tokenEnv, token string
		always                           bool
	}{
		{RouteWebhook, o.BotWebhookURL, "CHATTAP_WEBHOOK_TOKEN", o.WebhookToken, true},
		{RouteAPI, o.UserlikeAPIURL, "CHATTAP_USERLIKE_API_TOKEN", o.UserlikeAPIToken, false},
		{RouteChannelOutbound, o.ChannelOutboundURL, "CHATTAP_CHANNEL_OUTBOUND_TOKEN", o.ChannelOutboundTok, false},
		{RouteChannelInbound, o.ChannelInboundURL, "CHATTAP_CHANNEL_INBOUND_TOKEN", o.ChannelInboundTok, false},
		{RouteAddon, "", "CHATTAP_ADDON_TOKEN", o.AddonToken, true},
	} {
		if r.always || r.upstream != "" {
			out = append(out, RouteAccess{Route: r.route, TokenEnv: r.tokenEnv, Protected: r.token != ""})
		}
	}
	return out
}
