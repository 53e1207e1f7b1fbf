package loope

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// newTestLoope builds the LOOPE module of cfg with a random CLS vector
// (zero at init, made non-zero so the CLS-row check can fail).
func newTestLoope(t *testing.T, cfg Config, seed uint64) *loopePE[float64] {
	t.Helper()
	m, err := NewViT[float64](cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	p := m.PE.(*loopePE[float64])
	for _, v := range p.CLS.Data {
		if v != 0 {
			t.Fatalf("CLS PE not zero at init: %v", p.CLS.Data)
		}
	}
	p.CLS.FillNormal(rand.New(rand.NewPCG(seed, 5)), 0, 1)
	return p
}

// TestLoopeInit (docs/paper.md §12 check 3, at the ti16 shape with D = 192
// and the small preset): X_C (B, N) lies strictly inside (−1, 1) for both
// squashings; the PE is (B, N+1, D); row 0 is the learnable CLS vector; rows
// 1…N are the interleaved sinusoid at X_G + X_C, X_G the 1-based Gilbert
// index (Sinusoid1D, computed here independently of the tape).
func TestLoopeInit(t *testing.T) {
	ti16, _ := Preset("ti16")
	small, _ := Preset("small")
	for _, tc := range []struct {
		name  string
		cfg   Config
		pe    PEConfig
		batch int
	}{
		{"ti16", ti16, PEConfig{Name: "loope"}, 2},
		{"small-tanh", small, PEConfig{Name: "loope", LoopeSquash: "tanh", Freqs: "f3"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Depth, cfg.PE = 1, tc.pe
			p := newTestLoope(t, cfg, 7)
			rng := rand.New(rand.NewPCG(1, 2))
			img := New[float64](tc.batch, 3, cfg.Image, cfg.Image).FillNormal(rng, 0, 1)
			var tp Tape[float64]
			xc := p.context(&tp, img)
			n, d := cfg.Grid()*cfg.Grid(), cfg.Dim
			if !slices.Equal(xc.Shape, []int{tc.batch, n}) {
				t.Fatalf("X_C shape %v, want [%d %d]", xc.Shape, tc.batch, n)
			}
			lo, hi := 1.0, -1.0
			for _, v := range xc.Data {
				lo, hi = min(lo, v), max(hi, v)
			}
			if !(lo > -1 && hi < 1) || lo == hi {
				t.Errorf("X_C in [%g, %g], want a non-constant range strictly inside (−1, 1)", lo, hi)
			}
			t.Logf("X_C range at init [%.4f, %.4f]", lo, hi)
			tp.Reset()
			pe := p.embed(&tp, img)
			if !slices.Equal(pe.Shape, []int{tc.batch, n + 1, d}) {
				t.Fatalf("PE shape %v, want [%d %d %d]", pe.Shape, tc.batch, n+1, d)
			}
			freqs, _ := FreqSet(tc.pe.Freqs, d)
			xg := OrderPositions(Gilbert(cfg.Grid(), cfg.Grid()))[1:]
			for b := range tc.batch {
				rows := pe.Data[b*(n+1)*d : (b+1)*(n+1)*d]
				if !slices.Equal(rows[:d], p.CLS.Data) {
					t.Fatalf("batch %d: PE row 0 is not the CLS vector", b)
				}
				pos := make([]float64, n)
				for i := range pos {
					pos[i] = xg[i] + xc.Data[b*n+i]
				}
				want := Sinusoid1D(pos, d, freqs)
				for i, w := range want {
					if math.Abs(rows[d+i]-w) > 1e-12 {
						t.Fatalf("batch %d: PE element %d = %v, want %v", b, d+i, rows[d+i], w)
					}
				}
			}
		})
	}
}

// TestLoopeZeroContextIsHilbert: with the Linear weight zeroed, 2σ(0) − 1 = 0,
// so X = X_G and the patch rows equal the fixed "hilbert" table.
func TestLoopeZeroContextIsHilbert(t *testing.T) {
	cfg := peTestConfig(PEConfig{Name: "loope", Freqs: "f1"})
	p := newTestLoope(t, cfg, 1)
	clear(p.LinW.Data)
	img := New[float64](2, 3, cfg.Image, cfg.Image).FillNormal(rand.New(rand.NewPCG(3, 3)), 0, 1)
	tp := Tape[float64]{NoGrad: true}
	pe := p.embed(&tp, img)
	want, _ := FixedPE("hilbert", cfg.Dim, cfg.Grid(), cfg.Grid(), "f1")
	rows := len(want) / cfg.Dim
	for b := range 2 {
		for i := cfg.Dim; i < len(want); i++ {
			if g := pe.Data[b*rows*cfg.Dim+i]; math.Abs(g-want[i]) > 1e-15 {
				t.Fatalf("batch %d element %d = %v, want %v", b, i, g, want[i])
			}
		}
	}
}

// TestLoopeTrainEval: a recording tape is training mode (BatchNorm on
// batch statistics, running statistics updated with momentum 0.1 and the
// unbiased variance), a no-grad tape is inference mode (running statistics,
// untouched; an image's PE does not depend on the rest of the batch), and
// Evaluate runs in inference mode.
func TestLoopeTrainEval(t *testing.T) {
	cfg := peTestConfig(PEConfig{Name: "loope"})
	p := newTestLoope(t, cfg, 2)
	img := New[float64](3, 3, cfg.Image, cfg.Image).FillNormal(rand.New(rand.NewPCG(4, 4)), 0, 1)
	one := &Tensor[float64]{Shape: []int{1, 3, cfg.Image, cfg.Image}, Data: img.Data[:3*cfg.Image*cfg.Image]}

	eval := Tape[float64]{NoGrad: true}
	all := p.context(&eval, img).Data[:cfg.Grid()*cfg.Grid()]
	alone := p.context(&eval, one).Data
	if !slices.Equal(all, alone) {
		t.Error("inference mode: an image's X_C depends on the rest of the batch")
	}
	if p.BNMean.Data[0] != 0 || p.BNVar.Data[0] != 1 {
		t.Errorf("inference mode changed the running statistics to %v, %v", p.BNMean.Data, p.BNVar.Data)
	}

	// Training mode: BatchNorm on batch statistics, and the running
	// statistics move to 0.9·old + 0.1·batch (unbiased variance).
	pre := p.convs(&Tape[float64]{NoGrad: true}, img).Data // BatchNorm input (3, 1, h, w)
	mean, ss := 0.0, 0.0
	for _, v := range pre {
		mean += v
	}
	mean /= float64(len(pre))
	for _, v := range pre {
		ss += (v - mean) * (v - mean)
	}
	xcAll := p.context(&Tape[float64]{}, img).Data[:cfg.Grid()*cfg.Grid()]
	if got, want := p.BNMean.Data[0], 0.1*mean; math.Abs(got-want) > 1e-15 {
		t.Errorf("running mean after a training forward %v, want %v", got, want)
	}
	if got, want := p.BNVar.Data[0], 0.9+0.1*ss/float64(len(pre)-1); math.Abs(got-want) > 1e-15 {
		t.Errorf("running variance after a training forward %v, want %v", got, want)
	}
	xcOne := p.context(&Tape[float64]{}, one).Data
	if slices.Equal(xcAll, xcOne) {
		t.Error("training mode: X_C does not depend on the batch")
	}

	// Evaluate leaves the running statistics alone.
	m, _ := NewViT[float64](cfg, 9)
	lp := m.PE.(*loopePE[float64])
	lp.BNMean.Data[0], lp.BNVar.Data[0] = 0.25, 2
	Evaluate(m, brightSpot{n: 4, side: cfg.Image, ch: 3}, "ce", 2)
	if lp.BNMean.Data[0] != 0.25 || lp.BNVar.Data[0] != 2 {
		t.Errorf("Evaluate changed the running statistics to %v, %v", lp.BNMean.Data, lp.BNVar.Data)
	}
}

func TestLoopeOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		pe   PEConfig
		want string
	}{
		{PEConfig{Name: "loope", LoopeSquash: "softsign"}, "unknown squash \"softsign\""},
		{PEConfig{Name: "loope", LoopeAct: "silu"}, "unknown activation \"silu\""},
		{PEConfig{Name: "loope", Freqs: "f7"}, "unknown frequency set \"f7\""},
	} {
		if _, err := NewViT[float32](peTestConfig(tc.pe), 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error containing %q", tc.pe, err, tc.want)
		}
	}
}

// TestLoopeNeedsGrid2: LOOPE on a 1×1 grid is refused when the model is
// built, not by a BatchNorm panic in the first training step.
func TestLoopeNeedsGrid2(t *testing.T) {
	cfg := Config{Image: 8, Channels: 1, Patch: 8, Dim: 4, Depth: 1, Heads: 1, MLP: 2, Classes: 2, Eps: 1e-6, PE: PEConfig{Name: "loope"}}
	if _, err := NewViT[float32](cfg, 1); err == nil || !strings.Contains(err.Error(), "needs at least 2×2 patches") {
		t.Errorf("grid 1: got %v", err)
	}
	cfg.Patch = 4
	m, err := NewViT[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	var tp Tape[float32]
	img := New[float32](1, 1, 8, 8)
	tp.Backward(tp.BCEWithLogits(m.Forward(&tp, img), New[float32](1, 2)))
}
