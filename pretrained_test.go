package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The committed timm-named checkpoint and its PyTorch goldens, both from
// testdata/gen/timm_ckpt.py (regenerate: /usr/bin/python3 testdata/gen/timm_ckpt.py).
const (
	timmCkpt   = "testdata/timm_tiny.safetensors"
	timmGolden = "testdata/timm_tiny.golden.safetensors"
	timmHeadsN = 2 // the generator's HEADS: not in the shapes
)

func readTimm(t *testing.T) (ckpt, golden *SafeFile) {
	t.Helper()
	ckpt, err := ReadSafeFile(timmCkpt)
	if err != nil {
		t.Fatal(err)
	}
	if golden, err = ReadSafeFile(timmGolden); err != nil {
		t.Fatal(err)
	}
	return ckpt, golden
}

// TestTimmConfig: the config read from the shapes is the generator's
// (timm_ckpt.py: D 32, depth 2, MLP 128, patch 16, image 64, 1000 classes).
func TestTimmConfig(t *testing.T) {
	f, _ := readTimm(t)
	got, err := TimmConfig(f, timmHeadsN)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Image: 64, Channels: 3, Patch: 16, Dim: 32, Depth: 2, Heads: 2, MLP: 128, Classes: 1000,
		Eps: 1e-6, PE: PEConfig{Name: "learnable"}}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestTimmHeads: the head counts of timm's vit_tiny/small/base/large/huge.
func TestTimmHeads(t *testing.T) {
	for _, tc := range []struct{ dim, heads int }{{192, 3}, {384, 6}, {768, 12}, {1024, 16}, {1280, 16}, {32, 0}} {
		h, ok := TimmHeads(tc.dim)
		if h != tc.heads || ok != (tc.heads > 0) {
			t.Errorf("TimmHeads(%d) = %d, %v; want %d", tc.dim, h, ok, tc.heads)
		}
	}
}

// TestResamplePosEmbedTorch: ResamplePosEmbed equals timm's
// resample_abs_pos_embed (F.interpolate bicubic, align_corners=False, with
// and without antialias), up (4→7) and down (4→3): within 1e-12 of
// PyTorch in float64, and within 1e-6 of PyTorch's float32 result (as timm
// computes it) relative to the map's largest value (≈ 1.5; float32 torch
// itself is 1.2e-6 from float64 torch there).
func TestResamplePosEmbedTorch(t *testing.T) {
	f, gd := readTimm(t)
	pe, shape, err := GetFloat[float64](f, "pos_embed")
	if err != nil {
		t.Fatal(err)
	}
	d := shape[2]
	for _, grid := range []int{3, 7} {
		for _, aa := range []int{0, 1} {
			name := fmt.Sprintf("resample.%d.aa%d", grid, aa)
			got := ResamplePosEmbed(pe, d, 4, grid, 1, aa == 1)
			want64, wshape, err := GetFloat[float64](gd, name+".f64")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want64) || wshape[1] != 1+grid*grid {
				t.Fatalf("%s: got %d values, want %d (shape %v)", name, len(got), len(want64), wshape)
			}
			worst := 0.0
			for i := range got {
				worst = math.Max(worst, math.Abs(got[i]-want64[i]))
			}
			if !(worst <= 1e-12) {
				t.Errorf("%s.f64: max abs error %.3g, want <= 1e-12", name, worst)
			}
			want32, _, err := GetFloat[float64](gd, name)
			if err != nil {
				t.Fatal(err)
			}
			if worst, at, ok := relClose(got, want32, 1e-6); !ok {
				t.Errorf("%s: element %d off by %.3g relative: got %v, want %v", name, at, worst, got[at], want32[at])
			}
		}
	}
}

// TestResamplePatchEmbedTorch: ResamplePatchEmbed equals timm's
// resample_patch_embed (pinv of the bicubic resize) in float64 PyTorch,
// down (16→4) and up (16→24), with and without antialias.
func TestResamplePatchEmbedTorch(t *testing.T) {
	f, gd := readTimm(t)
	w, _, err := GetFloat[float64](f, "patch_embed.proj.weight")
	if err != nil {
		t.Fatal(err)
	}
	const n = 2 * 3 // the golden holds the first two output channels (D) of 3 input channels
	for _, p := range []int{4, 24} {
		for _, aa := range []int{0, 1} {
			name := fmt.Sprintf("patch.%d.aa%d.f64", p, aa)
			want, _, err := GetFloat[float64](gd, name)
			if err != nil {
				t.Fatal(err)
			}
			got := ResamplePatchEmbed(w[:n*16*16], n, 16, p, aa == 1)
			if worst, at, ok := relClose(got, want, 1e-10); !ok {
				t.Errorf("%s: element %d off by %.3g relative: got %v, want %v", name, at, worst, got[at], want[at])
			}
		}
	}
}

// TestResamplePatchEmbedInverts: upsampling the kernel is exact in the
// FlexiViT sense: ⟨x, K⟩ = ⟨resize(x), K'⟩ for every patch x, since the
// resize has full column rank (pinv(W)·W = I); checked on a random patch.
func TestResamplePatchEmbedInverts(t *testing.T) {
	const oldP, newP = 4, 7
	rng := rand.New(rand.NewPCG(1, 2))
	k := make([]float64, oldP*oldP)
	x := make([]float64, oldP*oldP)
	for i := range k {
		k[i], x[i] = rng.NormFloat64(), rng.NormFloat64()
	}
	k2 := ResamplePatchEmbed(k, 1, oldP, newP, true)
	w := bicubicWeights(oldP, newP, true) // (newP, oldP)
	// resize(x) = W·x·Wᵀ
	rx := make([]float64, newP*newP)
	for i := range newP {
		for j := range newP {
			for a := range oldP {
				for b := range oldP {
					rx[i*newP+j] += w[i*oldP+a] * x[a*oldP+b] * w[j*oldP+b]
				}
			}
		}
	}
	dot := func(a, b []float64) float64 {
		s := 0.0
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	if got, want := dot(rx, k2), dot(x, k); math.Abs(got-want) > 1e-12*(1+math.Abs(want)) {
		t.Errorf("⟨resize(x), K'⟩ = %.15g, want ⟨x, K⟩ = %.15g", got, want)
	}
}

// TestResamplePosEmbedInvariants: equal grids copy; a constant map stays
// constant (both filters' weights sum to one); prefix rows are kept.
func TestResamplePosEmbedInvariants(t *testing.T) {
	const d = 3
	pe := make([]float64, (2+5*5)*d)
	for i := range pe {
		pe[i] = 0.25
	}
	pe[0], pe[d+1] = 7, -3 // two prefix rows
	same := ResamplePosEmbed(pe, d, 5, 5, 2, true)
	same[0] = 99
	if pe[0] != 7 {
		t.Error("equal grids must return a copy")
	}
	for _, aa := range []bool{false, true} {
		for _, g := range []int{2, 3, 8, 11} {
			out := ResamplePosEmbed(pe, d, 5, g, 2, aa)
			if out[0] != 7 || out[d+1] != -3 {
				t.Errorf("aa %v grid %d: prefix rows changed", aa, g)
			}
			for i, v := range out[2*d:] {
				if math.Abs(v-0.25) > 1e-15 {
					t.Fatalf("aa %v grid %d: element %d = %.17g, want 0.25", aa, g, i, v)
				}
			}
		}
	}
}

// TestLoadTimmViTTorch: the imported model gives PyTorch's logits of the
// same timm model, at the native 64 px, at 48 px with pos_embed resampled
// as timm does by default (antialias), and with patch 4 at 20 px (patch
// embedding and pos_embed resampled), within 1e-4 relative.
func TestLoadTimmViTTorch(t *testing.T) {
	f, gd := readTimm(t)
	for _, tc := range []struct {
		image        int
		input, logit string
		patch        int
	}{{64, "input", "logits", 16}, {48, "input48", "logits48", 16}, {20, "input20p4", "logits20p4", 4}} {
		cfg, err := TimmConfig(f, timmHeadsN)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Image, cfg.Patch = tc.image, tc.patch
		check := func(t *testing.T, got []float64, fresh []string) {
			if len(fresh) != 0 {
				t.Errorf("fresh tensors %v, want none", fresh)
			}
			want, _, err := GetFloat[float64](gd, tc.logit)
			if err != nil {
				t.Fatal(err)
			}
			if worst, at, ok := relClose(got, want, 1e-4); !ok {
				t.Errorf("logits: element %d off by %.3g relative: got %v, want %v", at, worst, got[at], want[at])
			}
		}
		t.Run(tc.logit+"/f32", func(t *testing.T) {
			m, fresh, err := LoadTimmViT[float32](f, cfg, TimmOptions{})
			if err != nil {
				t.Fatal(err)
			}
			x, err := GetTensor[float32](gd, tc.input)
			if err != nil {
				t.Fatal(err)
			}
			var tp Tape[float32]
			check(t, toF64(m.Forward(&tp, x)).Data, fresh)
		})
		t.Run(tc.logit+"/f64", func(t *testing.T) {
			m, fresh, err := LoadTimmViT[float64](f, cfg, TimmOptions{})
			if err != nil {
				t.Fatal(err)
			}
			x, err := GetTensor[float64](gd, tc.input)
			if err != nil {
				t.Fatal(err)
			}
			var tp Tape[float64]
			check(t, m.Forward(&tp, x).Data, fresh)
		})
	}
}

// TestLoadTimmViTErrors: missing, misshapen and foreign tensors, a
// non-timm file, a different patch and an unknown width are clear errors.
func TestLoadTimmViTErrors(t *testing.T) {
	f, _ := readTimm(t)
	base, err := TimmConfig(f, timmHeadsN)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(fn func(g *SafeFile)) *SafeFile {
		g := NewSafeFile()
		for _, n := range f.Names {
			if err := g.Put(n, f.Tensors[n]); err != nil {
				t.Fatal(err)
			}
		}
		fn(g)
		return g
	}
	drop := func(name string) func(g *SafeFile) {
		return func(g *SafeFile) {
			delete(g.Tensors, name)
			g.Names = slices.DeleteFunc(g.Names, func(s string) bool { return s == name })
		}
	}
	reshape := func(name string, shape ...int) func(g *SafeFile) {
		return func(g *SafeFile) {
			drop(name)(g)
			if err := PutFloat(g, name, make([]float32, prodInts(shape)), shape...); err != nil {
				t.Fatal(err)
			}
		}
	}
	foreign := NewSafeFile()
	if err := PutFloat(foreign, "conv1.weight", make([]float32, 8), 2, 1, 2, 2); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		f     *SafeFile
		cfg   func(c *Config)
		heads int
		want  string
	}{
		{"missing qkv", edit(drop("blocks.1.attn.qkv.weight")), nil, 2, `no tensor "blocks.1.attn.qkv.weight"`},
		{"missing norm", edit(drop("norm.bias")), nil, 2, `no tensor "norm.bias"`},
		{"wrong shape", edit(reshape("blocks.0.attn.proj.weight", 32, 16)), nil, 2, `"blocks.0.attn.proj.weight" has shape [32 16], model wants [32 32]`},
		{"extra tensor", edit(reshape("fc_norm.weight", 32)), nil, 2, `unexpected tensor "fc_norm.weight"`},
		{"bad pos_embed", edit(reshape("pos_embed", 1, 15, 32)), nil, 2, "pos_embed has shape [1 15 32]"},
		{"not timm", foreign, nil, 2, "not a timm VisionTransformer checkpoint"},
		{"depth", f, func(c *Config) { c.Depth = 3 }, 2, "depth 2 (model 3)"},
		{"heads", f, nil, 0, "give the head count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			_, err := TimmConfig(tc.f, tc.heads)
			if err == nil {
				_, _, err = LoadTimmViT[float32](tc.f, cfg, TimmOptions{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestLoadTimmViTOwnCheckpoint: a checkpoint of ours (learnable PE, with
// optimiser moments) loads through the timm path into the same model.
func TestLoadTimmViTOwnCheckpoint(t *testing.T) {
	cfg, _ := Preset("tiny")
	cfg.Dim, cfg.Heads, cfg.MLP, cfg.Depth, cfg.Classes = 16, 2, 48, 2, 5
	m, err := NewViT[float32](cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	if err := SaveCheckpoint(path, m, NewAdamW(m.Params(), 0.05)); err != nil {
		t.Fatal(err)
	}
	f, err := ReadSafeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := TimmConfig(f, cfg.Heads)
	if err != nil {
		t.Fatal(err)
	}
	if got != cfg {
		t.Fatalf("TimmConfig: got %+v, want %+v", got, cfg)
	}
	m2, fresh, err := LoadTimmViT[float32](f, got, TimmOptions{Seed: 99})
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) != 0 {
		t.Errorf("fresh tensors %v, want none", fresh)
	}
	x := New[float32](2, cfg.Channels, cfg.Image, cfg.Image)
	for i := range x.Data {
		x.Data[i] = float32(math.Sin(float64(i)))
	}
	var tp Tape[float32]
	want := slices.Clone(m.Forward(&tp, x).Data)
	tp.Reset()
	if g := m2.Forward(&tp, x).Data; !slices.Equal(g, want) {
		t.Errorf("logits differ: got %v, want %v", g, want)
	}
}

// TestLoadTimmViTFineTune: swap the PE (fresh parameters), put a new
// 10-class head, keep the backbone, and fine-tune a few steps with Train.
func TestLoadTimmViTFineTune(t *testing.T) {
	f, _ := readTimm(t)
	for _, pe := range []string{"loope", "sin1d"} {
		t.Run(pe, func(t *testing.T) {
			cfg, err := TimmConfig(f, timmHeadsN)
			if err != nil {
				t.Fatal(err)
			}
			cfg.PE, cfg.Classes = PEConfig{Name: pe}, 10
			m, fresh, err := LoadTimmViT[float32](f, cfg, TimmOptions{Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			var wantFresh []string
			for _, p := range m.PE.Params() {
				wantFresh = append(wantFresh, p.Name)
			}
			wantFresh = append(wantFresh, "head.weight", "head.bias")
			if !slices.Equal(fresh, wantFresh) {
				t.Errorf("fresh tensors %v, want %v", fresh, wantFresh)
			}
			qkv, _, _ := GetFloat[float32](f, "blocks.1.attn.qkv.weight")
			if !slices.Equal(m.Blocks[1].QKVW.Data, qkv) {
				t.Error("blocks.1.attn.qkv.weight not loaded")
			}
			if m.HeadW.Shape[0] != 10 || m.HeadB.Data[0] != 0 {
				t.Errorf("head %v, bias[0] %v: want a fresh (10, D) head with zero bias", m.HeadW.Shape, m.HeadB.Data[0])
			}
			ds := brightSpot{n: 32, side: cfg.Image, ch: cfg.Channels}
			before := Evaluate(m, ds, "ce", 16)
			after, err := Train(m, ds, ds, TrainConfig{Steps: 8, Batch: 8, LR: 1e-3, MinLR: 1e-4, Warmup: 2,
				WeightDecay: 0.05, Loss: "ce", Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("loss %.4f → %.4f, acc %.3f → %.3f", before.Loss, after.Loss, before.Acc, after.Acc)
			if math.IsNaN(after.Loss) || math.IsInf(after.Loss, 0) || !(after.Loss < before.Loss) {
				t.Errorf("fine-tuning: loss %.4f → %.4f, want finite and lower", before.Loss, after.Loss)
			}
		})
	}
}

// TestHalfToFloat32: IEEE 754 binary16 values with exact binary32 twins.
func TestHalfToFloat32(t *testing.T) {
	for _, tc := range []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x3800, 0.5}, {0x7bff, 65504},
		{0x0001, 1.0 / (1 << 24)}, {0x03ff, 1023.0 / (1 << 24)}, {0x0400, 1.0 / (1 << 14)},
		{0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))},
	} {
		if got := halfToFloat32(tc.h); got != tc.want {
			t.Errorf("halfToFloat32(%#04x) = %v, want %v", tc.h, got, tc.want)
		}
	}
	if v := halfToFloat32(0x7e00); !math.IsNaN(float64(v)) {
		t.Errorf("halfToFloat32(0x7e00) = %v, want NaN", v)
	}
}

// TestTimmFloatHalf: F16 and BF16 tensors load widened.
func TestTimmFloatHalf(t *testing.T) {
	f := NewSafeFile()
	if err := f.Put("h", SafeTensor{DType: "F16", Shape: []int{2}, Data: []byte{0x00, 0x3c, 0x00, 0xc0}}); err != nil {
		t.Fatal(err)
	}
	if err := f.Put("b", SafeTensor{DType: "BF16", Shape: []int{2}, Data: []byte{0x80, 0x3f, 0x40, 0xc0}}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]float64{"h": {1, -2}, "b": {1, -3}} {
		got, shape, err := timmFloat[float64](f, name)
		if err != nil || !slices.Equal(got, want) || !slices.Equal(shape, []int{2}) {
			t.Errorf("%s: got %v %v %v, want %v", name, got, shape, err, want)
		}
	}
}

func prodInts(xs []int) int {
	n := 1
	for _, x := range xs {
		n *= x
	}
	return n
}
