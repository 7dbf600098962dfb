package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/metrics"
)

// exportedNames is every series name a chattap process can export: the
// metrics each stage registers (observed or not) and what a live scrape
// shows beside them (the Go runtime's and the process's).
func exportedNames(scrape string) map[string]bool {
	reg := metrics.New()
	metrics.NewIngest(reg)
	metrics.NewMapper(reg)
	metrics.NewSinks(reg)
	reg.WatchConsumers(nil)
	names := map[string]bool{}
	for _, n := range reg.Names() {
		names[n] = true
	}
	for n := range scrapedNames(scrape) {
		names[n] = true
	}
	return names
}

// scrapedNames reads the series names of a Prometheus text exposition.
func scrapedNames(scrape string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(scrape, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promVariable = regexp.MustCompile(`\$\{?\w+\}?`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// promqlMetricNames is the metric names a PromQL expression selects: its
// identifiers less functions and aggregations (followed by a parenthesis),
// keywords, label matchers, grouping labels, ranges and strings.
func promqlMetricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	s = promVariable.ReplaceAllString(s, " ")
	var out []string
	for _, m := range promIdent.FindAllStringSubmatch(s, -1) {
		if m[1] != "" || slices.Contains(promKeywords, strings.ToLower(m[0])) {
			continue
		}
		out = append(out, m[0])
	}
	return out
}

func TestPromQLMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`histogram_quantile(0.99, sum by (le, route) (rate(chattap_tap_overhead_seconds_bucket{job=~"$job"}[$__rate_interval])))`: "chattap_tap_overhead_seconds_bucket",
		`sum(rate(a_total[5m])) / sum(rate(b_count{x="y"}[5m])) > bool 0`:                                                         "a_total b_count",
		`max by (stream, consumer) (chattap_consumer_pending_messages) or on (stream) vector(0)`:                                  "chattap_consumer_pending_messages",
		`{__name__=~"chattap_.+"}`: "",
	} {
		if got := strings.Join(promqlMetricNames(expr), " "); got != want {
			t.Errorf("promqlMetricNames(%s) = %q, want %q", expr, got, want)
		}
	}
}

// grafanaDashboard is what the test reads of a dashboard's JSON model.
type grafanaDashboard struct {
	Title  string         `json:"title"`
	UID    string         `json:"uid"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// TestDashboardQueriesWhatChattapExports runs chattap with traffic that
// reaches every stage (a proxied webhook, a refused add-on callback, one
// sink that delivers and one that dead-letters), scrapes /metrics, and
// checks that every metric deploy/grafana/chattap.json queries is one that
// chattap exports.
func TestDashboardQueriesWhatChattapExports(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/chattap.json")
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("deploy/grafana/chattap.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard without title or uid: %q %q", d.Title, d.UID)
	}

	rec := &segmentReceiver{}
	seg := httptest.NewServer(rec)
	defer seg.Close()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "no", http.StatusBadRequest)
	}))
	defer refusing.Close()
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `[{"packet":{"name":"message","payload":{"body":"Hi, how can I help?"}}}]`)
	}))
	defer bot.Close()
	in := start(t, "CHATTAP_BOT_WEBHOOK_URL="+bot.URL, "CHATTAP_SEGMENT_WRITE_KEY=wk", "CHATTAP_SEGMENT_ENDPOINT="+seg.URL,
		"CHATTAP_WEBHOOK_SINK_URL="+refusing.URL, "CHATTAP_SINK_FLUSH_INTERVAL=20ms", "CHATTAP_FILE_SINK_PATH=", "CHATTAP_ADDON_TOKEN=addon-secret")
	if code, _ := in.post(t, "/userlike/webhook", webhook("c-dashboard"), nil); code != 200 {
		t.Fatalf("webhook: %d", code)
	}
	if code, _ := in.post(t, "/userlike/addon", `{"_type":"operator","_event":"online"}`, nil); code != http.StatusForbidden {
		t.Fatalf("add-on callback without its token: %d, want 403", code)
	}
	live := []string{"chattap_tap_requests_total", "chattap_tap_overhead_seconds_bucket", "chattap_tap_upstream_seconds_bucket", "chattap_tap_forbidden_total",
		"chattap_records_published_total", "chattap_mapper_observations_total", "chattap_mapper_events_published_total",
		"chattap_consumer_pending_messages", "chattap_consumer_ack_pending_messages", "chattap_sink_delivered_total", "chattap_sink_dead_lettered_total",
		"chattap_sink_delivery_seconds_bucket", "process_resident_memory_bytes"}
	var scrape string
	for deadline := time.Now().Add(20 * time.Second); ; {
		_, scrape = in.get(t, "/metrics", nil)
		names := scrapedNames(scrape)
		missing := slices.DeleteFunc(slices.Clone(live), func(n string) bool { return names[n] })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a chattap that has seen traffic does not export %v:\n%s", missing, scrape)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{`chattap_consumer_pending_messages{consumer="mapper-00",stream="CHATTAP_RAW"}`, `chattap_consumer_pending_messages{consumer="mapper-legacy",stream="CHATTAP_RAW"}`, `chattap_consumer_pending_messages{consumer="sink-segment",stream="CHATTAP_EVENTS"}`, `chattap_sink_dead_lettered_total{class="http_400",sink="webhook"}`} {
		if !strings.Contains(scrape, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	exported := exportedNames(scrape)
	queried := map[string]bool{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			names := promqlMetricNames(target.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q selects no metric", p.Title, target.Expr)
			}
			for _, n := range names {
				queried[n] = true
				if !exported[n] {
					t.Errorf("panel %q queries %s, which chattap does not export", p.Title, n)
				}
			}
		}
	}
	// The dashboard shows what the issue asks: exchanges and tap overhead,
	// observations and events per second, consumer lag, deliveries and
	// dead letters per sink.
	for _, n := range []string{"chattap_tap_requests_total", "chattap_tap_overhead_seconds_bucket", "chattap_records_published_total",
		"chattap_mapper_events_published_total", "chattap_consumer_pending_messages", "chattap_sink_delivered_total", "chattap_sink_dead_lettered_total"} {
		if !queried[n] {
			t.Errorf("the dashboard does not query %s", n)
		}
	}
}
