package ingest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chattap/chattap/broker"
	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestOrderKeptWhenTheBrokerStopsAndDies drives conversations through the
// webhook tap, each one exchange after the other, while a real nats-server
// process is stopped, started, killed and started again. Every
// conversation's records must then be on CHATTAP_RAW in the order their
// exchanges were answered, none missing, none twice.
func TestOrderKeptWhenTheBrokerStopsAndDies(t *testing.T) {
	srv := brokertest.StartProcess(t, "")
	nc, js := brokertest.ConnectEnsured(t, srv.URL)
	bot := newUpstream(t, replyWith(http.StatusOK, map[string]string{"Content-Type": "application/json"}, `{"packet":{"name":"message","payload":{"body":"ok"}}}`))
	o := testOptions()
	o.BotWebhookURL = bot.URL
	o.PublishBuffer = 100000
	o.PublishWindow = 256
	h := newHarness(t, nc, js, o)

	const conversations = 8
	var stop atomic.Bool
	answered := make([]int, conversations)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for c := range conversations {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				body := fmt.Sprintf(`{"info":{"cid":"order-%d"},"packet":{"name":"message","payload":{"body":"%d"}}}`, c, n)
				resp, err := client.Post(h.url+ingest.RouteWebhook, "application/json", strings.NewReader(body))
				if err != nil {
					t.Errorf("conversation %d exchange %d: %v", c, n, err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("conversation %d exchange %d: %d", c, n, resp.StatusCode)
					return
				}
				answered[c] = n + 1
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	pause := func() { time.Sleep(400 * time.Millisecond) }
	pause()
	srv.Stop()
	pause()
	srv.Start()
	pause()
	srv.Kill()
	pause()
	srv.Start()
	pause()
	stop.Store(true)
	wg.Wait()
	waitFor(t, "the publisher to store every record", func() bool { return h.pub.Held() == 0 })

	seen := make([][]int, conversations)
	total := 0
	for _, r := range allRecords(t, js) {
		if len(r) != 2 {
			t.Fatalf("a record of %d observations, want the webhook and the reply", len(r))
		}
		var ev struct {
			Info   struct{ Cid string }
			Packet struct{ Payload struct{ Body string } }
		}
		if err := json.Unmarshal(r[0].Payload, &ev); err != nil {
			t.Fatal(err)
		}
		c, _ := strconv.Atoi(strings.TrimPrefix(ev.Info.Cid, "order-"))
		n, _ := strconv.Atoi(ev.Packet.Payload.Body)
		seen[c] = append(seen[c], n)
		total++
	}
	sum := 0
	for c := range conversations {
		sum += answered[c]
		if len(seen[c]) != answered[c] {
			t.Errorf("conversation %d: %d records stored, %d exchanges answered", c, len(seen[c]), answered[c])
		}
		for i, n := range seen[c] {
			if n != i {
				t.Errorf("conversation %d: record %d on the stream is exchange %d (order %v…)", c, i, n, seen[c][max(0, i-3):min(len(seen[c]), i+3)])
				break
			}
		}
	}
	if failed := h.reg.Gather("chattap_records_publish_failures_total", nil); failed == 0 {
		t.Error("no publish failed: the broker was never away while records were sent")
	}
	t.Logf("%d exchanges over %d conversations, %d records; %v rounds of failed publishes", sum, conversations, total, h.reg.Gather("chattap_records_publish_failures_total", nil))
}

// TestNoRespondersAreSentAgainInOrder: while CHATTAP_RAW has no responder
// (a stream leader election in a cluster; here the stream is absent for a
// moment), a publish is answered "no responders". nats.go would send it
// again on its own timer, and a later record of the same conversation,
// sent once the stream answers again, would be stored first; the
// publisher's own ordered resend must be the only one.
func TestNoRespondersAreSentAgainInOrder(t *testing.T) {
	s := brokertest.Start(t)
	pub := startPublisher(t, s.Conn, 5*time.Second, metrics.New())
	if err := s.JS.DeleteStream(t.Context(), spec.StreamRaw); err != nil {
		t.Fatal(err)
	}
	doneA := make(chan error, 1)
	if err := pub.Enqueue(oneEvent("A-first", "conv-x", `{"n":"A"}`), func(err error) { doneA <- err }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // A is answered "no responders"
	if err := broker.Ensure(t.Context(), s.JS, broker.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	doneB := make(chan error, 1)
	if err := pub.Enqueue(oneEvent("B-second", "conv-x", `{"n":"B"}`), func(err error) { doneB <- err }); err != nil {
		t.Fatal(err)
	}
	if errA, errB := <-doneA, <-doneB; errA != nil || errB != nil {
		t.Fatalf("A: %v, B: %v", errA, errB)
	}
	var order []string
	for _, obs := range allRecords(t, s.JS) {
		order = append(order, obs[0].Record)
	}
	if len(order) != 2 || order[0] != "A-first" {
		t.Errorf("conversation conv-x stored as %v, want [A-first B-second]", order)
	}
}

// allRecords reads every message on CHATTAP_RAW, in stream order.
func allRecords(t *testing.T, js jetstream.JetStream) [][]spec.Observation {
	t.Helper()
	st, err := js.Stream(t.Context(), spec.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(t.Context(), spec.StreamRaw, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]spec.Observation
	for uint64(len(out)) < info.State.Msgs {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("record %d of %d: %v", len(out)+1, info.State.Msgs, err)
		}
		obs, err := spec.ReadRaw(msg.Data())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, obs)
	}
	return out
}

// TestResendProbesBeforeOpeningTheWindow: a broker that comes back in the
// middle of a resend (JetStream restarted on a store that takes writes
// again, case 9 of the fault suite) can refuse the first records it is
// sent and store the later ones. Here a responder stands in for
// JetStream on CHATTAP_RAW's subjects: first there is none ("no
// responders"), then one that refuses the first publish it sees and
// stores every later one. Had the publisher resent its whole window at
// once, the first record would be stored behind the others; it must send
// the first alone until one is stored.
func TestResendProbesBeforeOpeningTheWindow(t *testing.T) {
	s := brokertest.Start(t)
	if err := s.JS.DeleteStream(t.Context(), spec.StreamRaw); err != nil {
		t.Fatal(err)
	}
	pub := startPublisher(t, s.Conn, 5*time.Second, metrics.New())
	const n = 8
	done := make(chan error, n)
	for i := range n {
		if err := pub.Enqueue(oneEvent(fmt.Sprintf("r%d", i), "conv-x", `{"n":1}`), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(30 * time.Millisecond) // the first is answered "no responders"

	var mu sync.Mutex
	var stored []string
	seen := 0
	sub, err := s.Conn.Subscribe(spec.SubjectRawPrefix+">", func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if seen++; seen == 1 {
			_ = m.Respond([]byte(`{"error":{"code":503,"err_code":10008,"description":"stream is being restored"}}`))
			return
		}
		stored = append(stored, m.Header.Get(jetstream.MsgIDHeader))
		_ = m.Respond(fmt.Appendf(nil, `{"stream":%q,"seq":%d}`, spec.StreamRaw, len(stored)))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for range n {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("records not stored within 10 s")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("r%d", i)
	}
	if !slices.Equal(stored, want) {
		t.Errorf("stored as %v, want %v", stored, want)
	}
}
