package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
)

func TestPercentileIsNearestRank(t *testing.T) {
	var l latencies
	for i := 100; i >= 1; i-- { // added out of order
		l.add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{
		{50, 50 * time.Millisecond},
		{99, 99 * time.Millisecond},
		{99.9, 100 * time.Millisecond},
		{100, 100 * time.Millisecond},
		{0.001, time.Millisecond},
	} {
		if got := l.percentile(c.p); got != c.want {
			t.Errorf("p%v of 1..100 ms = %v, want %v", c.p, got, c.want)
		}
	}
	var empty latencies
	if empty.percentile(99) != 0 {
		t.Error("percentile of no samples is not 0")
	}
	var one latencies
	one.add(7)
	if one.percentile(99.9) != 7 || one.percentile(1) != 7 {
		t.Error("a single sample is every percentile")
	}
	var m latencies
	m.merge(&l)
	m.merge(&one)
	if m.count() != 101 || m.percentile(100) != 100*time.Millisecond || m.percentile(0.5) != 7 {
		t.Errorf("merge: %d samples, max %v, min %v", m.count(), m.percentile(100), m.percentile(0.5))
	}
}

func postBatch(t *testing.T, url, key string, gz bool, ids ...string) int {
	t.Helper()
	var msgs []string
	for _, id := range ids {
		msgs = append(msgs, fmt.Sprintf(`{"type":"track","event":"Live Chat Message Sent","messageId":%q,"timestamp":%q}`, id, time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)))
	}
	body := []byte(`{"batch":[` + strings.Join(msgs, ",") + `],"sentAt":"2026-01-01T00:00:00Z"}`)
	if gz {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(body)
		zw.Close()
		body = b.Bytes()
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/batch", bytes.NewReader(body))
	req.SetBasicAuth(key, "")
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	discard(resp.Body)
	return resp.StatusCode
}

func TestReceiverCountsByMessageIDAndDuplicates(t *testing.T) {
	rc := newReceiver("k")
	srv := httptest.NewServer(rc)
	defer srv.Close()
	if code := postBatch(t, srv.URL, "k", false, "a", "b", "c"); code != http.StatusOK {
		t.Fatalf("batch answered %d", code)
	}
	if code := postBatch(t, srv.URL, "k", true, "c", "d"); code != http.StatusOK {
		t.Fatalf("gzip batch answered %d", code)
	}
	if code := postBatch(t, srv.URL, "wrong", false, "e"); code != http.StatusUnauthorized {
		t.Fatalf("a wrong write key answered %d, want 401", code)
	}
	st := rc.stats()
	if st.Distinct != 4 || st.Duplicates != 1 || st.Refused != 1 || st.Requests != 2 {
		t.Fatalf("stats %+v, want 4 distinct, 1 duplicate, 1 refused, 2 requests", st)
	}
	d := rc.takeDelays()
	if d.count() != 4 || d.percentile(50) < time.Second {
		t.Fatalf("%d delays, p50 %v: want 4 of at least 1s", d.count(), d.percentile(50))
	}
	rc.reset()
	if st := rc.stats(); st.Distinct != 0 || st.Duplicates != 0 {
		t.Fatalf("after reset: %+v", st)
	}
}

// TestExpectedEventsMatchesMapper maps the workload's exchanges with the
// mapper itself, with its defaults, and checks the bench's count.
func TestExpectedEventsMatchesMapper(t *testing.T) {
	w := newWorkload(3)
	m, err := mapper.New(mapper.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	seq := 0
	for n := range uint64(40) {
		c := newConversation(7, "test", n, rng)
		var st mapper.State
		for c.step <= c.length {
			kind, first := kindMessage, c.step == 0
			if first {
				kind = kindStart
			} else if rng.IntN(3) == 0 {
				kind = kindClick
			}
			body := w.webhook(nil, c, kind, rng)
			if !json.Valid(body) {
				t.Fatalf("webhook is not JSON: %s", body)
			}
			rep := w.replyFor(body)
			events, err := spec.SplitEvents(rep.body)
			if err != nil || len(events) != rep.events {
				t.Fatalf("reply %s: %d events (%v), want %d", rep.body, len(events), err, rep.events)
			}
			seq++
			ex := fmt.Sprintf("ex-%d", seq)
			obs := []*spec.Observation{{V: 1, ID: ex, Source: spec.SourceChatbotWebhook, Kind: kind, ReceivedAt: now, ConversationID: c.cid, Exchange: ex, Status: 200, Payload: body}}
			for i, e := range events {
				ev, _ := spec.DecodeChatbotEvent(e)
				obs = append(obs, &spec.Observation{V: 1, ID: fmt.Sprintf("%s-%d", ex, i+1), Source: spec.SourceChatbotReply, Kind: ev.Name(), ReceivedAt: now, ConversationID: c.cid, Exchange: ex, Index: i + 1, Status: 200, Payload: e})
			}
			got := 0
			for _, o := range obs {
				var out []spec.Message
				out, st, err = m.Map(o, st, spec.DefaultSettings)
				if err != nil {
					t.Fatalf("map %s: %v", o.Kind, err)
				}
				got += len(out)
			}
			if want := expectedEvents(kind, first, c.traits, rep.events); got != want {
				t.Fatalf("conversation %d step %d (%s, traits %v, %d reply events): mapper made %d messages, bench expects %d", n, c.step, kind, c.traits, rep.events, got, want)
			}
			c.step++
		}
	}
}

func TestLoadChecksEveryAnswer(t *testing.T) {
	w := newWorkload(5)
	var served atomic.Int64
	good := botHandler(w)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch served.Add(1) % 10 {
		case 3: // a wrong answer
			io.Copy(io.Discard, r.Body)
			rw.Write([]byte(`[]`))
		case 7:
			http.Error(rw, "nope", http.StatusBadGateway)
		default:
			good.ServeHTTP(rw, r)
		}
	}))
	defer srv.Close()
	res := runLoad(context.Background(), w, 9, loadConfig{scenario: "t", url: srv.URL, conns: 4, requests: 200})
	if res.Total != 200 {
		t.Fatalf("%d requests sent, want 200", res.Total)
	}
	if res.Failures != 40 {
		t.Fatalf("%d failures counted, want 40 (one wrong body and one 502 in every ten): %v", res.Failures, res.Samples)
	}
	if res.Lat.count() != 200 || res.Lat.percentile(50) <= 0 {
		t.Fatalf("%d latencies", res.Lat.count())
	}
}

func TestWorkloadIsRealistic(t *testing.T) {
	w := newWorkload(1)
	for _, txt := range w.texts {
		if len(txt) < 10 || len(txt) > 2000 {
			t.Fatalf("text of %d characters", len(txt))
		}
	}
	seen := map[int]bool{}
	for _, r := range w.replies {
		if r.events < 1 || r.events > 10 {
			t.Fatalf("reply with %d events", r.events)
		}
		seen[r.events] = true
	}
	if len(seen) < 5 {
		t.Fatalf("replies hold only %d different numbers of events", len(seen))
	}
	w.light.Store(true)
	if w.replyFor([]byte("x")).events != 1 {
		t.Fatal("light mode answers more than a greeting")
	}
}

func TestMergeRoundsTakesMedians(t *testing.T) {
	rounds := [][]throughputRow{
		{{Scenario: "a", ReqPerSec: 100, P99ms: 9, Requests: 10, Failures: 1, PeakRSSMB: 50}, {Scenario: "b", ReqPerSec: 7}},
		{{Scenario: "a", ReqPerSec: 300, P99ms: 1, Requests: 30, PeakRSSMB: 70}},
		{{Scenario: "a", ReqPerSec: 200, P99ms: 5, Requests: 20, PeakRSSMB: 60}},
	}
	got := mergeRounds(rounds)
	if len(got) != 2 || got[0].Scenario != "a" || got[1].Scenario != "b" {
		t.Fatalf("rows %+v", got)
	}
	a := got[0]
	if a.ReqPerSec != 200 || a.P99ms != 5 || a.Requests != 60 || a.Failures != 1 || a.PeakRSSMB != 70 {
		t.Fatalf("merged %+v", a)
	}
	if got[1].ReqPerSec != 7 {
		t.Fatalf("a single round is kept as it is: %+v", got[1])
	}
	if median([]float64{4, 1, 3, 2}) != 2.5 {
		t.Fatal("median of an even count")
	}
}
