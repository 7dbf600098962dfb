package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestReadmeConfigurationTableIsCurrent keeps the table in
// docs/configuration.md equal to what `chattap config -markdown` prints, so
// a new variable cannot go undocumented.
func TestReadmeConfigurationTableIsCurrent(t *testing.T) {
	readme, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := printConfigMarkdown(&table); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, table.Bytes()) {
		t.Fatalf("docs/configuration.md does not hold the current configuration table; replace it with the output of `go run ./cmd/chattap config -markdown`:\n%s", table.String())
	}
	for _, s := range settings(&config{}) {
		if !strings.Contains(string(readme), "`"+s.Env+"`") {
			t.Errorf("docs/configuration.md does not mention %s", s.Env)
		}
	}
}
