package sinks

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
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

// PermanentError is a failure that retrying cannot fix: a 400 or other
// 4xx, an oversize or invalid message. The Runner dead-letters the event.
type PermanentError struct{ Err error }

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
// HTTP sink uses: 2xx is nil; 408, 429 and 5xx are retryable, honouring
// the Retry-After header; anything else (400, other 4xx, an unfollowed
// 3xx) is permanent.
func ClassifyStatus(code int, h http.Header, body string) error {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return Retryable(&StatusError{Code: code, Body: body}, ParseRetryAfter(h.Get("Retry-After"), time.Now()))
	default:
		return Permanent(&StatusError{Code: code, Body: body})
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
// "http_503", "network", "invalid", "too_big", "closed", "other".
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
	}
	return "other"
}

var errNetwork = errors.New("network")

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
