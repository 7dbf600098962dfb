package ingest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bounds of one reader of /debugger/stream. A browser that cannot keep up
// loses messages (it is told how many), never the pipeline its time.
const (
	streamQueueLen   = 4096
	streamQueueBytes = 8 << 20
	// streamMaxData is the largest message sent whole; a larger one is
	// announced with its size only.
	streamMaxData    = 64 << 10
	streamBacklog    = 200
	streamHeartbeat  = 15 * time.Second
	streamWriteLimit = 10 * time.Second
)

// streamLine is one line of /debugger/stream (JSON lines). Kind is
// "record" (a message on CHATTAP_RAW), "event" (on CHATTAP_EVENTS),
// "skipped" (Skipped messages were dropped for this reader), "live" (the
// backlog is over) or "ping".
type streamLine struct {
	Kind    string          `json:"k"`
	Subject string          `json:"subject,omitempty"`
	Record  string          `json:"record,omitempty"`
	Size    int             `json:"size,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Skipped int             `json:"skipped,omitempty"`
}

// streamQueue is one reader's bounded buffer. push never blocks: it runs
// on the NATS connection's delivery goroutine.
type streamQueue struct {
	mu      sync.Mutex
	msgs    []*nats.Msg
	bytes   int
	skipped int
	ready   chan struct{}
}

func newStreamQueue() *streamQueue { return &streamQueue{ready: make(chan struct{}, 1)} }

func (q *streamQueue) push(m *nats.Msg) {
	q.mu.Lock()
	if len(q.msgs) >= streamQueueLen || q.bytes+len(m.Data) > streamQueueBytes {
		q.skipped++
	} else {
		q.msgs = append(q.msgs, m)
		q.bytes += len(m.Data)
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take returns what is queued and how many were skipped since the last
// take.
func (q *streamQueue) take() ([]*nats.Msg, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	msgs, skipped := q.msgs, q.skipped
	q.msgs, q.bytes, q.skipped = nil, 0, 0
	return msgs, skipped
}

func lineOf(m *nats.Msg) streamLine {
	l := streamLine{Kind: "record", Subject: m.Subject, Size: len(m.Data)}
	if len(m.Subject) >= len(spec.SubjectEventsPrefix) && m.Subject[:len(spec.SubjectEventsPrefix)] == spec.SubjectEventsPrefix {
		l.Kind = "event"
		l.Record = m.Header.Get(spec.HeaderRecord)
	}
	if len(m.Data) <= streamMaxData && json.Valid(m.Data) {
		l.Data = m.Data
	}
	return l
}

// handleDebuggerStream streams, as JSON lines, the last messages of
// CHATTAP_RAW and CHATTAP_EVENTS and then every new one, until the reader
// goes or the debugger closes. The core subscriptions are taken before the
// backlog is read, so nothing falls between the two; the page drops what
// it sees twice.
func handleDebuggerStream(dbg *Debugger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := newStreamQueue()
		nc := dbg.d.JS.Conn()
		var subs []*nats.Subscription
		defer func() {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
		}()
		for _, subject := range []string{spec.SubjectRawPrefix + ">", spec.SubjectEventsPrefix + ">"} {
			s, err := nc.Subscribe(subject, q.push)
			if err != nil {
				encodeError(w, http.StatusServiceUnavailable, "subscribe: "+err.Error())
				return
			}
			subs = append(subs, s)
		}
		rc := http.NewResponseController(w)
		// A GET has nothing more to read: the server's ReadTimeout must
		// not end a stream that lasts as long as the page is open.
		_ = rc.SetReadDeadline(time.Time{})
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		bw := bufio.NewWriterSize(w, 64<<10)
		enc := json.NewEncoder(bw)
		flush := func() error {
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteLimit))
			if err := bw.Flush(); err != nil {
				return err
			}
			return rc.Flush()
		}

		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		for _, stream := range []string{spec.StreamRaw, spec.StreamEvents} {
			msgs, err := lastMessages(ctx, dbg.d.JS, stream, streamBacklog)
			if err != nil {
				dbg.d.Log.Warn("debugger: backlog", "stream", stream, "err", err)
			}
			for _, m := range msgs {
				_ = enc.Encode(lineOf(m))
			}
		}
		cancel()
		_ = enc.Encode(streamLine{Kind: "live"})
		if flush() != nil {
			return
		}

		heartbeat := time.NewTicker(streamHeartbeat)
		defer heartbeat.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-dbg.closed:
				return
			case <-heartbeat.C:
				_ = enc.Encode(streamLine{Kind: "ping"})
			case <-q.ready:
				msgs, skipped := q.take()
				if skipped > 0 {
					_ = enc.Encode(streamLine{Kind: "skipped", Skipped: skipped})
				}
				for _, m := range msgs {
					_ = enc.Encode(lineOf(m))
				}
			}
			if err := flush(); err != nil {
				// A reader that takes longer than streamWriteLimit to
				// accept a write is dropped; its page reconnects.
				return
			}
		}
	})
}

// lastMessages reads the last n messages of stream, oldest first, with
// their headers. It reads nothing beyond what is there when it starts.
func lastMessages(ctx context.Context, js jetstream.JetStream, stream string, n int) ([]*nats.Msg, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	start := first
	if last >= uint64(n) && last-uint64(n)+1 > first {
		start = last - uint64(n) + 1
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start})
	if err != nil {
		return nil, err
	}
	batch, err := cons.FetchNoWait(int(last - start + 1))
	if err != nil {
		return nil, err
	}
	var out []*nats.Msg
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err == nil && md.Sequence.Stream > last {
			break
		}
		out = append(out, &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
		return out, err
	}
	return out, nil
}
