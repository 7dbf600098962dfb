//go:build faults

package faults_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/spec"
)

// Case 8: an event the destination always refuses (400: permanent; 500:
// retryable for ever) ends in the DLQ, after the configured deliveries
// for 500, and every other event keeps flowing. The 500 variant runs with
// the default batch size (100) and max deliveries (20): the events batched
// with a poison event fail with it until isolation (sinks/isolate.go) has
// cut its requests down to the poison event alone, which must happen
// long before their 20th failure.
func TestCase8Poison(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusInternalServerError} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			maxDeliveries := 3
			if status >= 500 {
				maxDeliveries = 20
			}
			w := newWorld(t)
			port := brokertest.FreePort(t)
			env := embeddedEnv(t, w, port, map[string]string{"CHATTAP_SINK_MAX_DELIVERIES": fmt.Sprint(maxDeliveries)})
			c := newChattap(t, "chattap", env)
			natsURL := fmt.Sprintf("nats://127.0.0.1:%d", port)
			w.recv.SetRespond(func(_ int, batch []spec.Message) (int, http.Header) {
				for _, m := range batch {
					if b, _ := m.Properties["message_body"].(string); strings.Contains(b, poisonWord) {
						return status, nil
					}
				}
				return 0, nil
			})
			l := caseLoad(0x8a0 + uint64(status))
			l.Poison = 10
			ex, healed := drive(t, l, c.URL, 0, nil)
			poisoned := func(p projection) bool { return strings.Contains(p.Properties, poisonWord) }
			r, _ := settleExcept(t, w, natsURL, ex, healed, recoveryBound(env), poisoned)
			// Wait for the DLQ: maxDeliveries deliveries with backoff (at
			// most 2 s) for 500.
			want := 0
			o := mapRecords(t, readStream(t, natsURL, "CHATTAP_RAW"))
			for _, p := range o.Events {
				if poisoned(p) {
					want++
				}
			}
			var dead []record
			for deadline := time.Now().Add(time.Duration(maxDeliveries) * 3 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				if dead = readStream(t, natsURL, "CHATTAP_DLQ"); len(dead) >= want {
					break
				}
			}
			time.Sleep(time.Second)
			dead = readStream(t, natsURL, "CHATTAP_DLQ")
			ids, notPoison := map[string]int{}, 0
			for _, d := range dead {
				p := project(d.Data)
				if !poisoned(p) {
					notPoison++
				}
				ids[string(d.Data)]++
			}
			r.Recovery = 0 // no restart to recover from
			r.Case, r.Load = fmt.Sprintf("8 poison: the destination answers %d to one event in ten conversations", status), l.String()
			r.Note = fmt.Sprintf("poison events %d, in the DLQ %d (%d of them not poison); max deliveries %d", want, len(dead), notPoison, maxDeliveries)
			report(t, r)
			assertClean(t, r, false, false)
			if want == 0 {
				t.Fatal("the load made no poison event: the case tests nothing")
			}
			if len(dead) != want || notPoison > 0 || len(ids) != want {
				t.Errorf("DLQ holds %d entries (%d distinct, %d not poison), want the %d poison events once each", len(dead), len(ids), notPoison, want)
			}
		})
	}
}
