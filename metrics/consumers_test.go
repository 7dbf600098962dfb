package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chattap/chattap/metrics"
)

func TestWatchConsumersReadsAtEachScrape(t *testing.T) {
	reg := metrics.New()
	pending := uint64(7)
	reg.WatchConsumers(func(ctx context.Context) []metrics.ConsumerState {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("states called without a deadline")
		}
		return []metrics.ConsumerState{{Stream: "CHATTAP_RAW", Consumer: "mapper", Pending: pending, AckPending: 2}}
	})
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	scrape := func() string {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for _, want := range []string{`chattap_consumer_pending_messages{consumer="mapper",stream="CHATTAP_RAW"} 7`, `chattap_consumer_ack_pending_messages{consumer="mapper",stream="CHATTAP_RAW"} 2`} {
		if body := scrape(); !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s:\n%s", want, body)
		}
	}
	pending = 0
	if body := scrape(); !strings.Contains(body, `chattap_consumer_pending_messages{consumer="mapper",stream="CHATTAP_RAW"} 0`) {
		t.Errorf("the second scrape did not read the lag again:\n%s", body)
	}
	for _, n := range []string{"chattap_consumer_pending_messages", "chattap_consumer_ack_pending_messages"} {
		if !strings.Contains(strings.Join(reg.Names(), " "), n) {
			t.Errorf("Names lacks %s: %v", n, reg.Names())
		}
	}
}

func TestNamesListHistogramSeries(t *testing.T) {
	reg := metrics.New()
	metrics.NewIngest(reg)
	names := " " + strings.Join(reg.Names(), " ") + " "
	for _, n := range []string{"chattap_tap_overhead_seconds_bucket", "chattap_tap_overhead_seconds_sum", "chattap_tap_overhead_seconds_count", "chattap_tap_requests_total", "chattap_records_buffered"} {
		if !strings.Contains(names, " "+n+" ") {
			t.Errorf("Names lacks %s:%s", n, names)
		}
	}
	if strings.Contains(names, " chattap_tap_overhead_seconds ") {
		t.Errorf("Names lists a histogram by its bare name:%s", names)
	}
}
