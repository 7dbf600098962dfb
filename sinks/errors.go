package sinks

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chattap/chattap/spec"
)

// ErrClosed is reported for a Delivery handed to a sink that is closed or
// closing before its outcome was known. It is retryable: the event is
// redelivered later.
var ErrClosed = errors.New("sink closed")

// ErrMessageTooBig is wrapped (as permanent) for an event over
// spec.MaxMessageBytes.
var ErrMessageTooBig = errors.New("message too big")

// RetryableError is a failure that may not happen again: a network error,
// a 5xx, 408 or 429. The Runner NAKs the event with a growing delay, at
// least RetryAfter.
type RetryableError struct {
	Err error
	// RetryAfter is what the destination asked for (Retry-After); zero if
	// it did not say.
	RetryAfter time.Duration
}

func (e *RetryableError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%v (retry after %v)", e.Err, e.RetryAfter)
	}
	return e.Err.Error()
}

func (e *RetryableError) Unwrap() error { return e.Err }

// Retryable marks err as retryable after at least after (zero: no wish).
// A nil err stays nil.
func Retryable(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryableError{Err: err, RetryAfter: after}
}

// PermanentError is a failure that retrying cannot fix: a 400 or another
// 4xx that is not a misconfiguration, an oversize or invalid message. The
// Runner dead-letters the event.
type PermanentError struct {
	Err error
	// PerEvent says the refusal may be about one event of a batch rather
	// than the whole request (400, 413, 422): the batch is split to find
	// it. Any other permanent refusal applies to every event it carried.
	PerEvent bool
}

func (e *PermanentError) Error() string { return e.Err.Error() }

func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent. A nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err wraps a *PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// MisconfiguredError is a destination refusing chattap itself, not an
// event: 401, 403 or 404 say the write key, token or URL is wrong, and
// every event would fail alike until the operator fixes it. It is not
// the events' fault, so the Runner never dead-letters for it (however
// many deliveries it took): it retries with the longest backoff, logs it
// at error level and reports it through Runner.Health.
type MisconfiguredError struct{ Err error }

func (e *MisconfiguredError) Error() string { return e.Err.Error() }

func (e *MisconfiguredError) Unwrap() error { return e.Err }

// IsMisconfigured reports whether err wraps a *MisconfiguredError.
func IsMisconfigured(err error) bool {
	var m *MisconfiguredError
	return errors.As(err, &m)
}

// splitsBatch reports whether a refused batch should be split to find the
// events that caused err.
func splitsBatch(err error) bool {
	var p *PermanentError
	return errors.As(err, &p) && p.PerEvent
}

// RetryAfterOf is the delay a failure asked for, zero if none.
func RetryAfterOf(err error) time.Duration {
	var r *RetryableError
	if errors.As(err, &r) {
		return r.RetryAfter
	}
	return 0
}

// StatusError is a destination's non-2xx answer.
type StatusError struct {
	Code int
	// Body is the start of the answer's body, for the DLQ reason.
	Body string
}

func (e *StatusError) Error() string {
	if e.Body != "" {
		return fmt.Sprintf("destination answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
	}
	return fmt.Sprintf("destination answered %d %s", e.Code, http.StatusText(e.Code))
}

// ClassifyStatus is the one table from HTTP status to outcome that every
// HTTP sink uses, and so the one place that decides retrying, splitting
// and dead-lettering:
//
//	2xx            nil: delivered
//	408, 429, 5xx  retryable, honouring Retry-After
//	401, 403, 404  misconfigured: the key or URL is wrong; retried with the
//	               longest backoff, never dead-lettered, reported by Health
//	400, 413, 422  permanent, per event: the batch is split to find the
//	               events refused, and those are dead-lettered
//	anything else  permanent for the whole request (405, 410, an
//	               unfollowed 3xx, …): dead-lettered without splitting
func ClassifyStatus(code int, h http.Header, body string) error {
	se := &StatusError{Code: code, Body: body}
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests:
		return Retryable(se, ParseRetryAfter(h.Get("Retry-After"), time.Now()))
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return &MisconfiguredError{Err: se}
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return &PermanentError{Err: se, PerEvent: true}
	}
	switch {
	case code >= 200 && code < 300:
		return nil
	case code >= 500:
		return Retryable(se, ParseRetryAfter(h.Get("Retry-After"), time.Now()))
	default:
		return Permanent(se)
	}
}

// ParseRetryAfter reads a Retry-After value, delay-seconds or an HTTP date,
// relative to now; anything else is zero.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// failureClass names a failure for metrics and logs with few values:
// "http_503", "network", "write", "timeout", "invalid", "too_big",
// "closed", "other".
func failureClass(err error) string {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return "http_" + strconv.Itoa(se.Code)
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, ErrMessageTooBig):
		return "too_big"
	case errors.Is(err, spec.ErrInvalidMessage):
		return "invalid"
	case errors.Is(err, errNetwork):
		return "network"
	case errors.Is(err, errWrite):
		return "write"
	case errors.Is(err, errNoOutcome):
		return "timeout"
	}
	return "other"
}

var (
	errNetwork = errors.New("network")
	// errWrite is a failed write of the file sink (a full disk, a closed
	// pipe): retryable, and counted apart.
	errWrite = errors.New("write")
	// errNoOutcome is a delivery whose sink never called back in time.
	errNoOutcome = errors.New("no outcome from the sink")
)

// networkError marks a failed request as retryable, without the request's
// URL: a webhook URL may hold a token, and errors end up in logs and the
// DLQ.
func networkError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = fmt.Errorf("%s request: %w", ue.Op, ue.Err)
	}
	return Retryable(fmt.Errorf("%w: %w", errNetwork, err), 0)
}

// redactSecrets replaces every secret found in s, the start of a
// destination's answer that goes into logs and dead letters: a destination
// that echoes what it was sent ("invalid key …") must not put a credential
// there. Secrets shorter than 4 bytes are left alone; replacing them would
// mangle ordinary words and they protect nothing.
func redactSecrets(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "(redacted)")
		}
	}
	return s
}

// credentialsOf lists what in a sink's URL and headers may be secret: the
// URL's user, password and query values, each header value and its last
// word ("Bearer <token>"), and for "Basic <base64>" the decoded user and
// password too: a destination that refuses a key echoes it decoded.
func credentialsOf(rawURL string, h http.Header) []string {
	var out []string
	if u, err := url.Parse(rawURL); err == nil {
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
		if u.User != nil {
			out = append(out, u.User.Username())
		}
		for _, vs := range u.Query() {
			out = append(out, vs...)
		}
	}
	for _, vs := range h {
		for _, v := range vs {
			out = append(out, v)
			f := strings.Fields(v)
			if len(f) > 1 {
				out = append(out, f[len(f)-1])
			}
			if len(f) == 2 && strings.EqualFold(f[0], "Basic") {
				out = append(out, basicCredentials(f[1])...)
			}
		}
	}
	return out
}

// basicCredentials decodes the credentials of an Authorization: Basic
// header: user and password apart, and both as sent ("user:password").
// What does not decode yields nothing; its encoded form is listed anyway.
func basicCredentials(encoded string) []string {
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(encoded); err == nil {
			break
		}
	}
	if err != nil {
		return nil
	}
	user, pass, _ := strings.Cut(string(raw), ":")
	return []string{string(raw), user, pass}
}
