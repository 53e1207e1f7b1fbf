package loope

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestSweepProgress: the overall line counts the steps of every run in
// flight, and the runs that reached their last step as trained.
func TestSweepProgress(t *testing.T) {
	var log bytes.Buffer
	sp := &sweepProgress{log: &log, runs: 2, steps: 10, start: time.Now(), at: map[int]int{}}
	sp.step(0, 10)
	sp.step(1, 5)
	if want := "overall: 1/2 runs trained, 1 in progress, 75% of the steps, elapsed "; !strings.Contains(log.String(), want) {
		t.Errorf("progress %q lacks %q", log.String(), want)
	}
}

// TestPrefixWriter: every line gets the prefix once, also when a line
// arrives in pieces.
func TestPrefixWriter(t *testing.T) {
	var out bytes.Buffer
	p := &prefixWriter{w: &out, prefix: "[x] "}
	for _, s := range []string{"step 1", " done\nstep", " 2\n"} {
		if _, err := p.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := out.String(), "[x] step 1 done\n[x] step 2\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
