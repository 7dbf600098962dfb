package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/spec"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
)

// loadTheDebugger stores about a thousand records a second for three
// seconds (each maps to an identify, Started and Sent: some four thousand
// messages a second reach the page, as far as the mapper keeps up) while measuring how long the page takes to run
// an animation frame. The bounds are generous: the page must stay usable,
// not fast.
func loadTheDebugger(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	_, js := brokertest.Connect(t, url)
	before := pageJS[int](t, ctx, `window.chattapDebugger.received`)
	pageJS[bool](t, ctx, `(window.chattapDebugger.longestFrame = 0, true)`)

	done := make(chan int, 1)
	go func() {
		sent := 0
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		end := time.Now().Add(3 * time.Second)
		for now := range tick.C {
			if now.After(end) {
				break
			}
			for range 10 {
				sent++
				cid := fmt.Sprintf("chatbot::load:%d", sent)
				o := &spec.Observation{Source: spec.SourceChatbotWebhook, Kind: "message", ConversationID: cid,
					Payload: json.RawMessage(chatbotEvent(cid, "message", "load"))}
				rec := spec.NewRecord(fmt.Sprintf("load-%d-%d", now.UnixNano(), sent), time.Now(), 200, []*spec.Observation{o})
				if _, err := js.PublishAsync(rec.Subject(), rec.AppendJSON(nil), jetstream.WithMsgID(rec.ID)); err != nil {
					break
				}
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(10 * time.Second):
		}
		done <- sent
	}()

	var worst time.Duration
	rounds := 0
	sent := -1
	for loadStarted := time.Now(); sent < 0; {
		select {
		case sent = <-done:
			t.Logf("load: %d records stored in %v", sent, time.Since(loadStarted).Round(time.Millisecond))
		default:
		}
		began := time.Now()
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`new Promise(r => requestAnimationFrame(() => r(true)))`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("animation frame during the load: %v", err)
		}
		worst = max(worst, time.Since(began))
		rounds++
		time.Sleep(100 * time.Millisecond)
	}
	// Once the mapper is done, nothing more comes: the page must catch up.
	waitMapperDone(t, url, time.Minute)
	waitJSWithin(t, ctx, 30*time.Second, "the page catching up after the load", `window.chattapDebugger.queue.length === window.chattapDebugger.qHead`)
	rows := pageJS[int](t, ctx, `document.querySelectorAll('#rows .row').length`)
	received := pageJS[int](t, ctx, `window.chattapDebugger.received`)
	longest := time.Duration(pageJS[float64](t, ctx, `window.chattapDebugger.longestFrame`) * float64(time.Millisecond))
	skipped := pageJS[int](t, ctx, `window.chattapDebugger.skippedServer + window.chattapDebugger.skippedPage`)
	t.Logf("load: %d messages reached the page, %d skipped to keep up; longest frame of its own work %v; worst round trip to an animation frame %v over %d rounds; %d rows shown",
		received-before, skipped, longest.Round(time.Millisecond), worst.Round(time.Millisecond), rounds, rows)
	// Both include what a machine shared with the race detector and the
	// load itself costs the browser: the bounds are for a freeze, not for
	// speed.
	if longest > time.Second {
		t.Errorf("the page froze: one frame's work took %v during the load", longest)
	}
	if worst > 5*time.Second {
		t.Errorf("the page froze: an animation frame took %v to come during the load", worst)
	}
	if rows > 300 {
		t.Errorf("%d rows shown, the list must stay bounded at 300", rows)
	}
	if received-before < sent {
		t.Errorf("the page took only %d messages during the load, fewer than the %d records stored", received-before, sent)
	}
}
