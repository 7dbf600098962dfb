//go:build faults

package faults_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/spec"
)

// Case 9: the embedded server's store fills up (a small tmpfs, filled by
// the test), then space returns. The chat goes on meanwhile, /readyz and
// the log show the failure, and recording resumes.
func TestCase9DiskFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+pick("96m", "256m"), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("case 9 needs a small tmpfs for the store and this machine does not allow mounting one (mount: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })

	w := newWorld(t)
	port := brokertest.FreePort(t)
	env := embeddedEnv(t, w, port, nil)
	env["CHATTAP_DATA_DIR"] = filepath.Join(dir, "data")
	env["CHATTAP_ADDON_ACK_TIMEOUT"] = "1s"
	c := newChattap(t, "chattap", env)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", port)
	small := func(seed uint64) *load {
		return &load{Conversations: pick(20, 200), Workers: 4, Pause: 10 * time.Millisecond, Seed: seed}
	}

	before, _ := drive(t, small(0x9a1), c.URL, 0, nil)

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the store: %v", err)
			}
			break
		}
	}
	f.Close()
	logBefore := len(c.Tail(1 << 30))

	lf := small(0x9a2)
	lf.AddonRetries = 2
	full, _ := drive(t, lf, c.URL, 0, nil)
	// The taps run in this process, so the store's failure is a 200
	// "degraded" (a 503 would take the chat off a load balancer); a 503
	// says it too. Only "ready" hides it.
	readyCode, readyBody := c.Ready(t.Context())
	for deadline := time.Now().Add(5 * time.Second); isReady(readyCode, readyBody) && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		readyCode, readyBody = c.Ready(t.Context())
	}
	logDuring := c.Tail(1 << 30)[logBefore:]

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	t.Logf("space returned at %s", time.Now().Format("15:04:05.000"))
	// Recording resumes when the store writes again: wait for /readyz.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if isReady(c.Ready(t.Context())) {
			break
		}
	}
	la := small(0x9a3)
	la.AddonRetries = 2
	after, healed := drive(t, la, c.URL, 0, nil)
	// settle takes the stream as complete once its count has not moved for
	// 1.5 s, but the publisher can be quiet for longer while it still holds
	// records: the resend it made into the broken stream just before
	// JetStream was restarted is never answered, so it waits out its ack
	// timeout (5 s) and a retry pause (up to 2 s) before sending them again.
	// Read too early, the held records looked lost (the 22:11 run, and
	// 22:22 on branch disk2, where all 104 were stored 2 s later). So wait
	// until the publisher holds nothing, as the promise is about what it
	// stores in the end.
	for deadline := time.Now().Add(30 * time.Second); c.Metric("chattap_records_buffered") != 0 && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
	}
	if held := c.Metric("chattap_records_buffered"); held != 0 {
		t.Errorf("the publisher still holds %v records 30 s after the third load", held)
	}
	all := append(append(append([]exchange(nil), before...), full...), after...)
	r, _ := settle(t, w, natsURL, all, healed, recoveryBound(env))
	recs := readStream(t, natsURL, "CHATTAP_RAW")
	o := mapRecords(t, recs)
	lostFull, lostAfter, proxiedRefused, addonRefused := 0, 0, 0, 0
	for _, e := range full {
		if !e.Accepted() {
			if e.Route == routeAddon {
				addonRefused++
			} else {
				proxiedRefused++
			}
		} else if o.Markers[e.Marker] == 0 {
			lostFull++
		}
	}
	for _, e := range after {
		if e.Accepted() && o.Markers[e.Marker] == 0 {
			lostAfter++
		}
	}
	storeErr := regexp.MustCompile(`(?i)[^\n]*(no space|insufficient|resources|disk|storage)[^\n]*`).FindString(logDuring)
	r.Case, r.Load = "9 store full (tmpfs "+pick("96m", "256m")+"), then space returns", fmt.Sprintf("3 × %s", small(0))
	r.Recovery = 0 // a recovery, if any, shows as "after: not recorded 0"
	r.Note = fmt.Sprintf("while full: proxied refused %d, add-on refused %d, accepted but not recorded %d; /readyz %d %q; log: %q; after: not recorded %d",
		proxiedRefused, addonRefused, lostFull, readyCode, trim(readyBody, 120), trim(storeErr, 160), lostAfter)
	report(t, r)
	if proxiedRefused > 0 {
		t.Errorf("the chat did not go on: %d proxied exchanges refused while the store was full", proxiedRefused)
	}
	if isReady(readyCode, readyBody) {
		t.Errorf("/readyz answered %d %s while the store was full", readyCode, readyBody)
	} else if !strings.Contains(readyBody, "unwritable") && !strings.Contains(readyBody, "JetStream") {
		t.Errorf("/readyz does not say why: %d %s", readyCode, readyBody)
	}
	if storeErr == "" {
		t.Errorf("the log says nothing about the full store")
	}
	if lostAfter > 0 {
		t.Errorf("recording did not resume: %d exchanges accepted after space returned have no record", lostAfter)
	}
	// The records the publisher held while the store was full must still
	// be stored in the order their exchanges were answered: a
	// conversation's exchanges go one after the other, so its markers
	// rise along CHATTAP_RAW.
	if late := outOfOrder(t, recs); len(late) > 0 {
		t.Errorf("%d records stored behind a later record of their conversation, e.g. %s", len(late), late[0])
	}
	r.Lost = 0 // what was lost while full is stated above
	assertClean(t, r, true, true)
}

// isReady is a /readyz answer of 200 "ready", neither degraded nor not ready.
func isReady(code int, body string) bool {
	return code == 200 && strings.Contains(body, `"ready"`)
}

func trim(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// outOfOrder lists the records stored after a record of the same
// conversation whose exchange came later (a higher marker of the load).
func outOfOrder(t *testing.T, recs []record) []string {
	t.Helper()
	last := map[string]int{}
	var late []string
	for _, r := range recs {
		list, err := spec.ReadRaw(r.Data)
		if err != nil || len(list) == 0 {
			continue
		}
		for _, mk := range markerRE.FindAll(r.Data, -1) {
			// Markers count per load ("fxm-<load>-<n>"): compare within one.
			conv := list[0].ConversationID + " " + string(mk[4:10])
			n, _ := strconv.Atoi(string(mk[len(mk)-6:]))
			if n < last[conv] {
				late = append(late, fmt.Sprintf("seq %d (%s) after marker %06d in %s", r.Seq, mk, last[conv], conv))
			}
			last[conv] = max(last[conv], n)
		}
	}
	return late
}
