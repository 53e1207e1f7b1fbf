package loope

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// crossMicro is a CrossViT small enough for a whole-model
// finite-difference check: 6 px, branch 0 patch 2 (grid 3, D 8), branch 1
// the image resized to 4 px, patch 2 (grid 2, D 16), 2 multi-scale blocks
// of [1, 2, 0].
func crossMicro(pe string) Config {
	return Config{Arch: "crossvit", Image: 6, Channels: 3, Patch: 2, Dim: 8, Heads: 2, MLP: 8,
		Image1: 4, Patch1: 2, Dim1: 16, Heads1: 2, MLP1: 16, Depth: 2, Depth0: 1, Depth1: 2,
		Classes: 3, Eps: 1e-6, PE: PEConfig{Name: pe}}
}

// TestCrossViTGradCheck compares the tape's gradient of Σ logits⊙R with
// central differences on random elements of every parameter of a micro
// CrossViT, for PEs of each way in: none, additive (learnable, sin1d,
// loope reading each branch's input), rotation (rope-axial), logit bias
// (rpe, pape), after a block (cpvt).
func TestCrossViTGradCheck(t *testing.T) {
	for ci, pe := range []string{"none", "learnable", "sin1d", "loope", "rope-axial", "rpe", "pape", "cpvt"} {
		t.Run(pe, func(t *testing.T) {
			m, err := NewCrossViT[float64](crossMicro(pe), uint64(ci))
			if err != nil {
				t.Fatal(err)
			}
			checkModelGrad(t, m, uint64(ci), 3)
		})
	}
}

// checkModelGrad (shared with cait_test.go) checks m's gradients of Σ logits⊙R (R random) against
// central differences (step 1e-6) on up to per random elements of each
// trained tensor, after setting every trained tensor to U(−0.5, 0.5).
// Both passes record (training mode: BatchNorm uses batch statistics).
func checkModelGrad(t *testing.T, m Model[float64], seed uint64, per int) {
	t.Helper()
	cfg := m.Config()
	rng := rand.New(rand.NewPCG(seed, 9))
	for _, p := range m.Params() {
		if !p.Buffer {
			p.T.FillUniform(rng, -0.5, 0.5)
		}
	}
	img := New[float64](2, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rng, 0, 1)
	r := make([]float64, 2*cfg.Classes)
	for i := range r {
		r[i] = rng.Float64()*2 - 1
	}
	loss := func() float64 {
		var tp Tape[float64]
		s := 0.0
		for i, v := range m.Forward(&tp, img).Data {
			s += v * r[i]
		}
		return s
	}
	var tp Tape[float64]
	tp.backwardFrom(m.Forward(&tp, img), r)
	for _, p := range m.Params() {
		if p.Buffer {
			continue
		}
		x := p.T
		for range min(per, x.Size()) {
			j := rng.IntN(x.Size())
			v := x.Data[j]
			x.Data[j] = v + 1e-6
			f1 := loss()
			x.Data[j] = v - 1e-6
			f0 := loss()
			x.Data[j] = v
			if a, n := x.Grad[j], (f1-f0)/2e-6; !(math.Abs(a-n) <= gradTol(n)) {
				t.Fatalf("%s elem %d: analytic %.10g, numeric %.10g", p.Name, j, a, n)
			}
		}
	}
}

// TestCrossViTConfigErrors: each bad CrossViT field gives an error naming
// it (and the branch).
func TestCrossViTConfigErrors(t *testing.T) {
	for _, c := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Depth0 = 0 }, "depth_0"},
		{func(c *Config) { c.Depth1 = -1 }, "depth_1"},
		{func(c *Config) { c.Image1 = 0 }, "image_1"},
		{func(c *Config) { c.Patch1 = 3 }, "branch 1: image 4 is not divisible by patch 3"},
		{func(c *Config) { c.Heads1 = 3 }, "branch 1: dim 16 is not divisible by heads 3"},
		{func(c *Config) { c.Dim = 7 }, "branch 0: dim 7"},
	} {
		cfg := crossMicro("learnable")
		c.edit(&cfg)
		_, err := NewModel[float32](cfg, 1)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error naming %q, got %v", c.want, err)
		}
	}
}

// TestCrossViTPresets: both presets validate; the tiny one builds and
// runs, its parameter count is crossViTParams plus its two learnable
// tables, and its names are timm's.
func TestCrossViTPresets(t *testing.T) {
	for _, name := range []string{"crossvit-b240", "crossvit-tiny"} {
		cfg, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Error(err)
		}
	}
	b240, _ := Preset("crossvit-b240")
	if g0, g1 := b240.crossBranch(0).Grid(), b240.crossBranch(1).Grid(); g0 != 20 || g1 != 14 {
		t.Errorf("crossvit-b240 grids %d, %d; timm: 240/12 = 20, 224/16 = 14", g0, g1)
	}
	cfg, _ := Preset("crossvit-tiny")
	m, err := NewModel[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := crossViTParams(cfg) + int64(cfg.crossBranch(0).Tokens()*cfg.Dim+cfg.crossBranch(1).Tokens()*cfg.Dim1)
	if got := NumParams(m); int64(got) != want {
		t.Errorf("crossvit-tiny has %d parameters, want %d", got, want)
	}
	names := map[string]bool{}
	for _, p := range m.Params() {
		names[p.Name] = true
	}
	for _, n := range []string{"pos_embed_0", "pos_embed_1", "cls_token_1", "patch_embed.1.proj.weight", "blocks.2.blocks.1.3.mlp.fc2.bias",
		"blocks.0.projs.1.2.weight", "blocks.1.fusion.0.attn.wk.weight", "blocks.2.revert_projs.0.0.bias", "norm.1.weight", "head.0.bias"} {
		if !names[n] {
			t.Errorf("no tensor %q", n)
		}
	}
	var tp Tape[float32]
	if out := m.Forward(&tp, New[float32](2, 3, 14, 14)); out.Shape[0] != 2 || out.Shape[1] != 6 {
		t.Errorf("logits %v", out.Shape)
	}
}

// TestCrossViTCheckpointErrors: a CrossViT checkpoint round-trips; a
// missing branch tensor or one of the wrong shape is an error naming it.
func TestCrossViTCheckpointErrors(t *testing.T) {
	cfg := crossMicro("learnable")
	m, err := NewCrossViT[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	if err := SaveCheckpoint(good, m, nil); err != nil {
		t.Fatal(err)
	}
	back, _, err := LoadModel[float32](good)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := back.(*CrossViT[float32]); !ok || back.Config() != cfg {
		t.Fatalf("loaded %T with config %+v", back, back.Config())
	}
	for _, c := range []struct {
		drop, reshape, want string
	}{
		{drop: "blocks.1.revert_projs.1.0.bias", want: `"blocks.1.revert_projs.1.0.bias"`},
		{drop: "cls_token_1", want: `"cls_token_1"`},
		{reshape: "pos_embed_1", want: `"pos_embed_1" has shape [1 4 16]`},
	} {
		f := NewSafeFile()
		for _, p := range m.Params() {
			switch p.Name {
			case c.drop:
			case c.reshape:
				if err := PutFloat(f, p.Name, make([]float32, 64), 1, 4, 16); err != nil {
					t.Fatal(err)
				}
			default:
				if err := PutFloat(f, p.Name, p.T.Data, p.T.Shape...); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.Metadata[metaConfig] = mustJSON(cfg)
		path := filepath.Join(dir, "bad.safetensors")
		if err := f.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadModel[float32](path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error naming %s, got %v", c.want, err)
		}
	}
}

// TestCrossViTEveryPE builds a micro CrossViT with every registered PE
// and runs a forward and backward with finite results.
func TestCrossViTEveryPE(t *testing.T) {
	for _, pe := range PENames() {
		m, err := NewModel[float64](crossMicro(pe), 1)
		if err != nil {
			t.Errorf("%s: %v", pe, err)
			continue
		}
		checkFiniteStep(t, pe, m)
	}
}
