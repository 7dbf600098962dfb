package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium to drive, or skips the test: CI sets
// CHATTAP_BROWSER_TEST=require, and then a missing browser fails it
// (and =skip while the other tests run, so that a browser under load does
// not take their CPU).
func chromium(t *testing.T) string {
	t.Helper()
	if os.Getenv("CHATTAP_BROWSER_TEST") == "skip" {
		t.Skip("CHATTAP_BROWSER_TEST=skip: .ci/run runs the browser test on its own, after the other tests")
	}
	if p := os.Getenv("CHATTAP_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CHATTAP_BROWSER_TEST") == "require" {
		t.Fatal("CHATTAP_BROWSER_TEST=require but no chromium is installed (apt-get install chromium)")
	}
	t.Skip("no chromium installed: the browser test needs Debian's chromium (apt-get install chromium), or CHATTAP_CHROMIUM=/path")
	return ""
}

// browser starts a headless Chromium of 1400×900 for the test. The flags
// keep it off the network: without them it keeps trying to reach Google.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// fakeBot answers each webhook the way a small bot would: a greeting for
// start, an answer for each message.
func fakeBot(t *testing.T) *httptest.Server {
	t.Helper()
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Info struct {
				Cid string `json:"cid"`
			} `json:"info"`
			Packet struct {
				Name    string `json:"name"`
				Payload struct {
					Body string `json:"body"`
				} `json:"payload"`
			} `json:"packet"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		reply := "Hi! I am the balance bot. How can I help?"
		if in.Packet.Name == "message" {
			reply = "Thanks! Let me look that up: " + in.Packet.Payload.Body
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"info":{"cid":%q},"packet":{"name":"message","payload":{"body":%q}}}`, in.Info.Cid, reply)
	}))
	t.Cleanup(bot.Close)
	return bot
}

// chatbotEvent is a webhook from Userlike: start, or a message with body,
// from a contact whose name is the conversation's (see contacts).
func chatbotEvent(cid, name, body string) string {
	contact := cmp.Or(contacts[cid], "Ada Lovelace")
	if name == "start" {
		return fmt.Sprintf(`{"info":{"cid":%q,"approach_mode":"normal","contact":{"name":%q},"widget":{"id":"7","name":"Support"}},"packet":{"name":"start","payload":{}}}`, cid, contact)
	}
	return fmt.Sprintf(`{"info":{"cid":%q,"contact":{"name":%q},"widget":{"id":"7","name":"Support"}},"packet":{"name":"message","payload":{"body":%q}}}`, cid, contact, body)
}

var contacts = map[string]string{"chatbot::258:0b0b5e11e2a94c4fa3c1d0e6c0ffee42": "Bob Okafor"}

// pageJS evaluates expr in the page and returns its value.
func pageJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// do runs steps that return nothing, or fails the test.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// click clicks what the CSS selector finds first, from the page's own
// script: the rows are rebuilt as messages come, so a node looked up by
// the protocol may be gone by the time it is clicked.
func click(t *testing.T, ctx context.Context, selector string) {
	t.Helper()
	if !pageJS[bool](t, ctx, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true; })()`, selector)) {
		t.Fatalf("nothing to click at %s", selector)
	}
}

// waitJS waits until expr is true in the page, up to 15 seconds (or
// limit, with waitJSWithin). A poll
// that a navigation interrupts (its execution context is gone) is started
// again.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	waitJSWithin(t, ctx, 15*time.Second, what, expr)
}

func waitJSWithin(t *testing.T, ctx context.Context, limit time.Duration, what, expr string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		_, err := chromedp.Run(wctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond)))
		if err == nil {
			return
		}
		if wctx.Err() != nil {
			status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('status-line').textContent + ' | ' + document.getElementById('conn-text').textContent`))
			t.Fatalf("%s: not seen within %v (%v); page says: %s", what, limit, err, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rowJS is an expression for the rows shown for conversation cid.
func rowJS(cid string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#rows .row')].filter(r => (r.querySelector('.conv')||{}).textContent === %q)`, cid)
}

func chipsJS(cid string) string {
	return rowJS(cid) + `.flatMap(r => [...r.querySelectorAll('.chip .name')].map(n => n.textContent))`
}

// TestDebuggerInTheBrowser opens /debugger in headless Chromium, sends
// conversations through the webhook tap, and checks what a user would:
// records and their events appear live and side by side, the filters and
// the pause work, the Record Live Chat Events toggle and a per-event
// switch reach the mapper, and the page keeps up with a thousand events a
// second. It saves a screenshot to $CHATTAP_DEBUGGER_SCREENSHOT (CI:
// docs/debugger.png) or the test's artifact directory.
func TestDebuggerInTheBrowser(t *testing.T) {
	ctx := browser(t, 2*time.Minute)
	const token = "dbg-Secret-7f3a9c"
	bot := fakeBot(t)
	natsAddr := brokertest.FreeAddr(t)
	in := start(t, "CHATTAP_ADMIN_TOKEN="+token, "CHATTAP_BOT_WEBHOOK_URL="+bot.URL,
		"CHATTAP_NATS_LISTEN="+natsAddr, "CHATTAP_FILE_SINK_PATH="+filepath.Join(t.TempDir(), "events.jsonl"))
	base := "http://" + in.addr

	// A wrong token is refused and the page asks for one.
	do(t, ctx, chromedp.Navigate(base+"/debugger#token=wrong"))
	waitJS(t, ctx, "the sign-in form after a wrong token", `!document.getElementById('signin').hidden && document.getElementById('signin-error').textContent.includes('refused')`)

	// The form signs in, and the tab remembers the token: a new visit of
	// /debugger does not ask again.
	do(t, ctx, chromedp.SendKeys("#token", token))
	click(t, ctx, "#signin-form button")
	waitJS(t, ctx, "the stream going live after the form", `document.getElementById('conn').classList.contains('live')`)
	do(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/debugger"))
	waitJS(t, ctx, "the stream going live without asking again", `document.getElementById('conn').classList.contains('live') && document.getElementById('signin').hidden`)

	// The fragment signs in too, and leaves the address bar at once.
	pageJS[bool](t, ctx, `(sessionStorage.clear(), true)`)
	do(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/debugger#token="+token))
	waitJS(t, ctx, "the stream going live", `document.getElementById('conn').classList.contains('live')`)
	href := pageJS[string](t, ctx, `location.href`)
	stored := pageJS[string](t, ctx, `sessionStorage.getItem('chattap-admin-token')`)
	if strings.Contains(href, token) || stored != token {
		t.Errorf("after signing in: address %q, session token %q", href, stored)
	}

	send := func(cid, name, body string) {
		t.Helper()
		if code, resp := in.post(t, "/userlike/webhook", chatbotEvent(cid, name, body), nil); code != http.StatusOK {
			t.Fatalf("webhook: %d %s", code, resp)
		}
	}
	ada := "chatbot::258:a56785fb6fb84edd890905913b0c0821"
	bob := "chatbot::258:0b0b5e11e2a94c4fa3c1d0e6c0ffee42"
	send(ada, "start", "")
	send(ada, "message", "Hello, I have a question about my balance.")
	send(bob, "start", "")
	// Newest first: the message and the bot's answer, then the start,
	// the contact's traits and the bot's greeting.
	waitJS(t, ctx, "Ada's records with their events", rowJS(ada)+`.every(r => r.querySelectorAll('.rec .inside li').length === 2) && `+
		chipsJS(ada)+`.join(',') === 'Message Sent,Message Received,identify,Conversation Started,Message Received'`)
	waitJS(t, ctx, "Bob's conversation", rowJS(bob)+`.length === 1`)
	inside := pageJS[string](t, ctx, rowJS(ada)+`.map(r => r.querySelector('.rec').textContent).join(' / ')`)
	for _, want := range []string{"chatbot.webhook", "chatbot.reply", "Hello, I have a question about my balance.", "How can I help?"} {
		if !strings.Contains(inside, want) {
			t.Errorf("Ada's records do not show %q: %s", want, inside)
		}
	}

	// Filter by conversation, then by event name.
	do(t, ctx, chromedp.SendKeys("#f-conv", "0b0b5e11"))
	waitJS(t, ctx, "only Bob after filtering", rowJS(ada)+`.length === 0 && `+rowJS(bob)+`.length === 1`)
	if n := pageJS[int](t, ctx, `document.querySelectorAll('#rows .row').length`); n != 1 {
		t.Errorf("conversation filter shows %d rows, want 1", n)
	}
	pageJS[bool](t, ctx, `(() => { const f = document.getElementById('f-conv'); f.value = ''; f.dispatchEvent(new Event('input'));
		const e = document.getElementById('f-event'); e.value = 'Live Chat Message Sent'; return e.dispatchEvent(new Event('change')); })()`)
	waitJS(t, ctx, "only rows with a Message Sent", `(() => { const rows = [...document.querySelectorAll('#rows .row')];
		return rows.length === 1 && rows.every(r => [...r.querySelectorAll('.chip .name')].some(c => c.textContent === 'Message Sent')); })()`)
	pageJS[bool](t, ctx, `(() => { const e = document.getElementById('f-event'); e.value = ''; return e.dispatchEvent(new Event('change')); })()`)
	waitJS(t, ctx, "every row again", rowJS(ada)+`.length === 2 && `+rowJS(bob)+`.length === 1`)

	// Pause: what comes meanwhile is counted, not shown, until resumed.
	click(t, ctx, "#pause")
	send(bob, "message", "Is my card blocked?")
	waitJS(t, ctx, "messages counted while paused", `window.chattapDebugger.whilePaused >= 3`)
	if n := pageJS[int](t, ctx, rowJS(bob)+`.length`); n != 1 {
		t.Errorf("paused page shows %d of Bob's rows, want still 1", n)
	}
	click(t, ctx, "#pause")
	waitJS(t, ctx, "Bob's new exchange after resuming", rowJS(bob)+`.length === 2`)

	// Click an event: its JSON.
	pageJS[bool](t, ctx, `(() => { `+rowJS(ada)+`[0].querySelector('.chip.t-sent').click(); return true; })()`)
	detail := pageJS[string](t, ctx, `document.getElementById('detail').textContent`)
	if !strings.Contains(detail, `"event": "Live Chat Message Sent"`) || !strings.Contains(detail, `"message_body": "Hello, I have a question about my balance."`) || !strings.Contains(detail, spec.HeaderRecord) {
		t.Errorf("detail of Message Sent:\n%s", detail)
	}

	// Switch Message Received off: the next exchange yields only Sent.
	const received = `#counts input[data-event="Live Chat Message Received"]`
	waitJS(t, ctx, "the per-event switches", `!!document.querySelector('`+received+`')`)
	click(t, ctx, received)
	waitSetting(t, in, token, `"disabled_events":["Live Chat Message Received"]`)
	send(bob, "message", "Thank you")
	waitJS(t, ctx, "Bob's third exchange with Message Sent only", rowJS(bob)+`.length === 3 && `+rowJS(bob)+`[0].querySelectorAll('.chip').length === 1 && `+rowJS(bob)+`[0].querySelector('.chip.t-sent') !== null`)
	waitMapperDone(t, "nats://"+natsAddr, 15*time.Second)
	if n := pageJS[int](t, ctx, rowJS(bob)+`[0].querySelectorAll('.chip').length`); n != 1 {
		t.Errorf("with Message Received switched off, Bob's exchange has %d events, want 1", n)
	}
	waitJS(t, ctx, "the switch reading off", `!document.querySelector('`+received+`').checked`)
	click(t, ctx, received)
	waitSetting(t, in, token, `"record_live_chat_events":true}`)

	// Record Live Chat Events off: the record is stored, no event comes.
	click(t, ctx, "label.toggle")
	waitSetting(t, in, token, `"record_live_chat_events":false`)
	send(ada, "message", "This one is recorded, not mapped")
	waitJS(t, ctx, "the record made while recording is off", rowJS(ada)+`.length === 3`)
	waitMapperDone(t, "nats://"+natsAddr, 15*time.Second)
	time.Sleep(300 * time.Millisecond) // an event, were there one, would be on the page by now
	if n := pageJS[int](t, ctx, rowJS(ada)+`[0].querySelectorAll('.chip').length`); n != 0 {
		t.Errorf("with recording off the new record has %d events on the page", n)
	}
	click(t, ctx, "label.toggle")
	waitSetting(t, in, token, `"record_live_chat_events":true`)
	send(ada, "message", "My card number ends in 4711")
	waitJS(t, ctx, "Ada's exchange after recording is back on", rowJS(ada)+`.length === 4 && `+rowJS(ada)+`[0].querySelectorAll('.chip').length === 2`)

	// The screenshot: counts and sinks polled, one event opened.
	waitJS(t, ctx, "the file sink's state", `!!document.querySelector('#sinks tr[data-sink="file"]')`)
	pageJS[bool](t, ctx, `(() => { `+rowJS(ada)+`[0].querySelector('.chip.t-received').click(); return true; })()`)
	time.Sleep(2500 * time.Millisecond) // one more poll of the counts
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.ArtifactDir(), "debugger.png")
	if p := os.Getenv("CHATTAP_DEBUGGER_SCREENSHOT"); p != "" {
		shot = p
		if !filepath.IsAbs(p) {
			shot = filepath.Join("..", "..", p)
		}
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)

	loadTheDebugger(t, ctx, "nats://"+natsAddr)

	if strings.Contains(in.stderr.String(), token) || strings.Contains(in.stdout.String(), token) {
		t.Error("the admin token appears in chattap's output")
	}
}

// waitSetting waits until GET /admin/settings holds want.
func waitSetting(t *testing.T, in *instance, token, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := in.get(t, "/admin/settings", map[string]string{"Authorization": "Bearer " + token})
		if strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("settings never held %s: %s", want, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitMapperDone waits until the mapper acked everything on CHATTAP_RAW.
func waitMapperDone(t *testing.T, url string, limit time.Duration) {
	t.Helper()
	_, js := brokertest.Connect(t, url)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		st, err := js.Stream(t.Context(), spec.StreamRaw)
		if err != nil {
			t.Fatal(err)
		}
		si, err := st.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		// One consumer per partition: the one holding the last record has
		// acked it, and none has anything pending or unacked.
		var floor uint64
		done := true
		for _, lane := range (mapper.RunnerOptions{}).Lanes() {
			c, err := js.Consumer(t.Context(), spec.StreamRaw, lane.Durable)
			if err != nil {
				done = false
				break
			}
			info, err := c.Info(t.Context())
			if err != nil || info.NumAckPending > 0 || info.NumPending > 0 {
				done = false
				break
			}
			floor = max(floor, info.AckFloor.Stream)
		}
		if done && floor >= si.State.LastSeq {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the mapper did not finish within %v", limit)
}
