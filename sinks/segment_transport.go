package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// segmentTransport sits between analytics-go and the network. It sends
// each batch itself, splits a refused batch to find the events the endpoint
// refuses, records every event's failure through record, and always
// answers analytics-go with a 200: analytics-go v3.3.0 has no MaxRetries
// and would otherwise retry every status ≥ 300 ten times, ignoring
// Retry-After. Each event then reaches the Success callback, which settles
// it with the recorded failure, if any.
type segmentTransport struct {
	base    http.RoundTripper
	timeout time.Duration
	record  func(id string, err error)
	// capOf is the isolationCap of the event with this messageId.
	capOf func(id string) int
}

func (t *segmentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("segment sink: read batch: %w", err)
	}
	var env map[string]json.RawMessage
	var batch struct {
		Batch []json.RawMessage `json:"batch"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("segment sink: batch from analytics-go: %w", err)
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		return nil, fmt.Errorf("segment sink: batch from analytics-go: %w", err)
	}
	post := func(msgs []json.RawMessage) error {
		b := body
		if len(msgs) != len(batch.Batch) {
			env["batch"], _ = json.Marshal(msgs)
			b, _ = json.Marshal(env)
		}
		return t.post(req, b)
	}
	ids := make([]string, len(batch.Batch))
	caps := make([]int, len(batch.Batch))
	for i, m := range batch.Batch {
		var id struct {
			MessageID string `json:"messageId"`
		}
		_ = json.Unmarshal(m, &id)
		ids[i] = id.MessageID
		caps[i] = t.capOf(id.MessageID)
	}
	for i, err := range sendIsolating(batch.Batch, caps, post) {
		if err != nil {
			t.record(ids[i], err)
		}
	}
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		Body:          http.NoBody,
		ContentLength: 0,
		Request:       req,
	}, nil
}

// post sends one request like req with body b. Its time limit is the
// sink's own, not analytics-go's 10 s for the whole exchange, which may
// take several requests.
func (t *segmentTransport) post(req *http.Request, b []byte) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), t.timeout)
	defer cancel()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r.ContentLength = int64(len(b))
	r.Header.Del("Content-Length")
	res, err := t.base.RoundTrip(r)
	if err != nil {
		return networkError(err)
	}
	defer res.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	text := strings.TrimSpace(string(snippet))
	if key, _, ok := r.BasicAuth(); ok {
		text = redactSecrets(text, []string{key})
	}
	return ClassifyStatus(res.StatusCode, res.Header, text)
}
