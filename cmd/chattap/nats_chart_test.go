package main

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestSplitLayoutOnTheNATSChart checks the split layout against the values
// given to the official NATS Helm chart: ingest sidecars, a mapper and a
// sinks Deployment of two replicas each, all on the chart's Service, with
// no more stream replicas than servers; and a chart that runs JetStream on
// file storage on three servers of nats-server 2.11 or later.
func TestSplitLayoutOnTheNATSChart(t *testing.T) {
	data, err := os.ReadFile("../../deploy/helm/nats-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Container struct {
			Image struct {
				Tag string `yaml:"tag"`
			} `yaml:"image"`
			Env map[string]struct {
				ValueFrom struct {
					SecretKeyRef struct {
						Name string `yaml:"name"`
						Key  string `yaml:"key"`
					} `yaml:"secretKeyRef"`
				} `yaml:"valueFrom"`
			} `yaml:"env"`
		} `yaml:"container"`
		Config struct {
			Cluster struct {
				Enabled  bool `yaml:"enabled"`
				Replicas int  `yaml:"replicas"`
			} `yaml:"cluster"`
			JetStream struct {
				Enabled   bool `yaml:"enabled"`
				FileStore struct {
					Enabled bool `yaml:"enabled"`
					PVC     struct {
						Enabled bool   `yaml:"enabled"`
						Size    string `yaml:"size"`
					} `yaml:"pvc"`
				} `yaml:"fileStore"`
			} `yaml:"jetstream"`
			Merge struct {
				MaxPayload    int `yaml:"max_payload"`
				Authorization struct {
					User     string `yaml:"user"`
					Password string `yaml:"password"`
				} `yaml:"authorization"`
			} `yaml:"merge"`
		} `yaml:"config"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatalf("deploy/helm/nats-values.yaml: %v", err)
	}
	js := values.Config.JetStream
	if !values.Config.Cluster.Enabled || values.Config.Cluster.Replicas != 3 || !js.Enabled || !js.FileStore.Enabled || !js.FileStore.PVC.Enabled || js.FileStore.PVC.Size == "" {
		t.Errorf("the NATS values do not run JetStream on sized file storage on 3 servers: %+v", values.Config)
	}
	m := regexp.MustCompile(`^(\d+)\.(\d+)\.`).FindStringSubmatch(values.Container.Image.Tag)
	if m == nil {
		t.Fatalf("nats-server image tag %q is not a version", values.Container.Image.Tag)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < 2 || major == 2 && minor < 11 {
		t.Errorf("nats-server %s: chattap needs 2.11 or later", values.Container.Image.Tag)
	}
	if payload := values.Config.Merge.MaxPayload; payload < 2<<20 {
		t.Errorf("max_payload %d: a 1 MiB body recorded with its answer needs more than NATS's default 1 MiB", payload)
	}
	// The cluster's password comes from the Secret's key that chattap's
	// processes connect with, through a variable of the server's.
	auth := values.Config.Merge.Authorization
	m = regexp.MustCompile(`^<< \$(\w+) >>$`).FindStringSubmatch(auth.Password)
	if auth.User == "" || m == nil {
		t.Fatalf("the NATS values require no user and password from a variable: %+v", auth)
	}
	passwordRef := values.Container.Env[m[1]].ValueFrom.SecretKeyRef
	if passwordRef.Name != "chattap" || !slices.Contains(secretKeysInReadme(t), passwordRef.Key) {
		t.Errorf("the servers' %s comes from secret %q key %q, not one the command of docs/operations.md makes", m[1], passwordRef.Name, passwordRef.Key)
	}

	roles := map[string]int{}
	for _, o := range readManifests(t, "../../deploy/kubernetes/split") {
		for _, c := range o.Spec.Template.Spec.Containers {
			if !c.isChattap() {
				continue
			}
			env := c.env()
			role := env["CHATTAP_ROLES"]
			roles[role] = *o.Spec.Replicas
			if env["CHATTAP_NATS_USER"] != auth.User {
				t.Errorf("%s: CHATTAP_NATS_USER %q, but the cluster's user is %q", o.file, env["CHATTAP_NATS_USER"], auth.User)
			}
			for _, e := range c.Env {
				if e.Name == "CHATTAP_NATS_PASSWORD" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Key != passwordRef.Key) {
					t.Errorf("%s: CHATTAP_NATS_PASSWORD is not the Secret's %s, the cluster's password", o.file, passwordRef.Key)
				}
			}
			if _, ok := env["CHATTAP_NATS_PASSWORD"]; !ok {
				t.Errorf("%s: no CHATTAP_NATS_PASSWORD for the cluster", o.file)
			}
			if env["CHATTAP_NATS_URL"] != "nats://nats:4222" {
				t.Errorf("%s: CHATTAP_NATS_URL %q, want the chart's Service nats://nats:4222", o.file, env["CHATTAP_NATS_URL"])
			}
			if n, err := strconv.Atoi(env["CHATTAP_STREAM_REPLICAS"]); err != nil || n < 1 || n > values.Config.Cluster.Replicas {
				t.Errorf("%s: CHATTAP_STREAM_REPLICAS %q for a cluster of %d", o.file, env["CHATTAP_STREAM_REPLICAS"], values.Config.Cluster.Replicas)
			}
		}
	}
	if roles["ingest"] < 1 || roles["mapper"] != 2 || roles["sinks"] != 2 || len(roles) != 3 {
		t.Errorf("split layout replicas by CHATTAP_ROLES: %v, want ingest sidecars, and 2 each of mapper and sinks", roles)
	}
}
