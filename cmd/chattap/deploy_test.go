package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The Kubernetes objects of deploy/kubernetes, as far as the test reads
// them. kubectl is not needed: the manifests are parsed as YAML and
// checked against what chattap really reads and serves.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int           `yaml:"replicas"`
		Selector map[string]any `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name                  string `yaml:"name"`
					PersistentVolumeClaim *struct {
						ClaimName string `yaml:"claimName"`
					} `yaml:"persistentVolumeClaim"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
		} `yaml:"resources"`
	} `yaml:"spec"`
	file string
}

type k8sContainer struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `yaml:"name"`
				Key      string `yaml:"key"`
				Optional bool   `yaml:"optional"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// apiVersions is the API group of each kind the manifests may hold.
var apiVersions = map[string]string{"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Service": "v1", "PersistentVolumeClaim": "v1", "ConfigMap": "v1"}

// readManifests parses every YAML document under dir, each file's
// documents in order.
func readManifests(t *testing.T, dir string) []k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	var out []k8sObject
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(r)
		for i := 1; ; i++ {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s, document %d: %v", f, i, err)
			}
			o.file = fmt.Sprintf("%s#%d", filepath.ToSlash(f), i)
			out = append(out, o)
		}
		r.Close()
	}
	return out
}

func (c *k8sContainer) env() map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

// environ is the container's environment as chattap would see it, with
// each value from a Secret stood in for by a valid one.
func (c *k8sContainer) environ() []string {
	var out []string
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = "from-secret"
			if strings.HasSuffix(e.Name, "_URL") {
				v = "https://userlike.invalid/api/from-secret"
			}
		}
		out = append(out, e.Name+"="+v)
	}
	return out
}

func (c *k8sContainer) isChattap() bool { return strings.Contains(c.Image, "chattap") }

// port resolves a probe's or a Service's port (a number or a port name)
// against the container's ports.
func (c *k8sContainer) port(p any) (int, bool) {
	switch v := p.(type) {
	case int:
		return v, true
	case string:
		for _, cp := range c.Ports {
			if cp.Name == v {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

// mebibytes reads a Kubernetes memory quantity (Mi, Gi).
func mebibytes(t *testing.T, q string) int {
	t.Helper()
	for suffix, mul := range map[string]int{"Mi": 1, "Gi": 1024} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			v, err := strconv.Atoi(n)
			if err == nil {
				return v * mul
			}
		}
	}
	t.Errorf("memory quantity %q: write it in Mi or Gi", q)
	return 0
}

// secretKeysInReadme are the keys the `kubectl create secret` command of
// docs/operations.md (where the README sends Kubernetes users) gives the
// chattap Secret.
func secretKeysInReadme(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	// The command as a shell runs it: its first line and every line that
	// the one before continues with a trailing backslash.
	var command []string
	for _, line := range strings.Split(string(readme), "\n") {
		switch {
		case strings.HasPrefix(line, "kubectl create secret generic chattap "):
			command = []string{line}
		case len(command) > 0 && strings.HasSuffix(command[len(command)-1], " \\"):
			command = append(command, line)
		}
		if len(command) > 0 && !strings.HasSuffix(command[len(command)-1], " \\") {
			break
		}
	}
	var keys []string
	for _, m := range regexp.MustCompile(`--from-literal=([a-z0-9-]+)=`).FindAllStringSubmatch(strings.Join(command, "\n"), -1) {
		keys = append(keys, m[1])
	}
	if len(keys) == 0 {
		t.Fatal("docs/operations.md does not give the `kubectl create secret generic chattap` command the manifests need")
	}
	return keys
}

// TestKubernetesManifests checks every manifest under deploy/kubernetes:
// well-formed objects; chattap containers whose variables all exist in the
// configuration and pass its validation, whose probes hit /healthz and
// /readyz on the port chattap listens on, with sized resources and a
// volume for an embedded store; secrets from the Secret the README makes;
// Services that reach a container port. TestManifestsRunAsWritten runs
// them.
func TestKubernetesManifests(t *testing.T) {
	known := map[string]bool{}
	for _, s := range settings(&config{}) {
		known[s.Env] = true
	}
	readmeKeys := secretKeysInReadme(t)
	for _, dir := range []string{"sidecar", "split"} {
		objects := readManifests(t, filepath.Join("../../deploy/kubernetes", dir))
		claims := map[string]bool{}
		for _, o := range objects {
			if o.Kind == "PersistentVolumeClaim" {
				claims[o.Metadata.Name] = true
				if o.Spec.Resources.Requests["storage"] == "" {
					t.Errorf("%s: claim %s has no storage size", o.file, o.Metadata.Name)
				}
			}
		}
		chattaps := 0
		for _, o := range objects {
			want, ok := apiVersions[o.Kind]
			if !ok || o.APIVersion != want || o.Metadata.Name == "" {
				t.Errorf("%s: %q %q named %q is not a well-formed object of a known kind", o.file, o.APIVersion, o.Kind, o.Metadata.Name)
				continue
			}
			if o.Kind == "Service" {
				checkService(t, o, objects)
			}
			if o.Kind != "Deployment" && o.Kind != "StatefulSet" {
				continue
			}
			pod := o.Spec.Template
			match, _ := o.Spec.Selector["matchLabels"].(map[string]any)
			if len(match) == 0 {
				t.Errorf("%s: no selector.matchLabels", o.file)
			}
			for k, v := range match {
				if pod.Metadata.Labels[k] != v {
					t.Errorf("%s: selector %s=%v does not match the pod's labels %v", o.file, k, v, pod.Metadata.Labels)
				}
			}
			volumes := map[string]bool{}
			for _, v := range pod.Spec.Volumes {
				volumes[v.Name] = true
				if v.PersistentVolumeClaim != nil && !claims[v.PersistentVolumeClaim.ClaimName] {
					t.Errorf("%s: volume %s claims %s, which no manifest in %s declares", o.file, v.Name, v.PersistentVolumeClaim.ClaimName, dir)
				}
			}
			if len(pod.Spec.Containers) == 0 {
				t.Errorf("%s: no containers", o.file)
			}
			for _, c := range pod.Spec.Containers {
				where := o.file + " container " + c.Name
				if c.Name == "" || c.Image == "" {
					t.Errorf("%s: a container needs a name and an image", where)
				}
				for _, m := range c.VolumeMounts {
					if !volumes[m.Name] {
						t.Errorf("%s: mounts %s, which is not a volume of the pod", where, m.Name)
					}
				}
				for _, e := range c.Env {
					if strings.HasPrefix(e.Name, "CHATTAP_") && !known[e.Name] {
						t.Errorf("%s: sets %s, which chattap's configuration does not have", where, e.Name)
					}
					if !strings.HasPrefix(e.Name, "CHATTAP_") && e.Name != "GOMEMLIMIT" && c.isChattap() {
						t.Errorf("%s: sets %s, which chattap does not read", where, e.Name)
					}
					if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
						if ref.SecretKeyRef.Name != "chattap" || !slices.Contains(readmeKeys, ref.SecretKeyRef.Key) {
							t.Errorf("%s: %s comes from secret %s key %s, which the `kubectl create secret generic chattap` of docs/operations.md does not make", where, e.Name, ref.SecretKeyRef.Name, ref.SecretKeyRef.Key)
						}
					}
				}
				if !c.isChattap() {
					continue
				}
				chattaps++
				checkChattapContainer(t, where, c)
				if port := pod.Metadata.Annotations["prometheus.io/port"]; port != "" {
					metricsAddr := c.env()["CHATTAP_ADMIN_ADDR"]
					if metricsAddr == "" {
						metricsAddr = listenAddr(c.environ())
					}
					if _, p, _ := net.SplitHostPort(metricsAddr); p != port {
						t.Errorf("%s: Prometheus is told to scrape port %s, but /metrics is on %s", where, port, metricsAddr)
					}
				}
				if env := c.env(); env["CHATTAP_NATS_URL"] == "" {
					dataDir := env["CHATTAP_DATA_DIR"]
					if dataDir == "" || !slices.ContainsFunc(c.VolumeMounts, func(m struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					}) bool {
						return m.MountPath == dataDir
					}) {
						t.Errorf("%s: runs the embedded server but mounts no volume at CHATTAP_DATA_DIR (%q)", where, dataDir)
					}
				}
			}
		}
		if chattaps == 0 {
			t.Errorf("deploy/kubernetes/%s runs no chattap container", dir)
		}
	}
}

// checkChattapContainer checks one chattap container: its configuration
// loads, its probes ask /healthz and /readyz (as fits its role) on the port
// it listens on
// (TestManifestsRunAsWritten asks them of the running process), and its
// memory is sized.
func checkChattapContainer(t *testing.T, where string, c k8sContainer) {
	t.Helper()
	if _, err := loadConfig(c.environ()); err != nil {
		t.Errorf("%s: chattap would not start with this environment: %v", where, err)
	}
	_, listenPort, err := net.SplitHostPort(listenAddr(c.environ()))
	if err != nil {
		t.Errorf("%s: CHATTAP_LISTEN_ADDR: %v", where, err)
	}
	// A pod that is not ready leaves its Service, and a broken recorder
	// must never break the chat: a pod with the taps stays ready while
	// it is alive (/healthz). It first takes traffic once its store is
	// open (startup on /readyz), unless the store is a separate NATS
	// cluster, whose outage must not keep new bot pods from starting.
	// Mapper and sinks serve no traffic: they are ready when their broker
	// and streams are (/readyz).
	env := c.env()
	startup, readiness := "/healthz", "/readyz"
	if env["CHATTAP_ROLES"] == "" || strings.Contains(env["CHATTAP_ROLES"], roleIngest) {
		readiness = "/healthz"
		if env["CHATTAP_NATS_URL"] == "" {
			startup = "/readyz"
		}
	}
	for _, p := range []struct {
		kind  string
		probe *k8sProbe
		path  string
	}{{"startup", c.StartupProbe, startup}, {"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, readiness}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no %s probe over HTTP", where, p.kind)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s: %s probe asks %s, want %s", where, p.kind, p.probe.HTTPGet.Path, p.path)
		}
		if port, ok := c.port(p.probe.HTTPGet.Port); !ok || strconv.Itoa(port) != listenPort {
			t.Errorf("%s: %s probe port %v is not the port chattap listens on (%s)", where, p.kind, p.probe.HTTPGet.Port, listenPort)
		}
	}
	req, limit := c.Resources.Requests["memory"], c.Resources.Limits["memory"]
	if req == "" || limit == "" || c.Resources.Requests["cpu"] == "" {
		t.Errorf("%s: resources need a cpu request and a memory request and limit: %+v", where, c.Resources)
	} else if mebibytes(t, req) > mebibytes(t, limit) {
		t.Errorf("%s: memory request %s is over the limit %s", where, req, limit)
	}
}

// checkService checks that a Service selects a pod template and that its
// target port is one of that pod's container ports.
func checkService(t *testing.T, svc k8sObject, objects []k8sObject) {
	t.Helper()
	for _, o := range objects {
		if o.Kind != "Deployment" {
			continue
		}
		selected := len(svc.Spec.Selector) > 0
		for k, v := range svc.Spec.Selector {
			if o.Spec.Template.Metadata.Labels[k] != v {
				selected = false
			}
		}
		if !selected {
			continue
		}
		for _, p := range svc.Spec.Ports {
			found := false
			for _, c := range o.Spec.Template.Spec.Containers {
				port, ok := c.port(p.TargetPort)
				if ok {
					found = true
				}
				if _, admin, _ := net.SplitHostPort(c.env()["CHATTAP_ADMIN_ADDR"]); ok && admin == strconv.Itoa(port) {
					t.Errorf("%s: port %s exposes chattap's admin listener (/metrics, /admin/*, /debugger)", svc.file, p.Name)
				}
			}
			if !found {
				t.Errorf("%s: port %s targets %v, which no container of %s has", svc.file, p.Name, p.TargetPort, o.Metadata.Name)
			}
		}
		return
	}
	t.Errorf("%s: Service %s selects no Deployment", svc.file, svc.Metadata.Name)
}
