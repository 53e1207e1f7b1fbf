package loope

import (
	"slices"
	"strings"
	"testing"
)

// TestThreeCellDataMatchesGenerator checks that the adapter yields exactly
// the generator's images and labels, via ThreeCellBatch as the second path.
func TestThreeCellDataMatchesGenerator(t *testing.T) {
	t.Parallel()
	gen := NewThreeCell(7, 2, 5)
	ref := NewThreeCell(7, 2, 5)
	img := 3 * 14 * 14
	check := func(name string, d *ThreeCellData, stream uint64, idx []int) {
		t.Helper()
		x, y := make([]float32, len(idx)*img), make([]float32, len(idx)*6)
		ThreeCellBatch(x, y, ref, stream, idx)
		got, tgt := make([]float32, img), make([]float32, 6)
		for n := range idx {
			d.Example(n, got, tgt)
			if !slices.Equal(got, x[n*img:(n+1)*img]) || !slices.Equal(tgt, y[n*6:(n+1)*6]) {
				t.Fatalf("%s: example %d differs from the generator's sample (stream %d, index %d)", name, n, stream, idx[n])
			}
		}
	}
	seq := func(lo, n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = lo + i
		}
		return s
	}
	for _, sp := range []ThreeCellSplit{ThreeCellTrain, ThreeCellVal, ThreeCellTest} {
		d, err := NewThreeCellSplit(gen, sp, 20)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := sp.Range()
		d.SetEpoch(3) // no effect on fixed data
		check(sp.String(), d, ThreeCellFixedStream, seq(first, 20))
		if d.Len() != 20 {
			t.Errorf("%s: Len %d, want 20", sp, d.Len())
		}
	}
	d, err := NewThreeCellSplit(gen, ThreeCellTest, 0)
	if err != nil || d.Len() != ThreeCellTestN {
		t.Errorf("whole test split: %v, Len %d, want %d", err, d.Len(), ThreeCellTestN)
	}
	s, err := NewThreeCellStream(gen, 30)
	if err != nil {
		t.Fatal(err)
	}
	var _ EpochSetter = s
	for _, e := range []int{0, 1, 7} {
		s.SetEpoch(e)
		check("stream", s, uint64(e)+1, seq(0, 30))
	}
	if _, err := NewThreeCellSplit(gen, ThreeCellVal, ThreeCellValN+1); err == nil {
		t.Error("split larger than 1000 val images: no error")
	}
	if _, err := NewThreeCellStream(gen, 0); err == nil {
		t.Error("empty stream: no error")
	}
}

// TestNewThreeCellFor checks the grid and cell of each preset (one cell
// per patch) and the errors for models that cannot show a Three-Cell image.
func TestNewThreeCellFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		preset     string
		grid, cell int
	}{{"small", 14, 2}, {"tiny", 7, 2}, {"ti16", 14, 16}} {
		cfg, err := Preset(tc.preset)
		if err != nil {
			t.Fatal(err)
		}
		gen, err := NewThreeCellFor(cfg, 0)
		if err != nil {
			t.Fatal(err)
		}
		if gen.Grid() != tc.grid || gen.CellPx != tc.cell || gen.Side() != cfg.Image || cfg.Grid() != gen.Grid() {
			t.Errorf("%s: grid %d cell %d side %d, want %d, %d, %d", tc.preset, gen.Grid(), gen.CellPx, gen.Side(), tc.grid, tc.cell, cfg.Image)
		}
	}
	cfg, _ := Preset("tiny")
	d, _ := NewThreeCellStream(NewThreeCell(7, 2, 0), 10)
	if err := d.CheckModel(cfg); err != nil {
		t.Errorf("tiny with 7×7 cells of 2 px: %v", err)
	}
	small, _ := Preset("small")
	d14, _ := NewThreeCellStream(NewThreeCell(7, 4, 0), 10) // 28 px, but 4 px cells on 2 px patches
	for _, tc := range []struct {
		d    *ThreeCellData
		c    Config
		want string
	}{{d, small, "takes 28 px"}, {d14, small, "patch grid"}} {
		if err := tc.d.CheckModel(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckModel: %v, want %q", err, tc.want)
		}
	}
	for _, mod := range []func(c *Config){
		func(c *Config) { c.Channels = 1 },
		func(c *Config) { c.Image = 15 },
		func(c *Config) { c.Patch = 7 }, // grid 2
	} {
		c := cfg
		mod(&c)
		if _, err := NewThreeCellFor(c, 0); err == nil {
			t.Errorf("config %+v: no error", c)
		}
	}
}
