package loope

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// refTol is the float64 agreement asked of the tape against the reference
// layer: relative to |value| + max|tensor|, as the goldens measure.
const refTol = 1e-12

// checkClose fails the test if got does not match want within tol, as
// relClose measures (relative to |want| + max|want|), naming the worst
// element.
func checkClose(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", name, len(got), len(want))
		return
	}
	if worst, at, ok := relClose(got, want, tol); !ok {
		t.Errorf("%s: element %d is %.17g, want %.17g (relative error %.3g > %.3g)", name, at, got[at], want[at], worst, tol)
	}
}

// refTapeStep runs one forward and backward of a fresh ViT of cfg (seed 11)
// on the tape with loss BCE (classes = 6 bits) or cross-entropy with label
// smoothing 0.1 (other classes), and the same through the reference layer
// on a second copy, and compares logits, loss, every gradient and the
// buffers after the step.
func refTapeStep(t *testing.T, cfg Config, b int) {
	t.Helper()
	mt, err := NewViT[float64](cfg, 11)
	if err != nil {
		t.Fatal(err)
	}
	mr, _ := NewViT[float64](cfg, 11)
	rng := rand.New(rand.NewPCG(5, 6))
	img := New[float64](b, cfg.Channels, cfg.Image, cfg.Image).FillUniform(rng, -1, 1)
	targets := New[float64](b, cfg.Classes)
	labels := make([]int, b)
	for i := range targets.Data {
		targets.Data[i] = float64(rng.IntN(2))
	}
	for i := range labels {
		labels[i] = rng.IntN(cfg.Classes)
	}
	bce := cfg.Classes == 6

	var tp Tape[float64]
	logits := mt.Forward(&tp, img)
	var loss *Tensor[float64]
	if bce {
		loss = tp.BCEWithLogits(logits, targets)
	} else {
		loss = tp.CrossEntropy(logits, labels, 0.1)
	}
	tp.Backward(loss)

	a, err := RefViTForward(mr, img.Data, b)
	if err != nil {
		t.Fatal(err)
	}
	dlogits := make([]float64, len(a.Logits))
	var refLoss float64
	if bce {
		refLoss = RefBCEWithLogits(dlogits, a.Logits, targets.Data)
	} else {
		refLoss = RefCrossEntropy(dlogits, a.Logits, labels, cfg.Classes, 0.1)
	}
	grads := RefViTBackward(mr, a, dlogits)

	checkClose(t, "logits", logits.Data, a.Logits, refTol)
	checkClose(t, "loss", loss.Data, []float64{refLoss}, refTol)
	ps, rs := mt.Params(), mr.Params()
	for i, p := range ps {
		if p.Buffer {
			checkClose(t, "buffer "+p.Name, p.T.Data, rs[i].T.Data, refTol)
			continue
		}
		checkClose(t, "grad "+p.Name, p.T.Grad, grads[p.Name], refTol)
	}
	if len(grads) != len(mt.Trainable()) {
		t.Errorf("reference returned %d gradients, the model has %d trainable tensors", len(grads), len(mt.Trainable()))
	}
}

// TestRefViTMatchesTape checks the tape ViT against the reference layer in
// float64: logits, loss and every parameter gradient within 1e-12 relative,
// for each PE the reference covers, on `tiny` and a 2-block `small`.
func TestRefViTMatchesTape(t *testing.T) {
	for _, preset := range []string{"tiny", "small"} {
		for _, pe := range []string{"none", "learnable", "sin1d", "hilbert", "sincos2d", "rope-axial", "loope"} {
			t.Run(preset+"/"+pe, func(t *testing.T) {
				cfg, _ := Preset(preset)
				cfg.PE.Name = pe
				if preset == "small" {
					cfg.Depth = 2
				}
				refTapeStep(t, cfg, 2)
			})
		}
	}
}

// TestRefViTCrossEntropy checks the cross-entropy path (10 classes, label
// smoothing 0.1) and LOOPE's Linear bias against the reference.
func TestRefViTCrossEntropy(t *testing.T) {
	for _, pe := range []PEConfig{{Name: "learnable"}, {Name: "loope", LoopeBias: true}} {
		t.Run(pe.Name, func(t *testing.T) {
			cfg, _ := Preset("tiny")
			cfg.PE, cfg.Classes = pe, 10
			refTapeStep(t, cfg, 3)
		})
	}
}

// TestRefViTRefuses checks that the reference names what it does not cover.
func TestRefViTRefuses(t *testing.T) {
	for _, pe := range []PEConfig{{Name: "rope-mixed"}, {Name: "cpvt"}, {Name: "loope", LoopeAct: "relu"}} {
		cfg, _ := Preset("tiny")
		cfg.PE = pe
		m, err := NewViT[float64](cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := RefViTForward(m, make([]float64, cfg.Channels*cfg.Image*cfg.Image), 1); err == nil {
			t.Errorf("PE %+v: no error", pe)
		}
	}
	cfg, _ := Preset("tiny")
	m, _ := NewViT[float64](cfg, 1)
	if _, err := RefViTForward(m, make([]float64, 5), 1); err == nil {
		t.Error("wrong image size: no error")
	}
}

// TestRefAdamW checks Adam.Update (AdamW, weight decay on decayed params
// only) against RefAdamW over three steps.
func TestRefAdamW(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	w := NewParam[float64](4, 3).FillUniform(rng, -1, 1)
	bias := NewParam[float64](4).FillUniform(rng, -1, 1)
	params := []NamedParam[float64]{{Name: "w", T: w}, {Name: "b", T: bias, NoDecay: true}}
	ref := [][]float64{append([]float64(nil), w.Data...), append([]float64(nil), bias.Data...)}
	m := [][]float64{make([]float64, 12), make([]float64, 4)}
	v := [][]float64{make([]float64, 12), make([]float64, 4)}
	opt := NewAdamW(params, 0.05)
	for step := 1; step <= 3; step++ {
		lr := 1e-2 * float64(step)
		for i, p := range params {
			p.T.FillUniform(rng, -1, 1) // fresh values: only the update is compared
			copy(ref[i], p.T.Data)
			for k := range p.T.Grad {
				p.T.Grad[k] = rng.NormFloat64()
			}
		}
		opt.Update(lr)
		for i, p := range params {
			wd := 0.05
			if p.NoDecay {
				wd = 0
			}
			RefAdamW(ref[i], p.T.Grad, m[i], v[i], step, lr, 0.9, 0.999, 1e-8, wd)
			checkClose(t, fmt.Sprintf("step %d %s", step, p.Name), p.T.Data, ref[i], 1e-14)
		}
	}
}
