package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// landingElsewhere are documents the README links to that another branch
// writes; a link to one is accepted while it does not exist yet, and
// checked like any other once it does.
var landingElsewhere = map[string]bool{"RELIABILITY.md": true}

var (
	mdLinkRE   = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)\)`)
	codePathRE = regexp.MustCompile("`((?:deploy|docs|spec|ingest|mapper|sinks|cmd|broker|metrics|\\.ci)/[A-Za-z0-9_./-]*)`")
	headingRE  = regexp.MustCompile(`^#{1,6} (.+)$`)
	goNameRE   = regexp.MustCompile(`\.[A-Z]\w*$`)
)

// TestDocumentsLinkToWhatExists follows every relative link of the README,
// BENCHMARKS.md, RELIABILITY.md and docs/ (to a file, and to a heading in
// it), and checks every repository path the README and docs/ quote in code
// (a Go name after a package path, as in `sinks/sinkstest.Conformance`, is
// left off), so moving a file or renaming a heading cannot leave a reader
// at a dead end.
func TestDocumentsLinkToWhatExists(t *testing.T) {
	root := "../.."
	files := []string{"README.md", "BENCHMARKS.md", "RELIABILITY.md"}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	for _, d := range docs {
		files = append(files, filepath.ToSlash(strings.TrimPrefix(d, root+string(filepath.Separator))))
	}
	for _, name := range files {
		text, err := os.ReadFile(filepath.Join(root, name))
		if os.IsNotExist(err) && landingElsewhere[name] {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		prose := withoutFences(string(text))
		for _, m := range mdLinkRE.FindAllStringSubmatch(prose, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			file := name
			if path != "" {
				file = filepath.ToSlash(filepath.Join(filepath.Dir(name), path))
			}
			if _, err := os.Stat(filepath.Join(root, file)); err != nil {
				if landingElsewhere[file] {
					continue
				}
				t.Errorf("%s links to %s, which does not exist", name, target)
				continue
			}
			if frag == "" {
				continue
			}
			anchors, err := headingAnchors(filepath.Join(root, file))
			if err != nil {
				t.Errorf("%s links to %s: %v", name, target, err)
				continue
			}
			if !anchors[frag] {
				t.Errorf("%s links to %s, but %s has no heading #%s", name, target, file, frag)
			}
		}
		if name != "README.md" && !strings.HasPrefix(name, "docs/") {
			continue
		}
		for _, m := range codePathRE.FindAllStringSubmatch(string(text), -1) {
			path := goNameRE.ReplaceAllString(m[1], "")
			if strings.ContainsAny(path, "<>*…") {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, path)); err != nil {
				t.Errorf("%s names %s, which does not exist", name, m[1])
			}
		}
	}
}

// withoutFences drops fenced code blocks, whose brackets are no links.
func withoutFences(s string) string {
	var out []string
	in := false
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "```") {
			in = !in
			continue
		}
		if !in {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// headingAnchors are the fragments GitHub gives the headings of a Markdown
// file: lower case, spaces to hyphens, punctuation other than - and _
// dropped, and -1, -2 … after a repeated one.
func headingAnchors(path string) (map[string]bool, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, line := range strings.Split(withoutFences(string(text)), "\n") {
		m := headingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors, nil
}
