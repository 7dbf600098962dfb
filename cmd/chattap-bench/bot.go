package main

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// botHandler is the fake chatbot server: it reads the webhook and answers
// 200 with the workload's reply for it (1 to 10 events).
func botHandler(w *workload) http.Handler {
	bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		buf := bufs.Get().(*bytes.Buffer)
		defer bufs.Put(buf)
		buf.Reset()
		if _, err := buf.ReadFrom(r.Body); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		rep := w.replyFor(buf.Bytes())
		h := rw.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(rep.body))}
		rw.WriteHeader(http.StatusOK)
		_, _ = rw.Write(rep.body)
	})
}

// discard drains and closes a response body so its connection is reused.
func discard(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
}
