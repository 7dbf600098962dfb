package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go/jetstream"
)

// RecentEvents returns a reader of the last n Live Chat events on
// CHATTAP_EVENTS, oldest first, for /debugger.
func RecentEvents(js jetstream.JetStream) func(ctx context.Context, n int) ([]spec.Message, error) {
	return func(ctx context.Context, n int) ([]spec.Message, error) {
		st, err := js.Stream(ctx, spec.StreamEvents)
		if err != nil {
			return nil, fmt.Errorf("events stream: %w", err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("events stream: %w", err)
		}
		last := info.State.LastSeq
		if info.State.Msgs == 0 {
			return nil, nil
		}
		start := info.State.FirstSeq
		if last >= uint64(n) && last-uint64(n)+1 > start {
			start = last - uint64(n) + 1
		}
		cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start})
		if err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		batch, err := cons.FetchNoWait(int(last - start + 1))
		if err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		var out []spec.Message
		for msg := range batch.Messages() {
			var m spec.Message
			if json.Unmarshal(msg.Data(), &m) == nil {
				out = append(out, m)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return out, err
		}
		return out, nil
	}
}

var debuggerPage = template.Must(template.New("debugger").Funcs(template.FuncMap{"json": indentJSON}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>chattap debugger</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f4f4f4}
code,pre{font:12px ui-monospace,monospace;margin:0;white-space:pre-wrap}
.empty{color:#777}
</style></head><body>
<h1>Live Chat events</h1>
<p>The last {{.Limit}} events on CHATTAP_EVENTS, newest first; the page refreshes every 5 seconds. Record Live Chat Events: <strong>{{if .Record}}on{{else}}off{{end}}</strong>.</p>
{{if .Error}}<p><strong>Could not read events:</strong> {{.Error}}</p>{{end}}
<table><thead><tr><th>time</th><th>event</th><th>identity</th><th>properties</th></tr></thead><tbody>
{{range .Events}}<tr><td>{{.Timestamp.Format "2006-01-02 15:04:05.000"}}</td><td>{{if .Event}}{{.Event}}{{else}}{{.Type}}{{end}}<br><code>{{.MessageID}}</code></td>
<td>{{with .UserID}}user <code>{{.}}</code><br>{{end}}anon <code>{{.AnonymousID}}</code></td><td><pre>{{json .}}</pre></td></tr>
{{else}}<tr><td colspan="4" class="empty">No events yet.</td></tr>{{end}}
</tbody></table></body></html>`))

func indentJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// handleDebugger shows the latest Live Chat events, like Segment's own
// debugger: as a page, or as JSON with ?format=json.
func handleDebugger(s *Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := 50
		if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 && n <= 1000 {
			limit = n
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		events, err := s.Recent(ctx, limit)
		if r.URL.Query().Get("format") == "json" {
			if err != nil {
				encodeError(w, http.StatusServiceUnavailable, err.Error())
				return
			}
			encode(w, http.StatusOK, events)
			return
		}
		for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
			events[i], events[j] = events[j], events[i]
		}
		data := struct {
			Limit  int
			Record bool
			Events []spec.Message
			Error  string
		}{Limit: limit, Record: s.Settings == nil || s.Settings.Current().RecordLiveChatEvents, Events: events}
		if err != nil {
			data.Error = err.Error()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := debuggerPage.Execute(w, data); err != nil {
			s.Log.Warn("render debugger", "err", err)
		}
	})
}
