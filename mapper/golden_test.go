package mapper_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/chattap/chattap/mapper"
	"github.com/chattap/chattap/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden from the mapping's output")

// scenario is one file under testdata/scenarios: the environment the
// mapper is configured from, the Record toggle, and the Observations of
// one or more conversations, mapped in order.
type scenario struct {
	// Env holds CHATTAP_ variables, read through Options' env tags as
	// cmd/chattap reads them.
	Env          map[string]string   `json:"env"`
	Record       *bool               `json:"record"`
	Observations []*spec.Observation `json:"observations"`
}

// result is what a golden file holds for one Observation.
type result struct {
	Observation string         `json:"observation"`
	Source      spec.Source    `json:"source"`
	Kind        string         `json:"kind"`
	Error       string         `json:"error,omitempty"`
	Messages    []spec.Message `json:"messages"`
}

type golden struct {
	Results []result                `json:"results"`
	States  map[string]mapper.State `json:"states"`
	// Contacts are the contacts' states, by ContactKey, as a runner with
	// a contact store keeps them across conversations.
	Contacts map[string]mapper.Contact `json:"contacts,omitempty"`
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			sc := readScenario(t, file)
			got := runScenario(t, sc)
			compareGoldenValue(t, filepath.Join("testdata", "golden", name+".json"), got)
		})
	}
}

func readScenario(t testing.TB, file string) scenario {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var sc scenario
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return sc
}

// optionsFromEnv fills Options the way caarlos0/env does for string
// fields: each variable named by an env tag, else its envDefault.
func optionsFromEnv(t *testing.T, env map[string]string) mapper.Options {
	t.Helper()
	var o mapper.Options
	v := reflect.ValueOf(&o).Elem()
	known := map[string]bool{}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name := f.Tag.Get("env")
		if name == "" || name == "-" {
			continue
		}
		known[name] = true
		val, ok := env[name]
		if !ok {
			val = f.Tag.Get("envDefault")
		}
		v.Field(i).SetString(val)
	}
	for k := range env {
		if !known[k] {
			t.Fatalf("scenario sets %s, which is no mapper option", k)
		}
	}
	o.Version = "test"
	return o
}

func runScenario(t *testing.T, sc scenario) golden {
	t.Helper()
	m, err := mapper.New(optionsFromEnv(t, sc.Env))
	if err != nil {
		t.Fatal(err)
	}
	set := spec.DefaultSettings
	if sc.Record != nil {
		set.RecordLiveChatEvents = *sc.Record
	}
	g := golden{States: map[string]mapper.State{}, Contacts: map[string]mapper.Contact{}}
	for _, obs := range sc.Observations {
		fillConversation(obs)
		st := g.States[obs.ConversationID]
		key := m.ContactKey(obs, st)
		ct := g.Contacts[key]
		before, _ := json.Marshal(st)
		beforeCt, _ := json.Marshal(ct)
		out, next, nextCt, ctChanged, err := m.MapContact(obs, st, ct, set)
		if after, _ := json.Marshal(st); !bytes.Equal(before, after) {
			t.Errorf("%s: MapContact changed the State it was given", obs.ID)
		}
		if after, _ := json.Marshal(ct); !bytes.Equal(beforeCt, after) {
			t.Errorf("%s: MapContact changed the Contact it was given", obs.ID)
		}
		if ctChanged && key != "" && err == nil {
			if nextCt.Key != key {
				t.Errorf("%s: contact stored under %q says it is %q", obs.ID, key, nextCt.Key)
			}
			g.Contacts[key] = nextCt
		}
		r := result{Observation: obs.ID, Source: obs.Source, Kind: obs.Kind, Messages: out}
		if err != nil {
			r.Error = err.Error()
		}
		for i := range out {
			if err := out[i].Validate(); err != nil {
				t.Errorf("%s: output %d: %v", obs.ID, i, err)
			}
		}
		if obs.ConversationID != "" && err == nil {
			g.States[obs.ConversationID] = next
		}
		g.Results = append(g.Results, r)
	}
	return g
}

func compareGoldenValue(t *testing.T, path string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./mapper -update to write it)", err)
	}
	if !bytes.Equal(want, b) {
		t.Errorf("%s differs from the mapping's output (go test ./mapper -update rewrites it; review the diff):\n%s", path, firstDiff(string(want), string(b)))
	}
}

// firstDiff shows a few lines around the first line that differs.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n- " + wl + "\n+ " + gl
		}
	}
	return ""
}

// fillConversation sets an add-on Observation's conversation id the way
// ingest does, so scenarios need not spell out "userlike::<session>".
func fillConversation(obs *spec.Observation) {
	if obs.Source != spec.SourceAddon || obs.ConversationID != "" || len(obs.Payload) == 0 {
		return
	}
	if e, err := spec.DecodeAddonEvent(obs.Payload); err == nil {
		obs.ConversationID = e.Conversation()
	}
}
