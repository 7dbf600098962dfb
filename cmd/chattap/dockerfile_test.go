package main

import (
	"encoding/json"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileHealthcheckRunsChattapHealth reads the Dockerfile's ENV and
// HEALTHCHECK (no Docker engine is needed) and runs the health check's
// command as the image would, against a running chattap on the image's
// listen port: it passes, and fails once nothing listens there.
func TestDockerfileHealthcheckRunsChattapHealth(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(data)
	known := map[string]bool{}
	for _, s := range settings(&config{}) {
		known[s.Env] = true
	}
	imageEnv := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ENV (.+)$`).FindAllStringSubmatch(dockerfile, -1) {
		for _, kv := range strings.Fields(m[1]) {
			k, v, _ := strings.Cut(kv, "=")
			imageEnv[k] = v
			if strings.HasPrefix(k, "CHATTAP_") && !known[k] {
				t.Errorf("the Dockerfile sets %s, which chattap's configuration does not have", k)
			}
		}
	}
	if imageEnv["CHATTAP_LISTEN_ADDR"] != ":8080" {
		t.Errorf("the image's CHATTAP_LISTEN_ADDR is %q, want :8080", imageEnv["CHATTAP_LISTEN_ADDR"])
	}
	m := regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD (\[.+\])$`).FindStringSubmatch(dockerfile)
	if m == nil {
		t.Fatal("the Dockerfile has no HEALTHCHECK in exec form (scratch has no shell)")
	}
	var cmd []string
	if err := json.Unmarshal([]byte(m[1]), &cmd); err != nil || len(cmd) < 2 || cmd[0] != "/chattap" || cmd[1] != "health" {
		t.Fatalf("HEALTHCHECK CMD %s: want [\"/chattap\", \"health\", ...]: %v", m[1], err)
	}

	in := start(t, "CHATTAP_FILE_SINK_PATH=")
	_, port, _ := net.SplitHostPort(in.addr)
	environ := []string{"CHATTAP_DATA_DIR=" + imageEnv["CHATTAP_DATA_DIR"], "CHATTAP_LISTEN_ADDR=" + strings.Replace(imageEnv["CHATTAP_LISTEN_ADDR"], "8080", port, 1)}
	if out, _, err := runTool(t, environ, cmd[1:]...); err != nil || !strings.Contains(out, ": 200") {
		t.Errorf("%v on a running chattap: %v %q", cmd, err, out)
	}
	in.stop(t)
	if _, _, err := runTool(t, environ, cmd[1:]...); err == nil {
		t.Errorf("%v passed with nothing listening", cmd)
	}
}
