package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loope-go/loope"
)

// TestSensitivity checks S_j and S̄ on synthetic results: one PE, D = 4,
// average accuracy 0.90 (f1), 0.85 (f2), 0.93 (f3), so with Δf from the
// formula of TestFreqDelta: S_2 = 5/Δf_2, S_3 = 3/Δf_3 and
// S̄ = (S_2 Δf_2 + S_3 Δf_3)/(Δf_2 + Δf_3) = 8/(Δf_2 + Δf_3).
func TestSensitivity(t *testing.T) {
	dir := t.TempDir()
	write := func(freqs string, avg float64, pes ...string) string {
		rep := loope.ThreeCellReport{Config: loope.ThreeCellBenchConfig{FreqSets: []string{freqs}, Model: loope.Config{Dim: 4}}, Grid: 14, Done: true}
		for _, pe := range pes {
			rep.Summary = append(rep.Summary, loope.ThreeCellSummary{Row: pe + "/" + freqs, PE: pe, Freqs: freqs, N: 1,
				Mean: loope.ThreeCellAcc{Average: avg, Distance: 0.5}})
		}
		d := filepath.Join(dir, freqs)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(rep)
		if err := os.WriteFile(filepath.Join(d, "results.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d1 := write("f1", 0.90, "sin1d", "learnable")
	d2 := write("f2", 0.85, "sin1d")
	d3 := write("f3", 0.93, "sin1d")
	var stdout, stderr bytes.Buffer
	if err := sensitivityMain([]string{"-in", d1 + "," + d2 + "," + filepath.Join(d3, "results.json")}, &stdout, &stderr); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	norm := math.Sqrt(1 + 0.978*0.978)
	df2, df3 := math.Abs(1-0.9999/3-0.978)/norm, math.Abs(0.9-0.978)/norm
	want := fmt.Sprintf("| sin1d | 90.0 | 85.0 | 93.0 | – | %.2f | %.2f | – | %.2f |", 5/df2, 3/df3, 8/(df2+df3))
	if !strings.Contains(stdout.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, stdout.String())
	}
	if strings.Contains(stdout.String(), "| learnable |") {
		t.Error("learnable is only in f1, yet has a row")
	}
	// Distance is 50% everywhere: S = 0.
	stdout.Reset()
	if err := sensitivityMain([]string{"-in", d1 + "," + d2, "-metric", "distance"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "| sin1d | 50.0 | 50.0 | – | – | 0.00 | – | – | 0.00 |") {
		t.Errorf("distance: %s", stdout.String())
	}
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"-in", d2 + "," + d3}, false, "needs f1 (baseline) results"},
		{[]string{"-in", d1 + "," + d1}, false, `two reports hold sin1d with frequency set "f1"`},
		{[]string{"-in", d1}, true, "at least two"},
		{[]string{"-in", d1 + "," + d2, "-metric", "speed"}, true, `-metric "speed"`},
		{[]string{"-in", d1 + "," + filepath.Join(dir, "missing")}, false, "no such file"},
	} {
		stderr.Reset()
		err := sensitivityMain(tc.args, &stdout, &stderr)
		msg := stderr.String()
		if err != nil && err != errUsage {
			msg = err.Error()
		}
		if err == nil || (err == errUsage) != tc.usage || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: err %v, message %q; want usage %v and %q", tc.args, err, msg, tc.usage, tc.want)
		}
	}
}
