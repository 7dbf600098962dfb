package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chattap/chattap/broker/brokertest"
	"github.com/chattap/chattap/spec"
)

var adminListeningRE = regexp.MustCompile(`msg="admin listening" addr=(\S+)`)

// manifestContainer is the chattap container of the first workload in a
// manifest file.
func manifestContainer(t *testing.T, file string) k8sContainer {
	t.Helper()
	for _, o := range readManifests(t, filepath.Dir(file)) {
		if !strings.HasPrefix(o.file, filepath.ToSlash(file)+"#") {
			continue
		}
		for _, c := range o.Spec.Template.Spec.Containers {
			if c.isChattap() {
				return c
			}
		}
	}
	t.Fatalf("%s has no chattap container", file)
	return k8sContainer{}
}

// startAsWritten runs chattap serve with the container's environment
// (secrets stood in for as by environ), changing only what a test must:
// the port (":0", still every interface, as ":8080" is), the store's path,
// the NATS cluster's and the bot's and Segment's addresses, text logs
// (start reads the address from them) and a short sink flush.
func startAsWritten(t *testing.T, c k8sContainer, natsURL, botURL, segmentURL string) *instance {
	t.Helper()
	env := c.environ()
	manifest := c.env()
	env = append(env, "CHATTAP_LISTEN_ADDR=:0", "CHATTAP_LOG_FORMAT=text", "CHATTAP_SINK_FLUSH_INTERVAL=20ms", "CHATTAP_SEGMENT_ENDPOINT="+segmentURL)
	if _, ok := manifest["CHATTAP_NATS_URL"]; ok {
		env = append(env, "CHATTAP_NATS_URL="+natsURL)
	}
	if _, ok := manifest["CHATTAP_DATA_DIR"]; ok {
		env = append(env, "CHATTAP_DATA_DIR="+t.TempDir())
	}
	if _, ok := manifest["CHATTAP_BOT_WEBHOOK_URL"]; ok {
		env = append(env, "CHATTAP_BOT_WEBHOOK_URL="+botURL)
	}
	_, separateAdmin := manifest["CHATTAP_ADMIN_ADDR"]
	if separateAdmin {
		env = append(env, "CHATTAP_ADMIN_ADDR=:0")
	}
	in := start(t, env...)
	addr, err := loopbackTarget(in.addr)
	if err != nil {
		t.Fatal(err)
	}
	in.addr = addr
	if separateAdmin {
		m := adminListeningRE.FindStringSubmatch(in.stderr.String())
		if m == nil {
			t.Fatalf("no admin listener though CHATTAP_ADMIN_ADDR is set:\n%s", in.stderr)
		}
		admin, _ := loopbackTarget(m[1])
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("/metrics on the admin listener: %v %v", resp, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
		if code, _ := in.get(t, "/metrics", nil); code != http.StatusNotFound {
			t.Errorf("/metrics on the public listener: %d, want 404 with CHATTAP_ADMIN_ADDR", code)
		}
	}
	for _, p := range []*k8sProbe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			continue
		}
		if code, body := in.get(t, p.HTTPGet.Path, nil); code != http.StatusOK {
			t.Errorf("probe %s of the running chattap: %d %s", p.HTTPGet.Path, code, body)
		}
	}
	return in
}

// TestManifestsRunAsWritten starts chattap as each manifest configures it
// (the sidecar on its embedded store; the split layout's taps, mapper and
// sinks on a three-node NATS cluster with CHATTAP_STREAM_REPLICAS=3), asks
// each process its probes, and sends a webhook through each layout's tap
// with the token from the Secret: its events reach Segment.
func TestManifestsRunAsWritten(t *testing.T) {
	rec := &segmentReceiver{}
	seg := httptest.NewServer(rec)
	defer seg.Close()
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `[{"packet":{"name":"message","payload":{"body":"How can I help?"}}}]`)
	}))
	defer bot.Close()
	token := map[string]string{"SECURITY-TOKEN": "from-secret"}
	send := func(in *instance, cid string) {
		t.Helper()
		if code, _ := in.post(t, "/userlike/webhook", webhook(cid), nil); code != http.StatusForbidden {
			t.Errorf("%s: a webhook without the token: %d, want 403", cid, code)
		}
		if code, body := in.post(t, "/userlike/webhook", webhook(cid), token); code != http.StatusOK || !strings.Contains(body, "How can I help?") {
			t.Fatalf("%s: webhook: %d %s", cid, code, body)
		}
	}

	sidecar := startAsWritten(t, manifestContainer(t, "../../deploy/kubernetes/sidecar/chattap.yaml"), "", bot.URL, seg.URL)
	send(sidecar, "c-sidecar")

	cluster := brokertest.StartCluster(t, 3)
	split := map[string]*instance{}
	for _, role := range []string{"chatbot", "mapper", "sinks"} {
		split[role] = startAsWritten(t, manifestContainer(t, "../../deploy/kubernetes/split/"+role+".yaml"), cluster.URLs(), bot.URL, seg.URL)
	}
	send(split["chatbot"], "c-split")

	deadline := time.Now().Add(30 * time.Second)
	for {
		got := map[string][]string{}
		msgs, _ := rec.received()
		for _, m := range msgs {
			if cid, _ := m.Properties[spec.PropConversationID].(string); cid != "" {
				got[cid] = append(got[cid], m.Event)
			}
		}
		if len(got["c-sidecar"]) >= 3 && len(got["c-split"]) >= 3 {
			for cid, events := range got {
				if strings.Join(events, "|") != spec.EventConversationStarted+"|"+spec.EventMessageSent+"|"+spec.EventMessageReceived {
					t.Errorf("%s reached Segment as %v", cid, events)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events at Segment by conversation: %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
