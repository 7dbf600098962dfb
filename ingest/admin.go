package ingest

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// handleGetSettings answers the settings in force.
func handleGetSettings(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, s.Settings.Current())
	})
}

// handlePutSettings changes the settings for every process of the
// deployment. Fields left out keep their value.
func handlePutSettings(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(w, r, 64<<10)
		if err != nil {
			answerBodyError(w, err, 64<<10)
			return
		}
		next := s.Settings.Current()
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&next); err != nil {
			encodeError(w, http.StatusBadRequest, "settings: "+err.Error())
			return
		}
		if err := s.Settings.Put(r.Context(), next); err != nil {
			encodeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		s.Log.Info("settings changed", "record_live_chat_events", next.RecordLiveChatEvents)
		encode(w, http.StatusOK, next)
	})
}
