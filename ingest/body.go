package ingest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// errTooLarge is a body past the limit.
var errTooLarge = errors.New("body too large")

// readBody reads the whole request body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errTooLarge
	}
	size := r.ContentLength
	if size < 0 {
		size = 512
	}
	buf := make([]byte, 0, size+1)
	body := http.MaxBytesReader(w, r.Body, limit)
	for {
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, errTooLarge
			}
			return nil, fmt.Errorf("read body: %w", err)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

// answerBodyError answers a body that could not be read.
func answerBodyError(w http.ResponseWriter, err error, limit int64) int {
	if errors.Is(err, errTooLarge) {
		encodeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit))
		return http.StatusRequestEntityTooLarge
	}
	encodeError(w, http.StatusBadRequest, err.Error())
	return http.StatusBadRequest
}
