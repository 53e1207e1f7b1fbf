package loope

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// caitMicro is a CaiT small enough for a whole-model finite-difference
// check: 4 px, patch 2 (grid 2, N = 5), D 8, 2 heads, one block of each
// kind. init_values 0.5 lets every block reach the logits by more than
// rounding.
func caitMicro(pe string) Config {
	return Config{Arch: "cait", Image: 4, Channels: 3, Patch: 2, Dim: 8, Depth: 1, Heads: 2, MLP: 8,
		Classes: 3, Eps: 1e-6, PE: PEConfig{Name: pe}, ClassDepth: 1, InitValues: 0.5}
}

// TestCaiTGradCheck compares the tape's gradient of Σ logits⊙R for every
// parameter of a micro CaiT with central finite differences, for PEs of
// each way in: none, additive (learnable, sin1d, loope reading the
// image), rotation (rope-axial, rope-mixed), logit bias (rpe, irpe-ctx),
// after a block (cpvt), and timm's learned CLS.
func TestCaiTGradCheck(t *testing.T) {
	cases := []struct {
		pe, cls string
		depth   int
	}{
		{"none", "", 1}, {"learnable", "", 1}, {"sin1d", "", 1}, {"loope", "", 1},
		{"rope-axial", "", 1}, {"rope-mixed", "", 2}, {"rpe", "", 1}, {"irpe-ctx", "", 1}, {"cpvt", "", 1},
		{"learnable", "learned", 1}, {"none", "learned", 2},
	}
	for ci, c := range cases {
		t.Run(c.pe+"/"+c.cls, func(t *testing.T) {
			cfg := caitMicro(c.pe)
			cfg.CaitCLS, cfg.ClassDepth = c.cls, c.depth
			m, err := NewCaiT[float64](cfg, uint64(ci))
			if err != nil {
				t.Fatal(err)
			}
			checkModelGrad(t, m, uint64(ci), 6)
		})
	}
}

// TestCaiTConfigErrors: each bad CaiT field gives an error naming it.
func TestCaiTConfigErrors(t *testing.T) {
	for _, c := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.ClassDepth = 0 }, "class_depth"},
		{func(c *Config) { c.ClassDepth = MaxDepth + 1 }, "class_depth"},
		{func(c *Config) { c.InitValues = math.NaN() }, "init_values"},
		{func(c *Config) { c.CaitCLS = "pe" }, "cait_cls"},
		{func(c *Config) { c.PE.Name = "pape" }, "pape"},
		{func(c *Config) { c.Heads = 3 }, "heads"},
		{func(c *Config) { c.Arch = "caat" }, "unknown architecture"},
	} {
		cfg := caitMicro("learnable")
		c.edit(&cfg)
		_, err := NewModel[float32](cfg, 1)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error naming %q, got %v", c.want, err)
		}
	}
	vit, _ := Preset("tiny")
	if _, err := NewCaiT[float32](vit, 1); err == nil || !strings.Contains(err.Error(), "vit") {
		t.Errorf("NewCaiT of a ViT config: %v", err)
	}
}

// TestCaiTPresets: both presets validate; the tiny one builds, runs and
// its parameter count is caitParams plus the PE's table, with timm's
// names.
func TestCaiTPresets(t *testing.T) {
	for _, name := range []string{"cait-s24", "cait-tiny"} {
		cfg, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Arch != "cait" || cfg.ClassDepth != 2 || cfg.InitValues != 1e-5 {
			t.Errorf("%s: %+v", name, cfg)
		}
		if err := cfg.Validate(); err != nil {
			t.Error(err)
		}
	}
	cfg, _ := Preset("cait-tiny")
	m, err := NewModel[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := caitParams(cfg) + int64(cfg.Tokens()*cfg.Dim) // learnable: N rows, row 0 the CLS
	if got := NumParams(m); int64(got) != want {
		t.Errorf("cait-tiny has %d parameters, want %d", got, want)
	}
	names := map[string]bool{}
	for _, p := range m.Params() {
		names[p.Name] = true
	}
	for _, n := range []string{"pos_embed", "blocks.3.attn.proj_l.weight", "blocks.0.attn.proj_w.bias", "blocks.0.gamma_1",
		"blocks_token_only.1.attn.q.weight", "blocks_token_only.0.gamma_2", "norm.weight", "head.bias"} {
		if !names[n] {
			t.Errorf("no tensor %q", n)
		}
	}
	if names["cls_token"] {
		t.Error("cls_token without CaitCLS learned")
	}
	var tp Tape[float32]
	out := m.Forward(&tp, New[float32](2, 3, 14, 14))
	if out.Shape[0] != 2 || out.Shape[1] != 6 {
		t.Errorf("logits %v", out.Shape)
	}
}

// TestCaiTCheckpointErrors: a CaiT checkpoint round-trips with its
// architecture in the config, and a missing tensor, a tensor of the wrong
// shape or a class-attention depth of 0 is an error naming it. (A missing
// tensor larger than the PE's table is refused earlier, by ConfigFromSafe's
// parameter count.)
func TestCaiTCheckpointErrors(t *testing.T) {
	cfg := caitMicro("learnable")
	m, err := NewCaiT[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, c Config, edit func(p NamedParam[float32]) (data []float32, shape []int, keep bool)) string {
		f := NewSafeFile()
		for _, p := range m.Params() {
			data, shape, keep := p.T.Data, p.T.Shape, true
			if edit != nil {
				data, shape, keep = edit(p)
			}
			if keep {
				if err := PutFloat(f, p.Name, data, shape...); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.Metadata[metaConfig] = mustJSON(c)
		path := filepath.Join(dir, name)
		if err := f.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := filepath.Join(dir, "good.safetensors")
	if err := SaveCheckpoint(good, m, nil); err != nil {
		t.Fatal(err)
	}
	back, _, err := LoadModel[float32](good)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := back.(*CaiT[float32]); !ok || back.Config().Arch != "cait" {
		t.Fatalf("loaded %T with arch %q", back, back.Config().Arch)
	}
	if _, _, err := LoadCheckpoint[float32](good); err == nil || !strings.Contains(err.Error(), "cait checkpoint") {
		t.Errorf("LoadCheckpoint of a CaiT: %v", err)
	}
	missing := write("missing.safetensors", cfg, func(p NamedParam[float32]) ([]float32, []int, bool) {
		return p.T.Data, p.T.Shape, p.Name != "blocks_token_only.0.gamma_1"
	})
	if _, _, err := LoadModel[float32](missing); err == nil || !strings.Contains(err.Error(), "blocks_token_only.0.gamma_1") {
		t.Errorf("missing tensor: %v", err)
	}
	shape := write("shape.safetensors", cfg, func(p NamedParam[float32]) ([]float32, []int, bool) {
		if p.Name == "blocks.0.attn.proj_l.weight" {
			return make([]float32, 9), []int{3, 3}, true
		}
		return p.T.Data, p.T.Shape, true
	})
	if _, _, err := LoadModel[float32](shape); err == nil || !strings.Contains(err.Error(), `"blocks.0.attn.proj_l.weight" has shape [3 3]`) {
		t.Errorf("wrong shape: %v", err)
	}
	c0 := cfg
	c0.ClassDepth = 0
	if _, _, err := LoadModel[float32](write("depth0.safetensors", c0, nil)); err == nil || !strings.Contains(err.Error(), "class_depth") {
		t.Errorf("class depth 0: %v", err)
	}
}

// TestCaiTEveryPE builds a micro CaiT with every registered PE and runs a
// forward and backward: finite logits and gradients, or, for the refused
// PEs only, a config error naming the PE.
func TestCaiTEveryPE(t *testing.T) {
	for _, pe := range PENames() {
		cfg := caitMicro(pe)
		m, err := NewModel[float64](cfg, 1)
		if _, refused := caitRefusedPEs[pe]; refused {
			if err == nil || !strings.Contains(err.Error(), pe) {
				t.Errorf("%s: want a config error naming it, got %v", pe, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", pe, err)
			continue
		}
		checkFiniteStep(t, pe, m)
	}
}

// checkFiniteStep runs one forward and backward of m on N(0, 1) images and
// reports non-finite logits or gradients.
func checkFiniteStep(t *testing.T, name string, m Model[float64]) {
	t.Helper()
	cfg := m.Config()
	img := New[float64](2, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rand.New(rand.NewPCG(1, 2)), 0, 1)
	var tp Tape[float64]
	out := m.Forward(&tp, img)
	tp.Backward(tp.Sum(tp.Mul(out, out)))
	for _, v := range out.Data {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("%s: logit %v", name, v)
			return
		}
	}
	for _, p := range m.Params() {
		for _, g := range p.T.Grad {
			if math.IsNaN(g) || math.IsInf(g, 0) {
				t.Errorf("%s: gradient %v in %s", name, g, p.Name)
				return
			}
		}
	}
}
