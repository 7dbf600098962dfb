package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/metrics"
)

// TestExchangeCutAtShutdownIsRecorded follows the process's stop: HTTP
// Shutdown with a short budget, then Close, which cuts the exchanges still
// waiting on the bot but does not wait for their handlers, then Drain,
// then Publisher.Stop. Each cut exchange records its 502 after Close
// returned; Drain must wait for those records, or Stop finds nothing held
// and they are refused.
func TestExchangeCutAtShutdownIsRecorded(t *testing.T) {
	s := brokertest.Start(t)
	release := make(chan struct{})
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); bot.Close() })
	reg := metrics.New()
	im := metrics.NewIngest(reg)
	pub, err := ingest.NewPublisher(s.Conn, 1000, 64, time.Second, slog.New(slog.DiscardHandler), im)
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.BotWebhookURL = bot.URL
	srv, err := ingest.New(ingest.Deps{Options: o, Publisher: pub, Metrics: im})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	var wg sync.WaitGroup
	const n = 5
	for i := range n {
		wg.Go(func() {
			body := `{"info":{"cid":"cut-` + string(rune('a'+i)) + `"},"packet":{"name":"message","payload":{"body":"hi"}}}`
			resp, err := http.Post(hs.URL+ingest.RouteWebhook, "application/json", strings.NewReader(body))
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the exchanges wait on the bot
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if err := hs.Config.Shutdown(ctx); err != nil {
		_ = hs.Config.Close()
	}
	cancel()
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if left := srv.Drain(dctx); left != 0 {
		t.Errorf("Drain: %d exchanges still served after 5s", left)
	}
	cancel()
	stopErr := pub.Stop(context.Background())
	wg.Wait()
	h := &harness{js: s.JS}
	if stored := h.rawCount(t); stored != n {
		t.Errorf("%d of %d cut exchanges recorded (Stop: %v, lost %v)", stored, n, stopErr, reg.Gather("chattap_records_lost_total", nil))
	}
}

// TestRecordAfterStopIsLoggedAndCounted: a record that still comes after
// the publisher stopped is refused, counted as lost and logged with its
// exchange id: in async mode nothing else would say so.
func TestRecordAfterStopIsLoggedAndCounted(t *testing.T) {
	s := brokertest.Start(t)
	reg := metrics.New()
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	pub, err := ingest.NewPublisher(s.Conn, 1000, 64, time.Second, log, metrics.NewIngest(reg))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := pub.Enqueue(oneEvent("late-0001", "conv-a", `{}`), nil); !errors.Is(err, ingest.ErrStopped) {
		t.Errorf("Enqueue after Stop: %v, want ErrStopped", err)
	}
	if n := reg.Gather("chattap_records_lost_total", nil); n != 1 {
		t.Errorf("lost counted %v, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "late-0001") {
		t.Errorf("the late record's exchange id is not logged:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestDrainWaitsForExchangesBeingServed: Drain reports an exchange still
// waiting on its upstream, and returns once its handler ended.
func TestDrainWaitsForExchangesBeingServed(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		_, _ = w.Write([]byte(`{}`))
	})
	h := startTaps(t, func(o *ingest.Options) { o.BotWebhookURL = up.URL })
	srv := h.srv
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		resp, err := http.Post(h.url+ingest.RouteWebhook, "application/json", strings.NewReader(webhookBody))
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-arrived
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if n := srv.Drain(ctx); n != 1 {
		t.Errorf("Drain while one exchange waits on its upstream: %d, want 1", n)
	}
	close(release)
	<-answered
	if n := srv.Drain(t.Context()); n != 0 {
		t.Errorf("Drain after the exchange was answered: %d, want 0", n)
	}
}
