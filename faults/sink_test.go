//go:build faults

package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/spec"
)

// Case 5: the Segment endpoint down, then answering 500s, then 429 with
// Retry-After, then slower than the sink's timeout, then 401, a while
// each: nothing lost once it recovers, the lag visible in the metrics
// and on /readyz meanwhile (degraded, naming the sink: "behind" while it
// is down, failing or slower than its timeout; "refuses chattap" for the
// 401), and nothing dead-lettered.
func TestCase5SinkOutage(t *testing.T) {
	w := newWorld(t)
	port := brokertest.FreePort(t)
	// A lag warning shorter than a phase, so that each phase shows.
	env := embeddedEnv(t, w, port, map[string]string{"CHATTAP_SINK_LAG_WARNING": pick("1s", "10s")})
	c := newChattap(t, "chattap", env)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", port)
	phase := pick(2*time.Second, 30*time.Second)
	var seen, metricsSeen []string
	observe := func(name string) {
		code, body := c.Ready(t.Context())
		retried, inFlight := c.Metric("chattap_sink_retried_total"), c.Metric("chattap_sink_in_flight")
		seen = append(seen, fmt.Sprintf("%s: /readyz %d %q, retried %.0f, in flight %.0f", name, code, body, retried, inFlight))
		metricsSeen = append(metricsSeen, fmt.Sprintf("%s: retried %.0f, in flight %.0f", name, retried, inFlight))
	}
	l := caseLoad(0x5a0)
	ex, healed := drive(t, l, c.URL, 500*time.Millisecond, func(ctx context.Context) error {
		steps := []struct {
			name string
			set  func()
		}{
			{"down", w.sink.Down},
			{"500", func() {
				w.sink.Up()
				w.recv.SetRespond(func(int, []spec.Message) (int, http.Header) { return http.StatusInternalServerError, nil })
			}},
			{"429", func() {
				w.recv.SetRespond(func(int, []spec.Message) (int, http.Header) {
					return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
				})
			}},
			{"slow", func() {
				w.recv.SetRespond(func(int, []spec.Message) (int, http.Header) { time.Sleep(3 * time.Second); return 0, nil })
			}},
			{"401", func() {
				w.recv.SetRespond(func(int, []spec.Message) (int, http.Header) { return http.StatusUnauthorized, nil })
			}},
		}
		for _, s := range steps {
			s.set()
			time.Sleep(phase)
			observe(s.name)
		}
		w.recv.SetRespond(nil)
		return nil
	})
	r, _ := settle(t, w, natsURL, ex, healed, recoveryBound(env)+pick(30*time.Second, 5*time.Minute))
	dlq := streamMsgs(natsURL, "CHATTAP_DLQ")
	r.Case, r.Load = "5 sink outage: down, 500, 429, slow, 401", l.String()
	var flagged []string
	for _, s := range seen {
		if !strings.Contains(s, `/readyz 200 "{\"status\":\"ready\"}"`) {
			flagged = append(flagged, strings.SplitN(s, ":", 2)[0])
		}
	}
	r.Note = fmt.Sprintf("%s each; dead-lettered %d; /readyz not plain ready in phases %v; at each phase's end %s", phase, dlq, flagged, strings.Join(metricsSeen, ", "))
	for _, s := range seen {
		t.Log(s)
	}
	report(t, r)
	assertClean(t, r, false, true) // the slow phase makes the receiver accept what the sink gave up on: sent again, dropped by messageId
	assertRecovery(t, r, env)
	if dlq != 0 {
		t.Errorf("%d events dead-lettered during the outage (401 must dead-letter nothing)", dlq)
	}
	retried := false
	for _, s := range seen {
		retried = retried || !strings.Contains(s, "retried 0,")
	}
	for i, want := range []string{"sink segment is behind", "sink segment is behind", "sink segment is behind", "sink segment is behind", "sink segment: the destination refuses chattap"} {
		if !strings.Contains(seen[i], `/readyz 200 "{\"status\":\"degraded\"`) || !strings.Contains(seen[i], want) {
			t.Errorf("/readyz at the end of phase %s: want 200 degraded with %q", seen[i], want)
		}
	}
	if !retried {
		t.Errorf("the metrics never showed a retry during the outage: %v", seen)
	}
}
