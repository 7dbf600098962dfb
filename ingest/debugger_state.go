package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// eventStats counts what reaches CHATTAP_EVENTS and CHATTAP_RAW per
// second over the last minute and per minute over the last hour, per
// event. Counting reads only the subject and headers; the body of an
// event is decoded once per subject, for its name. A message published
// twice under one Nats-Msg-Id (a redelivered mapping) counts once while
// its id is among the last dedupWindow seen.
type eventStats struct {
	mu      sync.Mutex
	since   time.Time
	events  map[string]*window // by subject
	names   map[string]string  // subject → event name
	records window
	seen    map[string]struct{}
	order   []string
	next    int
}

const dedupWindow = 8192

// window holds 60 per-second and 60 per-minute buckets, each stamped with
// the second or minute it counts, so stale buckets read as zero.
type window struct {
	sec    [60]int
	secAt  [60]int64
	min    [60]int
	minAt  [60]int64
	lastAt time.Time
}

func (w *window) add(now time.Time) {
	s, m := now.Unix(), now.Unix()/60
	if i := s % 60; w.secAt[i] != s {
		w.sec[i], w.secAt[i] = 0, s
	}
	w.sec[s%60]++
	if i := m % 60; w.minAt[i] != m {
		w.min[i], w.minAt[i] = 0, m
	}
	w.min[m%60]++
	w.lastAt = now
}

// counts returns the count over the last 60 seconds and the last 60
// minutes (the current minute included).
func (w *window) counts(now time.Time) (minute, hour int) {
	s, m := now.Unix(), now.Unix()/60
	for i := range 60 {
		if now := w.secAt[i]; now > s-60 && now <= s {
			minute += w.sec[i]
		}
		if at := w.minAt[i]; at > m-60 && at <= m {
			hour += w.min[i]
		}
	}
	return minute, hour
}

func newEventStats(now time.Time) *eventStats {
	return &eventStats{since: now, events: map[string]*window{}, names: map[string]string{}, seen: map[string]struct{}{}, order: make([]string, dedupWindow)}
}

// fresh reports whether id was not seen recently, and remembers it.
func (s *eventStats) fresh(id string) bool {
	if id == "" {
		return true
	}
	if _, ok := s.seen[id]; ok {
		return false
	}
	if old := s.order[s.next]; old != "" {
		delete(s.seen, old)
	}
	s.order[s.next], s.seen[id] = id, struct{}{}
	s.next = (s.next + 1) % dedupWindow
	return true
}

func (s *eventStats) event(now time.Time, m *nats.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fresh(m.Header.Get(jetstream.MsgIDHeader)) {
		return
	}
	w := s.events[m.Subject]
	if w == nil {
		if len(s.events) >= 256 {
			return // subjects come from the mapper's event names; bound them anyway
		}
		w = &window{}
		s.events[m.Subject] = w
		var head struct {
			Type  string `json:"type"`
			Event string `json:"event"`
		}
		_ = json.Unmarshal(m.Data, &head)
		s.names[m.Subject] = cmp.Or(head.Event, head.Type, strings.TrimPrefix(m.Subject, spec.SubjectEventsPrefix))
	}
	w.add(now)
}

func (s *eventStats) record(now time.Time, m *nats.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh("raw:" + m.Header.Get(jetstream.MsgIDHeader)) {
		s.records.add(now)
	}
}

// EventCount is how often one event reached CHATTAP_EVENTS.
type EventCount struct {
	Event  string    `json:"event"`
	Minute int       `json:"minute"`
	Hour   int       `json:"hour"`
	LastAt time.Time `json:"last_at"`
}

func (s *eventStats) snapshot(now time.Time) (events []EventCount, recMinute, recHour int, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for subject, w := range s.events {
		m, h := w.counts(now)
		events = append(events, EventCount{Event: s.names[subject], Minute: m, Hour: h, LastAt: w.lastAt})
	}
	slices.SortFunc(events, func(a, b EventCount) int { return strings.Compare(a.Event, b.Event) })
	recMinute, recHour = s.records.counts(now)
	return events, recMinute, recHour, s.since
}

// SinkState is one sink's delivery as its consumer on CHATTAP_EVENTS and
// the DLQ tell it, with this process's counters where it runs the sink.
type SinkState struct {
	Name     string `json:"name"`
	Consumer string `json:"consumer"`
	// Lag is how many events the sink has not taken yet; InFlight how
	// many it took and has no outcome for; Redelivered how many of those
	// are being tried again.
	Lag         uint64 `json:"lag"`
	InFlight    int    `json:"in_flight"`
	Redelivered int    `json:"redelivered"`
	// Acked is the stream sequence every event up to which is settled.
	Acked       uint64 `json:"acked_seq"`
	DeadLetters uint64 `json:"dead_letters"`
	// Delivered, Retried and DeadLettered count since this process
	// started; they are absent where another process runs the sink.
	Delivered    *float64 `json:"delivered,omitempty"`
	Retried      *float64 `json:"retried,omitempty"`
	DeadLettered *float64 `json:"dead_lettered,omitempty"`
}

// debuggerState is the answer of /debugger/state.
type debuggerState struct {
	Now           time.Time      `json:"now"`
	CountingSince time.Time      `json:"counting_since"`
	Events        []EventCount   `json:"events"`
	Known         []string       `json:"known_events"`
	Records       map[string]int `json:"records"`
	Sinks         []SinkState    `json:"sinks"`
	Settings      *spec.Settings `json:"settings,omitempty"`
	EventsStored  uint64         `json:"events_stored"`
	RecordsStored uint64         `json:"records_stored"`
	Errors        []string       `json:"errors,omitempty"`
}

// handleDebuggerState answers the counts per event over the last minute
// and hour, the state of each sink and the settings in force.
func handleDebuggerState(dbg *Debugger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := dbg.d.Now()
		events, rm, rh, since := dbg.stats.snapshot(now)
		st := debuggerState{Now: now, CountingSince: since, Events: events, Records: map[string]int{"minute": rm, "hour": rh},
			Known: []string{spec.EventConversationStarted, spec.EventMessageSent, spec.EventMessageReceived, spec.EventConversationEnded,
				spec.EventConversationForwarded, spec.EventOptionSelected, spec.EventConversationRated}}
		if dbg.d.Settings != nil {
			cur := dbg.d.Settings.Current()
			st.Settings = &cur
		}
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		var err error
		st.Sinks, st.EventsStored, st.RecordsStored, err = dbg.sinkStates(ctx)
		if err != nil {
			st.Errors = append(st.Errors, err.Error())
		}
		encode(w, http.StatusOK, st)
	})
}

func (dbg *Debugger) sinkStates(ctx context.Context) ([]SinkState, uint64, uint64, error) {
	js := dbg.d.JS
	var recordsStored uint64
	if raw, err := js.Stream(ctx, spec.StreamRaw); err == nil {
		if info, err := raw.Info(ctx); err == nil {
			recordsStored = info.State.Msgs
		}
	}
	events, err := js.Stream(ctx, spec.StreamEvents)
	if err != nil {
		return nil, 0, recordsStored, err
	}
	einfo, err := events.Info(ctx)
	if err != nil {
		return nil, 0, recordsStored, err
	}
	dead := map[string]uint64{}
	if dlq, err := js.Stream(ctx, spec.StreamDLQ); err == nil {
		if info, err := dlq.Info(ctx, jetstream.WithSubjectFilter(spec.SubjectDLQPrefix+">")); err == nil {
			for subject, n := range info.State.Subjects {
				dead[strings.TrimPrefix(subject, spec.SubjectDLQPrefix)] = n
			}
		}
	}
	var out []SinkState
	lister := events.ListConsumers(ctx)
	for info := range lister.Info() {
		name, ok := strings.CutPrefix(info.Name, "sink-")
		if !ok {
			continue
		}
		s := SinkState{Name: name, Consumer: info.Name, Lag: info.NumPending, InFlight: info.NumAckPending,
			Redelivered: info.NumRedelivered, Acked: info.AckFloor.Stream, DeadLetters: dead[name]}
		if c := dbg.d.Counter; c != nil {
			labels := map[string]string{"sink": name}
			delivered := c("chattap_sink_delivered_total", labels)
			retried := c("chattap_sink_retried_total", labels)
			deadLettered := c("chattap_sink_dead_lettered_total", labels)
			if delivered+retried+deadLettered > 0 || info.NumAckPending > 0 {
				s.Delivered, s.Retried, s.DeadLettered = &delivered, &retried, &deadLettered
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b SinkState) int { return strings.Compare(a.Name, b.Name) })
	return out, einfo.State.Msgs, recordsStored, lister.Err()
}
