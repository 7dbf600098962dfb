package mapper

import "net/http"

// refusedUpstream reports whether the exchange's upstream refused the
// caller for who it is (401, 403): Userlike, the bot or the channel server
// did not recognise the sender. Whoever can reach chattap can send such a
// request with any userId and email in it, so it must never become an
// identify or a Live Chat event, or anyone could forge or merge customer
// profiles. The Observation stays on CHATTAP_RAW, for the record. Other
// non-2xx answers keep their own rules (the contact's side of a 5xx is
// still a message the contact wrote).
func refusedUpstream(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}
