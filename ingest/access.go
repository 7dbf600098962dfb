package ingest

// RouteAccess is how one route that records is guarded.
type RouteAccess struct {
	Route string
	// TokenEnv is the variable that holds the route's token.
	TokenEnv string
	// Carrier says where the sender puts the token, for messages.
	Carrier string
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
		route, upstream, tokenEnv, token, carrier string
		always                                    bool
	}{
		{RouteWebhook, o.BotWebhookURL, "CHATTAP_WEBHOOK_TOKEN", o.WebhookToken, "the SECURITY-TOKEN custom header of your chatbot in Userlike", true},
		{RouteAPI, o.UserlikeAPIURL, "CHATTAP_USERLIKE_API_TOKEN", o.UserlikeAPIToken, "the SECURITY-TOKEN header your bot sends to the API URL", false},
		{RouteChannelOutbound, o.ChannelOutboundURL, "CHATTAP_CHANNEL_OUTBOUND_TOKEN", o.ChannelOutboundTok, "the API-SECURITY-TOKEN header: the Custom Channel's outbound auth token", false},
		{RouteChannelInbound, o.ChannelInboundURL, "CHATTAP_CHANNEL_INBOUND_TOKEN", o.ChannelInboundTok, "the API-SECURITY-TOKEN header: the Custom Channel's inbound auth token", false},
		{RouteAddon, "", "CHATTAP_ADDON_TOKEN", o.AddonToken, "?token= in the add-on's callback URL, or an X-Chattap-Token header", true},
	} {
		if r.always || r.upstream != "" {
			out = append(out, RouteAccess{Route: r.route, TokenEnv: r.tokenEnv, Carrier: r.carrier, Protected: r.token != ""})
		}
	}
	return out
}
