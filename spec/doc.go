// Package spec is the domain of chattap: the Record of one exchange that
// the taps publish on CHATTAP_RAW and the Observations (one per event) it
// is read as, the Segment message that every sink receives, the Live Chat event
// names and property keys, the names of streams, subjects and buckets, the
// tolerant readers of Userlike's wire formats, and the JSON Schemas of what
// chattap publishes.
//
// spec imports only the standard library and nothing of chattap's own, so
// every other package can depend on it and it can depend on none of them.
package spec
