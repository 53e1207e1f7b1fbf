package loope

import (
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestThreeCellCentres checks the nine cells of supplement Fig. 2 for
// G = 14 (docs/paper.md §8): (0,0), (13,0), (0,13), (13,13), (0,7), (7,0),
// (7,13), (13,7), (7,7).
func TestThreeCellCentres(t *testing.T) {
	t.Parallel()
	var got []Cell
	for _, row := range ThreeCellCentres(14) {
		got = append(got, row[:]...)
	}
	want := []Cell{{0, 0}, {13, 0}, {0, 13}, {13, 13}, {0, 7}, {7, 0}, {7, 13}, {13, 7}, {7, 7}}
	for _, c := range want {
		if !slices.Contains(got, c) {
			t.Errorf("centre cells %v lack %v", got, c)
		}
	}
	if len(got) != 9 {
		t.Errorf("%d cells, want 9", len(got))
	}
}

// pngSize decodes the PNG at path and returns its size.
func pngSize(t *testing.T, path string) (w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg.Width, cfg.Height
}

// TestPlotTable4 draws rows with one and several seeds (whiskers) and
// refuses an empty table; the figure widens with the row count.
func TestPlotTable4(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	acc := ThreeCellAcc{0.7, 0.6, 0.65, 0.8, 0.69}
	rows := []ThreeCellSummary{{Row: "none", N: 1, Mean: acc}, {Row: "hilbert", N: 3, Mean: acc, Std: ThreeCellAcc{0.01, 0.02, 0.03, 0.04, 0.02}}}
	if err := PlotTable4(filepath.Join(dir, "a.png"), "t", rows, ThreeCellPriorAcc(7)); err != nil {
		t.Fatal(err)
	}
	for range 6 {
		rows = append(rows, rows[0])
	}
	if err := PlotTable4(filepath.Join(dir, "b.png"), "t", rows, ThreeCellPriorAcc(7)); err != nil {
		t.Fatal(err)
	}
	if wa, _ := pngSize(t, filepath.Join(dir, "a.png")); wa < 500 {
		t.Errorf("width %d", wa)
	} else if wb, _ := pngSize(t, filepath.Join(dir, "b.png")); wb <= wa {
		t.Errorf("8 rows are %d px wide, 2 rows %d", wb, wa)
	}
	if err := PlotTable4(filepath.Join(dir, "c.png"), "t", nil, ThreeCellAcc{}); err == nil {
		t.Error("an empty table was drawn")
	}
}

// TestPlotValCurves draws a row with two seeds (band) and one with one,
// and refuses runs without validation metrics.
func TestPlotValCurves(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	curve := func(a float64) []Metric {
		return []Metric{{Step: 1, Split: "train", Acc: a}, {Step: 5, Split: "val", Acc: a}, {Step: 10, Split: "val", Acc: a + 0.1}}
	}
	runs := []ThreeCellRun{{SweepRun: SweepRun{PE: "a"}, Curve: curve(0.5)}, {SweepRun: SweepRun{PE: "a", Seed: 1}, Curve: curve(0.6)},
		{SweepRun: SweepRun{PE: "b", Freqs: "f2"}, Curve: curve(0.7)}}
	if err := PlotValCurves(filepath.Join(dir, "c.png"), "t", runs, []string{"a", "b/f2"}, 32); err != nil {
		t.Fatal(err)
	}
	if w, _ := pngSize(t, filepath.Join(dir, "c.png")); w < 500 {
		t.Errorf("width %d", w)
	}
	for i := range runs {
		runs[i].Curve = runs[i].Curve[:1]
	}
	if err := PlotValCurves(filepath.Join(dir, "d.png"), "t", runs, []string{"a", "b/f2"}, 32); err == nil || !strings.Contains(err.Error(), "no validation metrics") {
		t.Errorf("no validation: %v", err)
	}
}
