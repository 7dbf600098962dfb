package ingest_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/ingest"
	"github.com/nats-io/nats.go"
)

// TestBrokerDown stops the broker under a running tap: proxied exchanges
// still go through and are recorded once it is back; the add-on callback,
// which must not answer 200 for what was not stored, gets 503.
func TestBrokerDown(t *testing.T) {
	dir, addr := t.TempDir(), brokertest.FreeAddr(t)
	srv := brokertest.StartListening(t, dir, addr)
	nc, js := brokertest.ConnectEnsured(t, "nats://"+addr)
	bot := newUpstream(t, replyWith(http.StatusOK, nil, replyEvent1))
	o := testOptions()
	o.BotWebhookURL = bot.URL
	o.AddonAckTimeout = 300 * time.Millisecond
	h := newHarness(t, nc, js, o)

	srv.Shutdown()
	waitFor(t, "client to notice the broker is gone", func() bool { return nc.Status() != nats.CONNECTED })

	const n = 25
	for i := range n {
		body := strings.Replace(webhookBody, "balance", "balance "+strconv.Itoa(i), 1)
		resp, got := h.post(t, ingest.RouteWebhook, body, nil)
		if resp.StatusCode != http.StatusOK || got != replyEvent1 {
			t.Fatalf("exchange %d with the broker down: %d %q, want the bot's answer", i, resp.StatusCode, got)
		}
	}
	const addon = `{"_type":"chat_session","_event":"start","id":1}`
	resp, _ := h.post(t, ingest.RouteAddon, addon, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("add-on with the broker down: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if held := h.pub.Held(); held != n {
		t.Errorf("publisher holds %d records, want %d (one per exchange)", held, n)
	}

	brokertest.StartListening(t, dir, addr)
	waitFor(t, "buffer to drain", func() bool { return h.pub.Held() == 0 })
	// Userlike retries the refused callback; this time it is stored, once.
	for range 2 {
		if resp, _ := h.post(t, ingest.RouteAddon, addon, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("add-on retried with the broker back: %d, want 200", resp.StatusCode)
		}
	}
	obs := h.observations(t, 2*n+1)
	ids := map[string]bool{}
	for _, o := range obs {
		ids[o.obs.ID] = true
	}
	if len(ids) != 2*n+1 {
		t.Errorf("%d distinct observations, want %d", len(ids), 2*n+1)
	}
	if total := h.rawCount(t); total != n+1 {
		t.Errorf("stream holds %d records, want exactly %d (no duplicates, nothing lost)", total, n+1)
	}
	if failed := h.reg.Gather("chattap_records_publish_failures_total", nil); failed == 0 {
		t.Error("no failed publish was counted while the broker was down")
	}
}

// TestBufferBoundDropsAndCounts fills a small buffer with the broker away.
func TestBufferBoundDropsAndCounts(t *testing.T) {
	addr := brokertest.FreeAddr(t)
	srv := brokertest.StartListening(t, t.TempDir(), addr)
	nc, js := brokertest.ConnectEnsured(t, "nats://"+addr)
	o := testOptions()
	o.PublishBuffer = 5
	h := newHarness(t, nc, js, o)
	srv.Shutdown()
	waitFor(t, "client to notice the broker is gone", func() bool { return nc.Status() != nats.CONNECTED })
	for range 8 {
		if resp, _ := h.post(t, ingest.RouteWebhook, webhookBody, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("exchange failed with a full buffer: %d", resp.StatusCode)
		}
	}
	if dropped := h.reg.Gather("chattap_records_dropped_total", nil); dropped != 3 {
		t.Errorf("dropped = %v, want 3", dropped)
	}
	if held := h.pub.Held(); held != 5 {
		t.Errorf("held = %d, want 5", held)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStopWithBrokerDownCountsWhatIsLost stops the publisher while it
// holds what the broker never stored: Stop says so, the loss is counted,
// and nothing is accepted afterwards.
func TestStopWithBrokerDownCountsWhatIsLost(t *testing.T) {
	addr := brokertest.FreeAddr(t)
	srv := brokertest.StartListening(t, t.TempDir(), addr)
	nc, js := brokertest.ConnectEnsured(t, "nats://"+addr)
	h := newHarness(t, nc, js, testOptions())
	srv.Shutdown()
	waitFor(t, "client to notice the broker is gone", func() bool { return nc.Status() != nats.CONNECTED })
	for range 4 {
		if resp, _ := h.post(t, ingest.RouteWebhook, webhookBody, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("webhook: %d", resp.StatusCode)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := h.pub.Stop(ctx)
	if err == nil || !strings.Contains(err.Error(), "4 records") {
		t.Fatalf("Stop = %v, want it to report 4 records not stored", err)
	}
	if again := h.pub.Stop(t.Context()); again == nil || again.Error() != err.Error() {
		t.Errorf("second Stop = %v, want %v", again, err)
	}
	if lost := h.reg.Gather("chattap_records_lost_total", nil); lost != 4 {
		t.Errorf("lost counter = %v, want 4", lost)
	}
	if resp, _ := h.post(t, ingest.RouteWebhook, webhookBody, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("an exchange after Stop must still go through: %d", resp.StatusCode)
	}
	if lost := h.reg.Gather("chattap_records_lost_total", nil); lost != 5 {
		t.Errorf("lost counter after a late exchange = %v, want 5", lost)
	}
}
