package loope

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// attnPENames are the PEs of rope.go, relpos.go, cpvt.go, comrope.go,
// liere.go, string.go, rope_dinov3.go and pape.go.
var attnPENames = []string{"rpe", "irpe", "irpe-ctx", "rope-axial", "rope-mixed", "rope-1d", "cpvt",
	"comrope-ap", "comrope-ld", "liere", "string", "rope-dinov3", "pape"}

// TestAttentionPEParamCounts pins the PE parameter counts of ti16 to the
// docs/pe-zoo.md §15 rows: rpe (BEiT index, 3 CLS entries) 26,352; irpe
// (product, ratio 1.9, per head) 1,800; irpe-ctx (contextual, shared, on
// keys) 38,400 + 37,824 APE; RoPE-Mixed 2,304; RoPE-Axial
// and 1-D RoPE 0; CPVT 1,920; ComRoPE-AP (b 2) 12·3·32·2·2 = 4,608;
// ComRoPE-LD 4,608 + 12·2·32 = 5,376; LieRE 2·64·64 = 8,192 stored (4,032
// of them, the strict upper triangles, trained); STRING 2,304 + 12·64·64 =
// 51,456; rope-dinov3 0; PaPE 12·(3·50·2 + 2·3·50·192) = 694,800. The backbone without a PE has 5,717,416 −
// 37,824 parameters (timm's ti16 with its 37,824-entry APE, 1000 classes).
func TestAttentionPEParamCounts(t *testing.T) {
	const backbone = 5717416 - 37824
	want := map[string]int{"rpe": 26352, "irpe": 1800, "irpe-ctx": 38400 + 37824, "rope-axial": 0,
		"rope-mixed": 2304, "rope-1d": 0, "cpvt": 1920, "comrope-ap": 4608, "comrope-ld": 5376, "liere": 8192,
		"string": 2304 + 12*64*64, "rope-dinov3": 0,
		"pape": 12 * (3*50*2 + 2*3*50*192)}
	for _, name := range attnPENames {
		cfg, _ := Preset("ti16")
		cfg.Classes, cfg.PE.Name = 1000, name
		m, err := NewViT[float32](cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		pe := 0
		for _, p := range m.PE.Params() {
			pe += p.T.Size()
		}
		if pe != want[name] || m.NumParams() != backbone+want[name] {
			t.Errorf("%s: PE %d, model %d parameters; want %d, %d", name, pe, m.NumParams(), want[name], backbone+want[name])
		}
	}
}

// TestAttentionPEGradFD checks, in float64, the gradient of Σ logits⊙R
// through a tiny ViT (image 8, patch 2, D 8, depth 2, 2 heads) with each
// PE against central finite differences at a few random coordinates of
// every PE parameter (mostly where the gradient is nonzero) and of both
// blocks' qkv weights (through which RoPE
// and the biases act on q and k). Zero-initialised tables are first
// randomised so that no term vanishes.
func TestAttentionPEGradFD(t *testing.T) {
	for pi, name := range attnPENames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := tinyAttnConfig(name)
			m, err := NewViT[float64](cfg, uint64(pi))
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(pi), 99))
			for _, p := range m.PE.Params() {
				for i := range p.T.Data {
					p.T.Data[i] += 0.3 * (2*rng.Float64() - 1)
				}
			}
			x := New[float64](2, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rng, 0, 1)
			r := New[float64](2, cfg.Classes).FillUniform(rng, -1, 1)
			loss := func(tp *Tape[float64]) *Tensor[float64] { return tp.Sum(tp.Mul(m.Forward(tp, x), r)) }
			var tp Tape[float64]
			tp.Backward(loss(&tp))
			check := []NamedParam[float64]{}
			for _, p := range m.Params() {
				if strings.HasPrefix(p.Name, "pos_embed") || strings.HasSuffix(p.Name, "attn.qkv.weight") {
					check = append(check, p)
				}
			}
			for _, p := range check {
				var nz []int // coordinates with a nonzero gradient (some table rows are unused on a 4×4 grid)
				for i, g := range p.T.Grad {
					if g != 0 {
						nz = append(nz, i)
					}
				}
				for c := range 6 {
					i := rng.IntN(p.T.Size())
					if c < 4 && len(nz) > 0 {
						i = nz[rng.IntN(len(nz))]
					}
					v := p.T.Data[i]
					const h = 1e-6
					var f [2]float64
					for s, d := range []float64{h, -h} {
						p.T.Data[i] = v + d
						var tp Tape[float64]
						tp.NoGrad = true
						f[s] = loss(&tp).Data[0]
					}
					p.T.Data[i] = v
					numeric := (f[0] - f[1]) / (2 * h)
					// The loss is O(1), so the central difference is good to
					// ~1e-10 absolute; PE gradients here are ~1e-5.
					if a := p.T.Grad[i]; !(math.Abs(a-numeric) <= 1e-9+1e-5*math.Abs(numeric)) {
						t.Errorf("%s[%d]: analytic %.10g, numeric %.10g", p.Name, i, a, numeric)
					}
				}
			}
		})
	}
}

// TestAttentionPETables checks the export names and shapes, and that the
// exported rpe/irpe biases are the tables looked up at the exported index.
func TestAttentionPETables(t *testing.T) {
	want := map[string][]string{
		"rpe":        {"rpe.bias.layer0", "rpe.bias.layer1", "rpe.index", "rpe.table.layer0", "rpe.table.layer1"},
		"irpe":       {"irpe.bias.layer0", "irpe.bias.layer1", "irpe.buckets", "irpe.table.layer0", "irpe.table.layer1"},
		"irpe-ctx":   {"irpe.buckets", "irpe_ctx.table.layer0", "irpe_ctx.table.layer1", "pos_embed"},
		"rope-axial": {"rope.angles"},
		"rope-1d":    {"rope.angles"},
		"rope-mixed": {"rope.angles.layer0", "rope.angles.layer1", "rope.freqs"},
		"cpvt":       {"cpvt.bias", "cpvt.weight"},
		"comrope-ap": {"comrope.freqs.layer0", "comrope.freqs.layer1", "comrope.positions", "comrope.rotation.layer0", "comrope.rotation.layer1"},
		"comrope-ld": {"comrope.freqs.layer0", "comrope.freqs.layer1", "comrope.multiplier.layer0", "comrope.multiplier.layer1",
			"comrope.positions", "comrope.rotation.layer0", "comrope.rotation.layer1"},
		"liere":       {"liere.generators", "liere.positions", "liere.rotation"},
		"rope-dinov3": {"rope.angles", "rope.coords"},
		"pape":        {"pape.ab.layer0", "pape.ab.layer1", "pape.position.layer0", "pape.position.layer1", "pape.positions"},
		"string":      {"rope.angles.layer0", "rope.angles.layer1", "rope.freqs", "string.basis.layer0", "string.basis.layer1", "string.cayley_s"},
	}
	for _, name := range attnPENames {
		cfg := tinyAttnConfig(name)
		tables, text, err := AttentionPETables(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for k := range tables {
			names = append(names, k)
		}
		sort.Strings(names)
		if strings.Join(names, " ") != strings.Join(want[name], " ") || !strings.HasPrefix(text, name) {
			t.Errorf("%s: tables %v, text %q; want %v", name, names, text, want[name])
		}
	}
	n, h, k := 17, 2, 50
	tb, _, _ := AttentionPETables(tinyAttnConfig("rpe"), 2)
	ib, _, _ := AttentionPETables(tinyAttnConfig("irpe"), 2)
	for hh := range h {
		for ij := range n * n {
			if got, want := tb["rpe.bias.layer1"].Data[hh*n*n+ij], tb["rpe.table.layer1"].Data[int(tb["rpe.index"].Data[ij])*h+hh]; got != want {
				t.Fatalf("rpe bias[%d, %d] = %v, want %v", hh, ij, got, want)
			}
			if got, want := ib["irpe.bias.layer1"].Data[hh*n*n+ij], ib["irpe.table.layer1"].Data[hh*k+int(ib["irpe.buckets"].Data[ij])]; got != want {
				t.Fatalf("irpe bias[%d, %d] = %v, want %v", hh, ij, got, want)
			}
		}
	}
	if ax, _, _ := AttentionPETables(tinyAttnConfig("rope-axial"), 1); !sameShape(ax["rope.angles"].Shape, []int{16, 2}) {
		t.Errorf("rope.angles shape %v, want (16, 2)", ax["rope.angles"].Shape)
	}
	if _, _, err := AttentionPETables(tinyAttnConfig("learnable"), 1); err == nil {
		t.Error("learnable: no error")
	}
}

// affinePE is a test PE whose AddInput is x + x + E: not additive.
type affinePE struct {
	NoHooks[float64]
	E *Tensor[float64]
}

func (p *affinePE) Name() string { return "affine" }

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
