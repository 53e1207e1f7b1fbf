package loope

import (
	"math"
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
	if _, err := Preset("huge"); err == nil || !strings.Contains(err.Error(), "valid: b16, s16, small, ti16, tiny") {
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
// testdata/gen/vit_torch.py (its output: the matching *.torch.safetensors):
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
				t.Fatalf("%v (regenerate: /usr/bin/python3 testdata/gen/vit_torch.py %s %s)", err, path, golden)
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
	m, err := NewViT[T](cfg, 0)
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
	trainable := m.Trainable()
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
