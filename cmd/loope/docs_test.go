package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocsCommandFlags checks every `loope <command> -flag` written in the
// README, docs/, bench/ and deploy/ against the flags that command's -h
// lists, so a renamed or removed flag cannot linger in the docs.
func TestDocsCommandFlags(t *testing.T) {
	known := map[string][]string{} // command → its flags, from -h
	for name, c := range commands {
		help := captureStderr(t, func() { c.run([]string{"-h"}) })
		for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(help, -1) {
			known[name] = append(known[name], m[1])
		}
		known[name] = append(known[name], "h")
		if len(known[name]) == 1 {
			t.Fatalf("loope %s -h lists no flags:\n%s", name, help)
		}
	}
	var files []string
	for _, g := range []string{"README.md", "docs/*.md", "bench/*", "deploy/*"} {
		m, _ := filepath.Glob(filepath.Join("..", "..", g))
		files = append(files, m...)
	}
	cmdRe := regexp.MustCompile("loope ([a-z]+)((?: +[^\\s|#`;>&]+)*)") // a command ends at `, ;, >, &, | or #
	flagRe := regexp.MustCompile(`^-([a-z][a-z0-9-]*)`)
	checked := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(raw), "\n") {
			for _, m := range cmdRe.FindAllStringSubmatch(line, -1) {
				flags, ok := known[m[1]]
				if !ok {
					continue // "loope threecell" in prose is caught; other words after "loope" are not commands
				}
				for _, tok := range strings.Fields(m[2]) {
					fm := flagRe.FindStringSubmatch(strings.Trim(tok, "`"))
					if fm == nil {
						continue
					}
					name, _, _ := strings.Cut(fm[1], "=")
					checked++
					if !slices.Contains(flags, name) {
						t.Errorf("%s:%d: loope %s has no flag -%s", f, i+1, m[1], name)
					}
				}
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d flags found in the docs: is the pattern still right?", checked)
	}
	t.Logf("%d flag uses checked in %d files", checked, len(files))
}
