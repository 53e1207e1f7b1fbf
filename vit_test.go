package loope

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestParamCountTi16 pins timm's published count (docs/pe-zoo.md §1 and §15).
func TestParamCountTi16(t *testing.T) {
	cfg, err := Preset("ti16")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Classes = 1000
	m, err := NewViT[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.NumParams(), 5717416; got != want {
		t.Errorf("ti16 learnable, 1000 classes: %d parameters, want %d", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	good, _ := Preset("tiny")
	if err := good.Validate(); err != nil {
		t.Fatalf("preset tiny: %v", err)
	}
	for _, tc := range []struct {
		name   string
		modify func(c *Config)
		want   string
	}{
		{"heads", func(c *Config) { c.Heads = 3 }, "not divisible by heads"},
		{"patch", func(c *Config) { c.Patch = 3 }, "not divisible by patch"},
		{"dim", func(c *Config) { c.Dim = 0 }, "dim must be > 0"},
		{"eps", func(c *Config) { c.Eps = 0 }, "eps must be"},
		{"pe", func(c *Config) { c.PE.Name = "bogus" }, "unknown positional embedding \"bogus\""},
	} {
		c := good
		tc.modify(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := Preset("huge"); err == nil || !strings.Contains(err.Error(), "valid: "+strings.Join(PresetNames(), ", ")) || !strings.Contains(err.Error(), "b16, ") {
		t.Errorf("Preset(huge): got %v", err)
	}
}

// relClose reports whether got matches want elementwise within
// |got−want| ≤ rtol·(|want| + max|want|): relative to the element, with a
// floor at the tensor's scale so that entries near zero (sums of many
// cancelling terms) are judged against the size of their neighbours.
func relClose[A, B Float](got []A, want []B, rtol float64) (worst float64, at int, ok bool) {
	scale := 0.0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(float64(w)))
	}
	ok = len(got) == len(want)
	at = -1
	for i := range min(len(got), len(want)) {
		g, w := float64(got[i]), float64(want[i])
		d := math.Abs(g-w) / (math.Abs(w) + scale)
		if !(d <= rtol) {
			ok = false
		}
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	return worst, at, ok
}

// maxAbs returns max |x|.
func maxAbs[T Float](x []T) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// TestTorchGolden checks every committed fixture (testdata/fixture_*.safetensors,
// written by `loope fixture`) against the independent PyTorch model of
// testdata/gen/vit_torch.py, or cait_torch.py / crossvit_torch.py for the
// fixtures fixture_cait_* / fixture_crossvit_* (its output: the matching
// *.torch.safetensors):
// logits, loss, every gradient, and the loss trace of 5 AdamW steps.
// Tolerances (issue 3): 1e-9 relative in float64, 1e-4 in float32.
func TestTorchGolden(t *testing.T) {
	fixtures, _ := filepath.Glob("testdata/fixture_*.safetensors")
	n := 0
	for _, path := range fixtures {
		if strings.HasSuffix(path, ".torch.safetensors") {
			continue
		}
		n++
		golden := strings.TrimSuffix(path, ".safetensors") + ".torch.safetensors"
		t.Run(filepath.Base(path), func(t *testing.T) {
			fx, err := ReadSafeFile(path)
			if err != nil {
				t.Fatal(err)
			}
			gd, err := ReadSafeFile(golden)
			if err != nil {
				t.Fatalf("%v (regenerate: bash testdata/gen/fixtures.sh)", err)
			}
			if fx.Tensors["input"].DType == "F64" {
				checkTorchGolden[float64](t, fx, gd, 1e-9)
			} else {
				checkTorchGolden[float32](t, fx, gd, 1e-4)
			}
		})
	}
	if n == 0 {
		t.Fatal("no fixtures found in testdata")
	}
}

func checkTorchGolden[T Float](t *testing.T, fx, gd *SafeFile, rtol float64) {
	cfg, err := ConfigFromSafe(fx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewModel[T](cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := LoadParams(m, fx, "input", "targets", "logits", "loss", "grad.", "after."); err != nil {
		t.Fatal(err)
	}
	x, err := GetTensor[T](fx, "input")
	if err != nil {
		t.Fatal(err)
	}
	kind := fx.Metadata["loss"]
	smoothing, err := strconv.ParseFloat(fx.Metadata["smoothing"], 64)
	if err != nil {
		t.Fatalf("fixture smoothing: %v", err)
	}
	var y *Tensor[T]
	var labels []int
	if kind == "bce" {
		if y, err = GetTensor[T](fx, "targets"); err != nil {
			t.Fatal(err)
		}
	} else if labels, _, err = GetInts(fx, "targets"); err != nil {
		t.Fatal(err)
	}
	compare := func(name string, got []T) {
		t.Helper()
		want, _, err := GetFloat[float64](gd, name)
		if err != nil {
			t.Fatal(err)
		}
		// A tensor that is analytically zero holds only rounding noise on
		// both sides (e.g. the last layer's iRPE tables: only the CLS row
		// reaches the logits, and its bias is one bucket, a constant shift
		// the softmax ignores), so it is compared in absolute terms.
		zero := 1e-3 * rtol
		if maxAbs(want) <= zero && maxAbs(got) <= zero {
			return
		}
		if worst, at, ok := relClose(got, want, rtol); !ok {
			t.Errorf("%s: element %d off by %.3g relative (tolerance %g): got %v, want %v", name, at, worst, rtol, got[at], want[at])
		}
	}
	params := m.Params()
	trainable := trainable(m)
	var tp Tape[T]
	logits := m.Forward(&tp, x)
	loss := lossOf(&tp, kind, smoothing, logits, y, labels)
	tp.Backward(loss)
	compare("logits", logits.Data)
	compare("loss", loss.Data)
	for _, p := range params {
		if p.Buffer { // e.g. BatchNorm running statistics, updated by the forward
			compare("after."+p.Name, p.T.Data)
		} else {
			compare("grad."+p.Name, p.T.Grad)
		}
	}
	// 5 AdamW steps, as the generator: lr 1e-3, wd 0.05 on weights only.
	opt := NewAdamW(params, 0.05)
	trace := make([]T, 5)
	for i := range trace {
		tp.Reset()
		ZeroGrad(trainable)
		loss := lossOf(&tp, kind, smoothing, m.Forward(&tp, x), y, labels)
		tp.Backward(loss)
		opt.Update(1e-3)
		trace[i] = loss.Data[0]
	}
	compare("adamw_trace", trace)
}

// TestFixtureDeterministic: the same fixture flags give the same file.
func TestFixtureDeterministic(t *testing.T) {
	cfg, _ := Preset("tiny")
	fc := FixtureConfig{Model: cfg, Seed: 3, Batch: 2, Loss: "bce"}
	a, err := Fixture[float64](fc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Fixture[float64](fc)
	if err != nil {
		t.Fatal(err)
	}
	var ba, bb strings.Builder
	a.WriteTo(&ba)
	b.WriteTo(&bb)
	if ba.String() != bb.String() {
		t.Error("two fixtures from the same seed differ")
	}
}

// TestTrainTinyLearns trains the tiny preset on a learnable toy task (which
// colour is the one bright cell?) and checks that the loss drops, with one
// model and with two data-parallel replicas.
func TestTrainTinyLearns(t *testing.T) {
	if testing.Short() {
		t.Skip("training run")
	}
	for _, replicas := range []int{1, 2} {
		cfg, _ := Preset("tiny")
		cfg.Classes = 2
		m, err := NewViT[float32](cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		ds := brightSpot{n: 512, side: cfg.Image, ch: cfg.Channels}
		var log strings.Builder
		tc := TrainConfig{Steps: 100, Batch: 32, LR: 1e-3, MinLR: 1e-4, Warmup: 10, WeightDecay: 0.05,
			Loss: "ce", Seed: 1, LogEvery: 25, Log: &log, Replicas: replicas}
		before := Evaluate(m, ds, "ce", 64)
		after, err := Train(m, ds, ds, tc)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("replicas %d: before: loss %.4f acc %.3f; after: loss %.4f acc %.3f\n%s", replicas, before.Loss, before.Acc, after.Loss, after.Acc, log.String())
		if !(after.Loss < 0.5*before.Loss) || after.Acc < 0.9 {
			t.Errorf("replicas %d: training did not learn: loss %.4f → %.4f, acc %.3f", replicas, before.Loss, after.Loss, after.Acc)
		}
	}
}

// brightSpot is a toy dataset: one bright 2×2 cell on a dark image, red
// (class 0) or green (class 1), at a pseudo-random place.
type brightSpot struct{ n, side, ch int }

func (d brightSpot) Len() int { return d.n }

func (d brightSpot) Example(i int, img, target []float32) {
	clear(img)
	r, c := 2*((i*7919)%(d.side/2)), 2*((i*104729/3)%(d.side/2))
	class := i % 2
	for _, p := range [][2]int{{r, c}, {r, c + 1}, {r + 1, c}, {r + 1, c + 1}} {
		img[class*d.side*d.side+p[0]*d.side+p[1]] = 3
	}
	target[0] = float32(class)
}

// stepViT builds a small ViT whose every Linear, LayerNorm and GELU is big
// enough (with batch 32) to take the parallel paths.
func stepViT(t *testing.T) (*ViT[float32], *Tensor[float32], *Tensor[float32]) {
	cfg, err := Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Image, cfg.Depth, cfg.MLP = 8, 2, 128 // grid 4, N = 17, 544 rows
	m, err := NewViT[float32](cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	x := New[float32](32, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rng, 0, 1)
	y := New[float32](32, cfg.Classes)
	for i := range y.Data {
		y.Data[i] = float32(rng.IntN(2))
	}
	return m, x, y
}

// vitStep runs one forward and backward on tp and returns the loss and a
// copy of every parameter gradient.
func vitStep(tp *Tape[float32], m *ViT[float32], x, y *Tensor[float32]) (float32, [][]float32) {
	tp.Reset()
	ps := m.Trainable()
	ZeroGrad(ps)
	loss := tp.BCEWithLogits(m.Forward(tp, x), y)
	tp.Backward(loss)
	var gs [][]float32
	for _, p := range ps {
		gs = append(gs, append([]float32(nil), p.Grad...))
	}
	return loss.Data[0], gs
}

// TestViTStepDeterministic checks that a ViT training step gives
// bit-identical loss and gradients for 1, 2 and 3 threads, and again on a
// reused tape whose arena was filled with NaN first (ops that skip zeroing
// their output must write all of it).
func TestViTStepDeterministic(t *testing.T) {
	m, x, y := stepViT(t)
	var refLoss float32
	var ref [][]float32
	check := func(what string, loss float32, gs [][]float32) {
		if math.Float32bits(loss) != math.Float32bits(refLoss) {
			t.Errorf("%s: loss %v, want %v", what, loss, refLoss)
		}
		for k := range gs {
			for i := range gs[k] {
				if math.Float32bits(gs[k][i]) != math.Float32bits(ref[k][i]) {
					t.Errorf("%s: param %d elem %d grad %v, want %v", what, k, i, gs[k][i], ref[k][i])
					break
				}
			}
		}
	}
	withThreads(1, func() {
		var tp Tape[float32]
		refLoss, ref = vitStep(&tp, m, x, y)
	})
	if math.IsNaN(float64(refLoss)) {
		t.Fatal("loss is NaN")
	}
	for _, th := range []int{2, 3} {
		withThreads(th, func() {
			var tp Tape[float32]
			loss, gs := vitStep(&tp, m, x, y)
			check("threads "+string(rune('0'+th)), loss, gs)
			for _, p := range tp.pool {
				for i := range p.Data[:cap(p.Data)] {
					p.Data[:cap(p.Data)][i] = float32(math.NaN())
				}
			}
			for _, b := range tp.bufs {
				for i := range b[:cap(b)] {
					b[:cap(b)][i] = float32(math.NaN())
				}
			}
			loss, gs = vitStep(&tp, m, x, y)
			check("poisoned arena, threads "+string(rune('0'+th)), loss, gs)
		})
	}
}

// fuzzConfigSeeds are model configs for FuzzConfig and the hostile-config
// tests: every PE on a tiny model, PE options, and sizes past the bounds.
func fuzzConfigSeeds() []string {
	var seeds []string
	for _, pe := range PENames() {
		c := Config{Image: 8, Channels: 3, Patch: 2, Dim: 8, Depth: 1, Heads: 2, MLP: 8, Classes: 3, Eps: 1e-6, PE: PEConfig{Name: pe}}
		b, _ := json.Marshal(c)
		seeds = append(seeds, string(b))
	}
	return append(seeds,
		`{"image":8,"channels":1,"patch":4,"dim":4,"depth":1,"heads":1,"mlp":2,"classes":2,"eps":1e-6,"pe":{"name":"fourier","fourier_dim":6,"fourier_hidden":3}}`,
		`{"image":8,"channels":1,"patch":4,"dim":4,"depth":1,"heads":1,"mlp":2,"classes":2,"eps":1e-6,"pe":{"name":"loope","freqs":"f3","loope_squash":"tanh","loope_act":"relu","loope_bias":true}}`,
		`{"image":8,"channels":1,"patch":4,"dim":4,"depth":1,"heads":1,"mlp":2,"classes":2,"eps":1e-6,"pe":{"name":"sin1d","freqs":"f9"}}`,
		`{"image":8,"channels":1,"patch":4,"dim":6,"depth":1,"heads":3,"mlp":2,"classes":2,"eps":1e-6,"pe":{"name":"rope-axial"}}`,
		`{"image":224,"channels":3,"patch":16,"dim":1000000000,"depth":12,"heads":1,"mlp":3072,"classes":6,"eps":1e-6,"pe":{"name":"learnable"}}`,
		`{"image":4096,"channels":1024,"patch":64,"dim":8192,"depth":1000,"heads":8,"mlp":65536,"classes":6,"eps":1e-6,"pe":{"name":"rpe"}}`,
		`{"image":4096,"channels":3,"patch":1,"dim":8,"depth":1,"heads":1,"mlp":8,"classes":2,"eps":1e-6,"pe":{"name":"none"}}`,
		`{"image":8,"channels":1,"patch":4,"dim":4,"depth":1,"heads":1,"mlp":2,"classes":2,"eps":1e-6,"pe":{"name":"fourier","fourier_dim":2000000000}}`,
		`{"image":-8,"channels":0,"patch":0,"dim":-1,"eps":"x"}`,
		`{"image":1e400}`, `null`, `[]`, `{}`, ``,
	)
}

// TestConfigBounds: sizes past the Max* bounds are rejected by Validate,
// and the presets stay inside them.
func TestConfigBounds(t *testing.T) {
	good, _ := Preset("tiny")
	for _, tc := range []struct {
		name   string
		modify func(c *Config)
		want   string
	}{
		{"image", func(c *Config) { c.Image, c.Patch = 8192, 128 }, "image 8192 exceeds the limit 4096"},
		{"dim", func(c *Config) { c.Dim = 1e9 }, "dim 1000000000 exceeds the limit 8192"},
		{"depth", func(c *Config) { c.Depth = 1001 }, "depth 1001 exceeds the limit 1000"},
		{"grid", func(c *Config) { c.Image, c.Patch = 4096, 1 }, "grid 4096 (image 4096 / patch 1) exceeds the limit 64"},
		{"params", func(c *Config) { c.Dim, c.Heads, c.Depth, c.MLP = 8192, 8, 1000, 8192 }, "parameters exceed the limit"},
		{"attention", func(c *Config) { c.Image, c.Patch, c.Dim, c.Heads, c.Depth = 128, 2, 512, 512, 100 }, "exceeds the attention limit"},
	} {
		c := good
		tc.modify(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	for _, name := range PresetNames() {
		c, _ := Preset(name)
		c.Classes = 1000
		if err := c.Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
}

// TestBackboneParams: backboneParams is the parameter count of the model
// with no PE, which stores nothing but the backbone.
func TestBackboneParams(t *testing.T) {
	for _, name := range []string{"tiny", "ti16"} {
		c, _ := Preset(name)
		c.PE.Name = "none"
		m, err := NewViT[float32](c, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.backboneParams(), int64(m.NumParams()); got != want {
			t.Errorf("%s: backboneParams %d, NumParams %d", name, got, want)
		}
	}
}

// FuzzConfig: the model config of a checkpoint's metadata, through
// ConfigFromSafe, NewViT, LoadParams and (for small models) Forward, must
// give an error or a working model, never a panic; a config that passes
// needs no more backbone scalars than the file holds, so what NewViT
// allocates is bounded by the file.
func FuzzConfig(f *testing.F) {
	for _, s := range fuzzConfigSeeds() {
		f.Add(s, uint16(4096))
	}
	f.Fuzz(func(t *testing.T, js string, values uint16) {
		sf := NewSafeFile()
		sf.Metadata[metaConfig] = js
		if err := PutFloat(sf, "w", make([]float32, int(values)*4), int(values)*4); err != nil {
			t.Fatal(err)
		}
		cfg, err := ConfigFromSafe(sf)
		if err != nil {
			return
		}
		if cfg.backboneParams() > int64(values)*4 {
			t.Fatalf("accepted config needs %d values, file has %d", cfg.backboneParams(), int(values)*4)
		}
		m, err := NewViT[float32](cfg, 1)
		if err != nil {
			return
		}
		if err := LoadParams(m, sf); err == nil {
			t.Fatal("LoadParams from a file without the model's tensors succeeded")
		}
		if cfg.Tokens() > 65 || cfg.Depth*cfg.Heads > 16 {
			return
		}
		tp := &Tape[float32]{NoGrad: true}
		img := New[float32](1, cfg.Channels, cfg.Image, cfg.Image)
		out := m.Forward(tp, img)
		if len(out.Shape) != 2 || out.Shape[0] != 1 || out.Shape[1] != cfg.Classes {
			t.Fatalf("logits shape %v", out.Shape)
		}
		// A training step's forward and backward on the same geometry.
		var tr Tape[float32]
		tr.Backward(tr.BCEWithLogits(m.Forward(&tr, img), New[float32](1, cfg.Classes)))
	})
}
