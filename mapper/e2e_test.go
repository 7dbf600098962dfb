package mapper_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/metrics"
	"github.com/chattap/chattap/spec"
)

// TestWholePath posts a full bot conversation, a Custom Channel
// conversation and an add-on session with a transcript to chattap's taps,
// runs the mapper on the embedded JetStream, and compares the exact
// Segment messages on CHATTAP_EVENTS, per contact and in order, with
// testdata/golden/whole_path.json. Clock and ids are fixed, so the file
// holds the bytes an analyst would see.
func TestWholePath(t *testing.T) {
	s := brokertest.Start(t)

	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev spec.ChatbotEvent
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &ev)
		w.Header().Set("Content-Type", "application/json")
		switch ev.Name() {
		case "start":
			io.WriteString(w, `{}`)
		case "message":
			io.WriteString(w, `[{"packet":{"name":"message","payload":{"body":"Hi! I am the balance bot."}}},
				{"packet":{"name":"bubbles","payload":{"body":"What would you like?","options":[{"label":"My balance"},{"label":"A human"}]}}}]`)
		case "click":
			io.WriteString(w, `{"info":{"cid":"`+string(ev.Info.Cid)+`"},"packet":{"name":"message","payload":{"body":"Your balance is 42 EUR. Bye!"}}}`)
		default:
			io.WriteString(w, `{"packet":{"name":"end","payload":{}}}`)
		}
	}))
	t.Cleanup(bot.Close)
	userlike := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":"ok"}`) }))
	t.Cleanup(userlike.Close)

	var mu sync.Mutex
	clock, ids := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), 0
	reg := metrics.New()
	im := metrics.NewIngest(reg)
	pub, err := ingest.NewPublisher(s.Conn, 1000, 64, 5*time.Second, slog.New(slog.DiscardHandler), im)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ingest.New(ingest.Deps{
		Options: ingest.Options{
			BotWebhookURL: bot.URL, UserlikeAPIURL: userlike.URL, ChannelInboundURL: userlike.URL, ChannelOutboundURL: userlike.URL,
			MaxBodyBytes: 1 << 20, UpstreamTimeout: 5 * time.Second, TapAck: ingest.AckSync, TapAckTimeout: 5 * time.Second,
			AddonAckTimeout: 5 * time.Second, PublishBuffer: 1000, PublishWindow: 64,
		},
		Publisher: pub, Metrics: im,
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			clock = clock.Add(time.Second)
			return clock
		},
		NewID: func() string {
			mu.Lock()
			defer mu.Unlock()
			ids++
			return fmt.Sprintf("0193c5e4-0000-7000-8000-%012d", ids)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	taps := httptest.NewServer(srv)
	t.Cleanup(taps.Close)
	startRunner(t, s.JS, nil, mapper.RunnerOptions{Workers: 4})

	const cid = "chatbot::258:a56785fb6fb84edd890905913b0c0821"
	contact := `"contact":{"id":48213,"name":"Maria Schmidt","email":"maria@example.org","external_customer_id":"CRM-00042"},"widget":{"id":7001,"name":"Support DE"}`
	for _, step := range []struct{ route, body string }{
		{ingest.RouteWebhook, `{"info":{"cid":"` + cid + `",` + contact + `},"packet":{"name":"start","payload":{}}}`},
		{ingest.RouteWebhook, `{"info":{"cid":"` + cid + `",` + contact + `},"packet":{"name":"message","payload":{"body":"What is my balance?"}}}`},
		{ingest.RouteWebhook, `{"info":{"cid":"` + cid + `",` + contact + `},"packet":{"name":"click","payload":{"option":1}}}`},
		{ingest.RouteAPI, `{"info":{"cid":"` + cid + `"},"packet":{"name":"end","payload":{}}}`},

		{ingest.RouteChannelInbound, `{"contact_id":"+4917055512345","name":"Bob","message":{"body":"Hello, is my order shipped?"}}`},
		{ingest.RouteChannelOutbound, `{"contact_id":"+4917055512345","message":{"body":"Yes, it left today.","event":"message","operator":{"id":311,"name":"Jonas Weber"}}}`},
		{ingest.RouteChannelInbound, `{"contact_id":"+4917055512345","message":{"body":"Thanks!"}}`},

		{ingest.RouteAddon, `{"_type":"chat_meta","_event":"start","id":3217455,"chat_widget":{"id":12,"name":"Website DE"},"client_name":"Peter Lustig","client_email":"peter@example.com","created_at":"2026-11-21 10:00:20","operator_current":{"id":57,"name":"Anna Becker"},"messages":[]}`},
		{ingest.RouteAddon, `{"_type":"chat_meta","_event":"message_received","chat_meta_id":3217455,"id":1,"message":"Wo ist mein Paket?","sent_at":"2026-11-21 10:00:25"}`},
		{ingest.RouteAddon, `{"_type":"chat_meta","_event":"receive","id":3217455,"chat_widget":{"id":12,"name":"Website DE"},"client_name":"Peter Lustig","client_email":"peter@example.com","created_at":"2026-11-21 10:00:20","ended_at":"2026-11-21 10:02:00","duration":"00:01:40","operator_current":{"id":57,"name":"Anna Becker"},
			"messages":[{"message":"Wo ist mein Paket?","person":"Peter Lustig","sent_at":"2026-11-21 10:00:25","type":"co"},{"message":"Es kommt morgen.","person":"Anna Becker","sent_at":"2026-11-21 10:01:00","type":"op"},{"message":"Danke!","person":"Peter Lustig","sent_at":"2026-11-21 10:01:30","type":"co"}]}`},
	} {
		resp, err := http.Post(taps.URL+step.route, "application/json", strings.NewReader(step.body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d", step.route, resp.StatusCode)
		}
	}
	waitRaw(t, s, 10) // one record per exchange
	waitMapped(t, s.JS)

	got := map[string][]spec.Message{}
	for _, m := range messagesOnStream(t, s.JS) {
		got[m.AnonymousID] = append(got[m.AnonymousID], m)
	}
	if len(got) != 3 {
		t.Errorf("%d contacts on CHATTAP_EVENTS, want 3", len(got))
	}
	compareGoldenValue(t, filepath.Join("testdata", "golden", "whole_path.json"), got)
}

// waitRaw waits until the taps stored n records.
func waitRaw(t *testing.T, s *brokertest.Server, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := s.JS.Stream(t.Context(), spec.StreamRaw)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records on CHATTAP_RAW, want %d", info.State.Msgs, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
