package sinks

import (
	"errors"
	"fmt"
	"net/http"
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
// (401, 403, 404: see ClassifyStatus) and the variables to check. It never
// holds a credential. It does not block and is safe for concurrent use.
func (r *Runner) Health() error {
	r.mu.Lock()
	workers := r.workers
	r.mu.Unlock()
	var errs []error
	for _, w := range workers {
		if m := w.misconf.Load(); m != nil {
			errs = append(errs, m.err(w.name))
		}
	}
	return errors.Join(errs...)
}
