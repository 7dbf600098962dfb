package sinks

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// destinationSettings names, per sink, the variables that point it at its
// destination: what an operator checks when it refuses chattap.
var destinationSettings = map[string]string{
	"segment": "CHATTAP_SEGMENT_WRITE_KEY and CHATTAP_SEGMENT_ENDPOINT",
	"webhook": "CHATTAP_WEBHOOK_SINK_URL and CHATTAP_WEBHOOK_SINK_HEADERS",
}

// misconfiguration is what a worker remembers of its destination's last
// refusal of chattap itself: the status only, never the answer's body,
// which may echo a credential.
type misconfiguration struct{ code int }

func (m misconfiguration) err(sink string) error {
	hint := destinationSettings[sink]
	if hint == "" {
		hint = "its settings"
	}
	return fmt.Errorf("sink %s: the destination refuses chattap (%d %s): check %s; its events wait and are retried, none is dead-lettered for it",
		sink, m.code, http.StatusText(m.code), hint)
}

// misconfigured records that the destination refused chattap itself and
// logs it at error level once per episode (not once per event).
func (w *worker) misconfigured(err error) {
	code := 0
	var se *StatusError
	if errors.As(err, &se) {
		code = se.Code
	}
	m := &misconfiguration{code: code}
	if old := w.misconf.Swap(m); old == nil || old.code != code {
		w.log.Error("destination misconfigured: it refuses chattap's credentials or URL; events are kept and retried with the longest backoff",
			"status", code, "check", destinationSettings[w.name])
	}
}

// accepted clears a misconfiguration once the destination takes an event.
func (w *worker) accepted() {
	if w.misconf.Load() != nil && w.misconf.Swap(nil) != nil {
		w.log.Info("destination accepts events again")
	}
}

// Health is nil while every sink's destination takes chattap's requests;
// otherwise it names each sink whose destination refuses chattap itself
// (401, 403, 404: see ClassifyStatus) and the variables to check, and each
// sink that is behind (see lag). It never holds a credential. It does not
// block and is safe for concurrent use.
func (r *Runner) Health() error {
	r.mu.Lock()
	workers := r.workers
	r.mu.Unlock()
	var errs []error
	now := time.Now()
	for _, w := range workers {
		if m := w.misconf.Load(); m != nil {
			errs = append(errs, m.err(w.name))
		} else if err := w.lag(now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lag is non-nil while the sink is behind: its deliveries fail (down,
// 5xx, 429, timeouts: anything retryable) and it has delivered nothing
// for longer than LagWarning. The failure must be recent too, within a
// backoff maximum and LagWarning, so that events another replica took
// over do not keep this one degraded for ever. It names the sink and its
// lag: the events waiting for a retry here, and how long ago the oldest
// first failed.
func (w *worker) lag(now time.Time) error {
	o := w.r.o
	accept, failure := time.Unix(0, w.lastAccept.Load()), time.Unix(0, w.lastFailure.Load())
	if w.lastFailure.Load() == 0 || !failure.After(accept) || now.Sub(accept) < o.LagWarning || now.Sub(failure) > o.BackoffMax+o.LagWarning {
		return nil
	}
	n, oldest := w.failures.backlog()
	msg := fmt.Sprintf("sink %s is behind: nothing delivered for %s while deliveries fail; %d events waiting for a retry",
		w.name, now.Sub(accept).Round(time.Second), n)
	if !oldest.IsZero() {
		msg += fmt.Sprintf(", the oldest failing for %s", now.Sub(oldest).Round(time.Second))
	}
	return errors.New(msg)
}
