package ingest

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/chattap/chattap/spec"
)

// addonRetryAfter is what a 503 on /userlike/addon asks Userlike to wait.
const addonRetryAfter = 5

// handleAddon is the terminal add-on callback: nothing is proxied, so the
// answer can say whether the event was stored. 200 only once JetStream
// acknowledged the Observation; 503 with Retry-After when it could not,
// so that Userlike tries again; 400 for a body that is not a JSON object;
// 413 for one the broker cannot take in one message.
func handleAddon(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := serveAddon(s, w, r)
		s.Metrics.Request(RouteAddon, status)
	})
}

func serveAddon(s *Server, w http.ResponseWriter, r *http.Request) int {
	limit := s.Options.MaxBodyBytes
	body, err := readBody(w, r, limit)
	if err != nil {
		return answerBodyError(w, err, limit)
	}
	ex := exchange{id: s.NewID(), received: s.Now().UTC(), fields: s.ChannelFields}
	obs, err := ex.decodeAddon(body)
	if err != nil {
		s.Metrics.Undecodable(RouteAddon)
		encodeError(w, http.StatusBadRequest, "add-on callback is not a JSON object: "+err.Error())
		return http.StatusBadRequest
	}
	rec := spec.NewRecord(ex.id, ex.received, http.StatusOK, []*spec.Observation{obs})
	ctx, cancel := context.WithTimeout(r.Context(), s.Options.AddonAckTimeout)
	defer cancel()
	err = s.Publisher.Publish(ctx, rec)
	if errors.Is(err, ErrTooLarge) {
		encodeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return http.StatusRequestEntityTooLarge
	}
	if err != nil {
		s.Log.Warn("add-on callback not stored; asking Userlike to retry", "exchange", rec.ID, "kind", obs.Kind, "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(addonRetryAfter))
		encodeError(w, http.StatusServiceUnavailable, "event could not be stored; retry later")
		return http.StatusServiceUnavailable
	}
	encode(w, http.StatusOK, struct {
		ID string `json:"id"`
	}{rec.ID})
	return http.StatusOK
}
