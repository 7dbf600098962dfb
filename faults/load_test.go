//go:build faults

package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Routes of the taps.
const (
	routeWebhook  = "/userlike/webhook"
	routeAPI      = "/userlike/api"
	routeOutbound = "/userlike/channel/outbound"
	routeInbound  = "/userlike/channel/inbound"
	routeAddon    = "/userlike/addon"
)

// exchange is one request of the load and what its caller got.
type exchange struct {
	Marker string
	Route  string
	Status int
	Err    error
	At     time.Time
	Body   []byte
	// Retried counts the add-on's 503s (and connection errors) sent again.
	Retried int
}

// Accepted reports whether the caller got a 2xx: chattap promised to record it.
func (e exchange) Accepted() bool { return e.Err == nil && e.Status >= 200 && e.Status < 300 }

// load drives conversations of every flow, each conversation in order on
// one worker, a pause between requests. It is deterministic given its
// seed, except for timing.
type load struct {
	Conversations int
	Workers       int
	Pause         time.Duration // between two requests of one worker
	Seed          uint64
	// Poison, when set, is written into one contact message per this many
	// conversations; a case's receiver refuses the events carrying it.
	Poison int
	// AddonRetries bounds how often a refused add-on callback is sent
	// again (0: 20 times).
	AddonRetries int

	run    string
	seq    atomic.Int64
	client *http.Client
	mu     sync.Mutex
	done   []exchange
}

// Poison word a receiver can look for.
const poisonWord = "POISON-PILL"

func (l *load) String() string {
	return fmt.Sprintf("%d conversations (4 flows), %d workers", l.Conversations, l.Workers)
}

// Run drives every conversation against base() (read for each request,
// so a case may move chattap) and returns every exchange.
func (l *load) Run(ctx context.Context, base func() string) []exchange {
	if l.Workers == 0 {
		l.Workers = 4
	}
	l.run = fmt.Sprintf("%06x", l.Seed&0xffffff)
	l.client = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: l.Workers}}
	next := make(chan int)
	var wg sync.WaitGroup
	for range l.Workers {
		wg.Go(func() {
			for n := range next {
				l.conversation(ctx, base, n)
			}
		})
	}
	for n := range l.Conversations {
		select {
		case next <- n:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]exchange(nil), l.done...)
}

// request is one step of a conversation.
type request struct {
	route, tokenHeader, token string
	body                      func(marker string) string
}

func (l *load) conversation(ctx context.Context, base func() string, n int) {
	rng := rand.New(rand.NewPCG(l.Seed, uint64(n)))
	var steps []request
	switch n % 4 {
	case 0, 1:
		steps = l.chatbot(n, rng)
	case 2:
		steps = l.channel(n, rng)
	case 3:
		steps = l.addon(n, rng)
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			return
		}
		l.send(ctx, base, s)
		select {
		case <-ctx.Done():
		case <-time.After(l.Pause):
		}
	}
}

func (l *load) marker() string {
	return fmt.Sprintf("fxm-%s-%06d", l.run, l.seq.Add(1))
}

func (l *load) text(n int, rng *rand.Rand, what string) string {
	words := []string{"balance", "order", "delivery", "refund", "invoice", "password", "tracking", "account"}
	s := fmt.Sprintf("%s about my %s, conversation %d", what, words[rng.IntN(len(words))], n)
	if l.Poison > 0 && n%l.Poison == l.Poison-1 && what == "question" {
		s += " " + poisonWord
	}
	return s
}

func (l *load) chatbot(n int, rng *rand.Rand) []request {
	cid := fmt.Sprintf("chatbot::258:fx%s%08d", l.run, n)
	contact := ""
	if n%2 == 0 {
		contact = fmt.Sprintf(`"id":%d,"name":"Contact %d","email":"c%d-%s@example.com"`, 5000+n, n, n, l.run)
	}
	hook := func(name, payload func(m string) string) request {
		return request{routeWebhook, "SECURITY-TOKEN", webhookToken, func(m string) string {
			return fmt.Sprintf(`{"info":{"approach_mode":"normal","cid":%q,"contact":{%s},"context":{"fx":%q},"conversation":{},"widget":{"id":%d,"name":"Support"}},"packet":{"name":%q,"payload":%s}}`,
				cid, contact, m, 10+n%3, name(m), payload(m))
		}}
	}
	lit := func(s string) func(string) string { return func(string) string { return s } }
	msg := func(text string) func(string) string {
		return func(m string) string { return fmt.Sprintf(`{"body":%q}`, text+" "+m) }
	}
	steps := []request{hook(lit("start"), lit(`{}`))}
	for range 1 + rng.IntN(3) {
		steps = append(steps, hook(lit("message"), msg(l.text(n, rng, "question"))))
	}
	if n%4 == 1 {
		steps = append(steps, hook(lit("click"), lit(`{"option":1}`)))
	}
	steps = append(steps, request{routeAPI, "SECURITY-TOKEN", apiToken, func(m string) string {
		return fmt.Sprintf(`{"info":{"cid":%q,"context":{"fx":%q}},"packet":{"name":"message","payload":{"body":"Still there? %s"}}}`, cid, m, m)
	}})
	if n%4 == 0 {
		steps = append(steps, hook(lit("message"), func(m string) string { return fmt.Sprintf(`{"body":"bye %s"}`, m) }))
	}
	return steps
}

func (l *load) channel(n int, rng *rand.Rand) []request {
	contact := fmt.Sprintf("customer-%s-%d@example.org", l.run, n)
	in := func(text string) request {
		return request{routeInbound, "API-SECURITY-TOKEN", inboundToken, func(m string) string {
			return fmt.Sprintf(`{"contact_id":%q,"name":"Customer %d","message":{"body":"%s %s"}}`, contact, n, text, m)
		}}
	}
	out := func(text, event string) request {
		return request{routeOutbound, "API-SECURITY-TOKEN", outboundToken, func(m string) string {
			return fmt.Sprintf(`{"contact_id":%q,"message":{"body":"%s %s","event":%q,"is_deleted":false,"operator":{"id":%d,"name":"Operator %d"}}}`, contact, text, m, event, 300+n%5, n%5)
		}}
	}
	steps := []request{in(l.text(n, rng, "question")), out("Let me check", "message"), in(l.text(n, rng, "thanks")), out("You are welcome", "message")}
	if n%8 == 2 {
		steps = append(steps, out("Closing", "conversation_closed"))
	}
	return steps
}

func (l *load) addon(n int, rng *rand.Rand) []request {
	id := 7000000 + n
	created := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute)
	at := func(d time.Duration) string { return created.Add(d).Format("2006-01-02 15:04:05") }
	op := fmt.Sprintf(`{"id":"%d","name":"Operator %d","first_name":"Op","last_name":"%d","email":null,"operator_group":null}`, 400+n%3, n%3, n%3)
	q := l.text(n, rng, "question")
	cb := func(f func(m string) string) request {
		return request{routeAddon, "X-Chattap-Token", addonToken, f}
	}
	return []request{
		cb(func(m string) string {
			return fmt.Sprintf(`{"_type":"chat_session","_event":"start","id":%d,"fx":%q,"chat_widget":{"id":"12","name":"Website"},"client_name":"Client %d","client_uuid":"uuid-%s-%d","created_at":%q,"operator_current":%s}`, id, m, n, l.run, n, at(0), op)
		}),
		cb(func(m string) string {
			return fmt.Sprintf(`{"_type":"chat_session","_event":"message_received","session_id":%d,"id":"m-%d-1","fx":%q,"messages":[{"message":"%s %s","person":"Client","sent_at":%q,"type":"co"}]}`, id, n, m, q, m, at(10*time.Second))
		}),
		cb(func(m string) string {
			return fmt.Sprintf(`{"_type":"chat_session","_event":"message_sent","session_id":%d,"message_id":"m-%d-2","fx":%q,"body":"On it %s","sent_at":%q,"operator_current":%s}`, id, n, m, m, at(20*time.Second), op)
		}),
		cb(func(m string) string {
			return fmt.Sprintf(`{"_type":"chat_session","_event":"end","id":%d,"fx":%q,"chat_widget":{"id":"12","name":"Website"},"client_name":"Client %d","client_uuid":"uuid-%s-%d","created_at":%q,"ended_at":%q,"duration":"00:01:00","operator_current":%s,"messages":[{"message":"A transcript-only line %s","person":"Client","sent_at":%q,"type":"co"},{"message":"Thanks for waiting %s","person":"Op","sent_at":%q,"type":"op"}]}`,
				id, m, n, l.run, n, at(0), at(time.Minute), op, m, at(30*time.Second), m, at(40*time.Second))
		}),
	}
}

// send posts one request; an add-on answered 503 is sent again after its
// Retry-After (at most 1 s here), as Userlike does, up to AddonRetries times.
func (l *load) send(ctx context.Context, base func() string, s request) {
	m := l.marker()
	body := []byte(s.body(m))
	ex := exchange{Marker: m, Route: s.route, Body: body}
	for attempt := 0; ; attempt++ {
		ex.At = time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base()+s.route, bytes.NewReader(body))
		if err != nil {
			ex.Err = err
			break
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(s.tokenHeader, s.token)
		resp, err := l.client.Do(req)
		ex.Err, ex.Status = err, 0
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ex.Status = resp.StatusCode
		}
		retries := l.AddonRetries
		if retries == 0 {
			retries = 20
		}
		if s.route != routeAddon || attempt >= retries || !(err != nil || ex.Status == http.StatusServiceUnavailable) {
			break
		}
		wait := time.Second
		if err == nil {
			if ra, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil {
				wait = min(wait, time.Duration(ra)*time.Second)
			}
		}
		ex.Retried++
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	l.mu.Lock()
	l.done = append(l.done, ex)
	l.mu.Unlock()
}
