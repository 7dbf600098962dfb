package ingest_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/ingest"
	"github.com/chattap/chattap/metrics"
)

// benchReply is a typical bot answer: four events, one of them bubbles.
var benchReply = `[{"packet":{"name":"message","payload":{"body":"Thanks for your message. Let me check your order for you, one moment please."}}},` +
	`{"packet":{"name":"message","payload":{"body":"Your payment went through on Monday and the parcel should arrive soon."}}},` +
	`{"packet":{"name":"message","payload":{"body":"Is there anything else I can help you with?"}}},` +
	`{"packet":{"name":"bubbles","payload":{"body":"Pick one","options":[{"label":"Billing","value":"opt1"},{"label":"Delivery","value":"opt2"}]}}}]`

// benchWebhook is a contact's message as Userlike posts it.
var benchWebhook = `{"info":{"approach_mode":"normal","cid":"chatbot::258:a56785fb6fb84edd890905913b0c0821","contact":{"id":1042,"name":"Ada","email":"ada@example.com"},` +
	`"context":{"step":3},"conversation":{},"widget":{"id":10,"name":"Support"}},"packet":{"name":"message","payload":{"body":"` +
	strings.Repeat("I have a question about my balance. ", 6) + `"}}}`

// benchBot is an upstream that answers every webhook with benchReply.
func benchBot(b *testing.B) *httptest.Server {
	b.Helper()
	reply := []byte(benchReply)
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(reply)
	}))
	b.Cleanup(bot.Close)
	return bot
}

// serveBench sends benchWebhook to h once per iteration, in-process (no
// client connection: what is measured is the handler and its upstream
// exchange), and checks the answer.
func serveBench(b *testing.B, h http.Handler, after func()) {
	body := []byte(benchWebhook)
	want := len(benchReply)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, ingest.RouteWebhook, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Body.Len() != want {
			b.Fatalf("answer %d with %d bytes, want 200 with %d", rec.Code, rec.Body.Len(), want)
		}
	}
	if after != nil {
		after()
	}
}

// BenchmarkTapWebhook is the webhook tap: proxy to an httptest bot and
// record the request and the four events of the reply to an embedded
// JetStream. Allocations are the whole process's: the tap, the
// publisher, the bot and the embedded server storing five Observations.
// In async mode the loop also waits, at the end, until every Observation
// is stored, so their cost is in the figures.
func BenchmarkTapWebhook(b *testing.B) {
	for _, mode := range []string{ingest.AckAsync, ingest.AckSync} {
		b.Run(mode, func(b *testing.B) {
			bot := benchBot(b)
			s := brokertest.Start(b)
			o := ingest.Options{
				BotWebhookURL: bot.URL + "/webhook", MaxBodyBytes: 1 << 20, UpstreamTimeout: 5 * time.Second,
				TapAck: mode, TapAckTimeout: 250 * time.Millisecond, AddonAckTimeout: 2 * time.Second,
				PublishBuffer: 1 << 20, PublishWindow: 4096,
			}
			im := metrics.NewIngest(metrics.New())
			pub, err := ingest.NewPublisher(s.Conn, o.PublishBuffer, o.PublishWindow, 5*time.Second, slog.New(slog.DiscardHandler), im)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = pub.Stop(ctx)
			})
			srv, err := ingest.New(ingest.Deps{Options: o, Publisher: pub, Metrics: im})
			if err != nil {
				b.Fatal(err)
			}
			serveBench(b, srv, func() {
				for pub.Held() > 0 {
					time.Sleep(time.Millisecond)
				}
			})
		})
	}
}

// BenchmarkReverseProxyBaseline is a plain httputil.ReverseProxy to the
// same bot with the same transport tuning: what proxying alone costs.
func BenchmarkReverseProxyBaseline(b *testing.B) {
	bot := benchBot(b)
	target, _ := url.Parse(bot.URL + "/webhook")
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := *target
			pr.Out.URL = &u
			pr.Out.Host = ""
		},
		// The taps' own pool, so only the recording differs.
		Transport: ingest.NewTransport(5 * time.Second),
	}
	serveBench(b, proxy, nil)
}
