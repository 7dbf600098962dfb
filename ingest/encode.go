package ingest

import (
	"encoding/json"
	"net/http"
)

// encode writes v as JSON with status. Content-Type goes before WriteHeader.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errorBody is every error answer chattap gives itself.
type errorBody struct {
	Error string `json:"error"`
}

func encodeError(w http.ResponseWriter, status int, msg string) {
	encode(w, status, errorBody{Error: msg})
}
