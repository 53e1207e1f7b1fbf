package loope

import (
	"math"
	"math/rand/v2"
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

// TestFormatMeanStd checks the table cells: percent, one decimal, sample
// standard deviation (n−1).
func TestFormatMeanStd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		xs   []float64
		want string
	}{
		{nil, "–"},
		{[]float64{0.9371}, "93.7"},
		// mean 0.6; sample std √((0.1² + 0.1²)/1) = 0.141421…
		{[]float64{0.5, 0.7}, "60.0 ± 14.1"},
		// mean 0.92; deviations −0.02, 0, 0.02: √(0.0008/2) = 0.02
		{[]float64{0.90, 0.92, 0.94}, "92.0 ± 2.0"},
		{[]float64{0.8, 0.8, 0.8}, "80.0 ± 0.0"},
	} {
		if got := FormatMeanStd(tc.xs); got != tc.want {
			t.Errorf("FormatMeanStd(%v) = %q, want %q", tc.xs, got, tc.want)
		}
	}
	if m, s := meanStd([]float64{0.3}); m != 0.3 || s != 0 {
		t.Errorf("meanStd of one value = %v, %v, want 0.3, 0", m, s)
	}
}

// affinePE is a test PE whose AddInput is x + x + E: not additive.
type affinePE struct {
	NoHooks[float64]
	E *Tensor[float64]
}

func (p *affinePE) Name() string                  { return "affine" }
func (p *affinePE) Params() []NamedParam[float64] { return nil }
func (p *affinePE) AddInput(tp *Tape[float64], x, img *Tensor[float64]) *Tensor[float64] {
	return tp.Add(tp.Add(x, x), p.E)
}

// TestPETable checks the probe: nothing for none, the learnable table
// itself, and an error for a non-additive AddInput.
func TestPETable(t *testing.T) {
	t.Parallel()
	cfg, _ := Preset("tiny")
	img := New[float64](1, 3, cfg.Image, cfg.Image)
	cfg.PE.Name = "none"
	m, err := NewViT[float64](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if tab, err := PETable(m, img); tab != nil || err != nil {
		t.Errorf("none: table of %d values, err %v; want nil, nil", len(tab), err)
	}
	cfg.PE.Name = "learnable"
	if m, err = NewViT[float64](cfg, 1); err != nil {
		t.Fatal(err)
	}
	tab, err := PETable(m, img)
	if err != nil {
		t.Fatal(err)
	}
	e := m.PE.Params()[0].T.Data
	if !slices.Equal(tab, e) {
		t.Error("learnable: PETable differs from pos_embed")
	}
	cfg.PE.Name = "sin1d"
	if m, err = NewViT[float64](cfg, 1); err != nil {
		t.Fatal(err)
	}
	want, err := FixedPE("sin1d", cfg.Dim, cfg.Grid(), cfg.Grid(), "")
	if err != nil {
		t.Fatal(err)
	}
	if tab, err = PETable(m, img); err != nil || len(tab) != len(want) || maxAbsDiff(tab, want) > 1e-12 {
		t.Errorf("sin1d: PETable differs from FixedPE (err %v)", err)
	}
	// LOOPE's table depends on the image through X_C.
	cfg.PE.Name = "loope"
	if m, err = NewViT[float64](cfg, 1); err != nil {
		t.Fatal(err)
	}
	gen := NewThreeCell(cfg.Grid(), cfg.Patch, 0)
	img2 := New[float64](1, 3, cfg.Image, cfg.Image)
	RenderThreeCell(img.Data, gen.Fixed(0), cfg.Patch)
	RenderThreeCell(img2.Data, gen.Fixed(1), cfg.Patch)
	t1, err1 := PETable(m, img)
	t2, err2 := PETable(m, img2)
	if err1 != nil || err2 != nil || len(t1) != cfg.Tokens()*cfg.Dim || maxAbsDiff(t1, t2) == 0 {
		t.Errorf("loope: errors %v, %v; want two different tables", err1, err2)
	}
	pe := &affinePE{E: New[float64](1, cfg.Tokens(), cfg.Dim).FillNormal(rand.New(rand.NewPCG(1, 2)), 0, 1)}
	m.PE = pe
	if _, err := PETable(m, img); err == nil || !strings.Contains(err.Error(), "not additive") {
		t.Errorf("x + x + E: err %v, want a not-additive error", err)
	}
}

// TestFreqDelta checks Δf_j = ‖f_j − f_1‖ / ‖f_1‖ at D = 4, where each set
// has the two entries f(0) = 1 and f(1) (docs/paper.md §9, L = D = 4):
// f1(1) = 0.978, f2(1) = 1 − 0.9999/3, f3(1) = 0.9.
func TestFreqDelta(t *testing.T) {
	t.Parallel()
	d, err := FreqDelta(4)
	if err != nil {
		t.Fatal(err)
	}
	norm := math.Sqrt(1 + 0.978*0.978)
	want := [4]float64{0, math.Abs(1-0.9999/3-0.978) / norm, math.Abs(0.9-0.978) / norm}
	for j := range 3 {
		if math.Abs(d[j]-want[j]) > 1e-12 {
			t.Errorf("Δf_%d = %.15g, want %.15g", j+1, d[j], want[j])
		}
	}
	if !(d[3] > 0) {
		t.Errorf("Δf_4 = %g, want > 0", d[3])
	}
}

// TestThreeCellValidate checks that bad settings are reported with the flag.
func TestThreeCellValidate(t *testing.T) {
	t.Parallel()
	model, _ := Preset("tiny")
	good := ThreeCellBenchConfig{Preset: "tiny", Model: model, PEs: []string{"none"}, Seeds: []uint64{0},
		Stream: true, TrainSize: 100, ValSize: 10, Steps: 10, Batch: 4, LR: 1e-3, MinLR: 1e-5}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		want string
		mod  func(c *ThreeCellBenchConfig)
	}{
		{"-pe: unknown", func(c *ThreeCellBenchConfig) { c.PEs = []string{"nope"} }},
		{"given twice", func(c *ThreeCellBenchConfig) { c.PEs = []string{"none", "none"} }},
		{"-seeds", func(c *ThreeCellBenchConfig) { c.Seeds = nil }},
		{"-train-size", func(c *ThreeCellBenchConfig) { c.Stream, c.TrainSize = false, 8001 }},
		{"-val-size", func(c *ThreeCellBenchConfig) { c.ValSize = 1001 }},
		{"-test-size", func(c *ThreeCellBenchConfig) { c.TestSize = -1 }},
		{"-freqs: unknown", func(c *ThreeCellBenchConfig) { c.Freqs = "f9" }},
		{"none of the PEs reads", func(c *ThreeCellBenchConfig) { c.Freqs = "f2" }},
		{"not among the PEs", func(c *ThreeCellBenchConfig) { c.PEOptions = []PEConfig{{Name: "loope"}} }},
		{"-pe fourier", func(c *ThreeCellBenchConfig) {
			c.PEs, c.PEOptions = []string{"fourier"}, []PEConfig{{Name: "fourier", Freqs: "f2"}} // fourier learns its frequencies
		}},
		{"-steps", func(c *ThreeCellBenchConfig) { c.Steps = 0 }},
		{"-batch", func(c *ThreeCellBenchConfig) { c.Batch = 0 }},
		{"-lr", func(c *ThreeCellBenchConfig) { c.MinLR = 1 }},
		{"-warmup", func(c *ThreeCellBenchConfig) { c.Warmup = 10 }},
		{"-wd", func(c *ThreeCellBenchConfig) { c.WeightDecay = math.NaN() }},
		{"-threads", func(c *ThreeCellBenchConfig) { c.Threads = -1 }},
		{"-preset", func(c *ThreeCellBenchConfig) { c.Model.Image, c.Model.Patch = 4, 2 }},
	} {
		c := good
		c.PEs, c.Seeds = slices.Clone(good.PEs), slices.Clone(good.Seeds)
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v", tc.want, err)
		}
	}
}

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
