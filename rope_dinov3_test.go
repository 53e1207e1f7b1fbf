package loope

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestRopeDinov3Angles pins the angles to a direct evaluation: Dh 8, G 4,
// token t = 5 (row 1, column 1) sits at (y, x) = (−0.25, −0.25).
func TestRopeDinov3Angles(t *testing.T) {
	c := RopeDinov3Coords(4)
	if c[10] != -0.25 || c[11] != -0.25 || c[0] != -0.75 || c[31] != 0.75 {
		t.Fatalf("coords %v", c)
	}
	a := RopeDinov3Angles(c, 8, 100)
	want := []float64{-0.25 * 2 * math.Pi, -0.25 * 2 * math.Pi / 10, -0.25 * 2 * math.Pi, -0.25 * 2 * math.Pi / 10} // f_1 = 100^(−4/8)
	for j, w := range want {
		if math.Abs(a[5*4+j]-w) > 1e-15 {
			t.Errorf("pair %d: %v, want %v", j, a[5*4+j], w)
		}
	}
}

// TestRopeDinov3TranslationInvariant: without augmentation the logit of
// two patch tokens depends only on their position difference.
func TestRopeDinov3TranslationInvariant(t *testing.T) {
	cfg := tinyAttnConfig("rope-dinov3")
	m, err := NewViT[float64](cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	l := rotLogits(t, m.PE, cfg, 0, 1, rand.New(rand.NewPCG(8, 9)))
	for _, d := range [][2]int{{1, 0}, {0, 1}, {1, 3}} {
		if e := shiftDeviation(l, cfg.Grid(), d[0], d[1]); e > 1e-12 {
			t.Errorf("shift %v changes a logit by %g", d, e)
		}
	}
}

// TestRopeDinov3TrainMode: a training step rotates by augmented
// coordinates drawn from (seed, step) only, the same draw for the same
// pair and another for another step; evalMode returns to the plain angles.
func TestRopeDinov3TrainMode(t *testing.T) {
	cfg := tinyAttnConfig("rope-dinov3")
	cfg.PE.DinoShift, cfg.PE.DinoJitter = 0.1, 1.5
	m, err := NewViT[float64](cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	logits := func() []float64 { return rotLogits(t, m.PE, cfg, 0, 0, rand.New(rand.NewPCG(1, 2))) }
	plain := logits()
	ms := []*ViT[float64]{m}
	peTrainMode(ms, true, 7, 3)
	a := logits()
	peTrainMode(ms, true, 7, 4)
	b := logits()
	peTrainMode(ms, true, 7, 3)
	a2 := logits()
	peTrainMode(ms, false, 0, 0)
	p2 := logits()
	same := func(x, y []float64) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if same(a, plain) || same(a, b) {
		t.Errorf("training step 3 logits equal the plain or step-4 ones: no augmentation")
	}
	if !same(a, a2) {
		t.Errorf("step 3 drawn twice gives different logits")
	}
	if !same(plain, p2) {
		t.Errorf("evalMode does not restore the plain angles")
	}
}

// TestRopeDinov3Errors: options out of range are config-time errors
// naming the option.
func TestRopeDinov3Errors(t *testing.T) {
	for _, tc := range []struct {
		pc   PEConfig
		flag string
	}{
		{PEConfig{DinoShift: -1}, "-dino-shift"},
		{PEConfig{DinoJitter: 0.5}, "-dino-jitter"},
		{PEConfig{DinoRescale: 0.5}, "-dino-rescale"},
	} {
		cfg := tinyAttnConfig("rope-dinov3")
		tc.pc.Name = "rope-dinov3"
		cfg.PE = tc.pc
		if _, err := NewViT[float64](cfg, 1); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%+v: err %v, want one naming %s", tc.pc, err, tc.flag)
		}
	}
	cfg := tinyAttnConfig("rope-dinov3")
	cfg.Dim = 12 // Dh 6: not a multiple of 4
	if _, err := NewViT[float64](cfg, 1); err == nil || !strings.Contains(err.Error(), "multiple of 4") {
		t.Errorf("Dh 6: err %v", err)
	}
}
