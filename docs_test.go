package loope

import (
	"bufio"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Section convention of docs/*.md: a heading line "## N. Title",
// "### N.M Title" (any level from # to ######, an optional dot after the
// number) defines section N or N.M, which code cites as "docs/<name>.md §N".
var docsHeading = regexp.MustCompile(`^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s`)

var (
	// mdName is a file name ending in .md, with an optional path.
	mdName = regexp.MustCompile(`[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b`)
	// docsRef is "docs/<name>.md" followed by "§N", possibly continued by more
	// sections of the same file: "§6.1/§6.2", "§1 and §15", "§12–§13".
	docsRef = regexp.MustCompile(`docs/([A-Za-z0-9_-]+)\.md\s+§(\d+(?:\.\d+)*)((?:\s*(?:,|/|–|-|and)\s*§\d+(?:\.\d+)*)*)`)
	moreSec = regexp.MustCompile(`§(\d+(?:\.\d+)*)`)
)

// docsGeneratedMD are .md names the programs write (reports, tables), not
// references to files in the repository.
var docsGeneratedMD = map[string]bool{
	"results.md": true, // loope threecell -out
	"table.md":   true, // bench/compare.sh
}

// docsForbidden are substrings no file may contain: paths outside the
// repository. They are split so this file does not contain them itself.
var docsForbidden = []string{
	"shared" + "/spec",
	".." + "/shared",
	"/wo" + "rk/",
	"/ho" + "me/",
	"/ro" + "ot/",
}

// docsScanned reports whether the references of the file at rel (slash
// path from the repo root) are checked: Go, shell and Python sources,
// README.md, the CI script and the docs themselves.
func docsScanned(rel string) bool {
	switch {
	case rel == "README.md", strings.HasPrefix(rel, ".ci/"):
		return true
	case strings.HasPrefix(rel, "docs/") && strings.HasSuffix(rel, ".md"):
		return true
	}
	switch path.Ext(rel) {
	case ".go", ".sh", ".py":
		return true
	}
	return false
}

// TestDocsReferences checks that every .md file named in the sources,
// scripts, README.md and docs/ exists in the repository, that every
// "docs/<name>.md §N" names a section heading of that file (see docsHeading), and
// that no file names a path outside the repository.
func TestDocsReferences(t *testing.T) {
	var files []string
	exists := map[string]bool{}   // slash paths from the root
	basename := map[string]bool{} // base names of all files
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(p)
		if d.IsDir() {
			if rel == ".git" || rel == "testdata/fuzz" || rel == "out" {
				return filepath.SkipDir
			}
			return nil
		}
		exists[rel] = true
		basename[path.Base(rel)] = true
		if docsScanned(rel) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]map[string]bool{} // docs file → section numbers
	sectionsOf := func(doc string) map[string]bool {
		if s, ok := sections[doc]; ok {
			return s
		}
		s := map[string]bool{}
		if f, err := os.Open(filepath.FromSlash(doc)); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if m := docsHeading.FindStringSubmatch(sc.Text()); m != nil {
					s[m[1]] = true
				}
			}
			f.Close()
		}
		sections[doc] = s
		return s
	}
	if len(files) < 50 {
		t.Fatalf("only %d files scanned; is the test running at the repo root?", len(files))
	}
	for _, rel := range files {
		data, err := os.ReadFile(filepath.FromSlash(rel))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			at := func(format string, args ...any) {
				t.Helper()
				t.Errorf("%s:%d: "+format, append([]any{rel, i + 1}, args...)...)
			}
			for _, bad := range docsForbidden {
				if strings.Contains(line, bad) {
					at("names %q, a path outside the repository", bad)
				}
			}
			for _, name := range mdName.FindAllString(line, -1) {
				name = strings.TrimPrefix(name, "./")
				switch {
				case docsGeneratedMD[path.Base(name)]:
				case strings.Contains(name, "/"):
					if !exists[name] {
						at("names %s, which is not in the repository", name)
					}
				case !basename[name]:
					at("names %s, which is not in the repository", name)
				}
			}
			for _, m := range docsRef.FindAllStringSubmatch(line, -1) {
				doc := "docs/" + m[1] + ".md"
				if !exists[doc] {
					continue // reported above
				}
				secs := []string{m[2]}
				for _, more := range moreSec.FindAllStringSubmatch(m[3], -1) {
					secs = append(secs, more[1])
				}
				for _, sec := range secs {
					if !sectionsOf(doc)[sec] {
						at("cites %s §%s, but %s has no heading for section %s", doc, sec, doc, sec)
					}
				}
			}
		}
	}
}
