package loope

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	ms := []Model[float64]{m}
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

// TestRopeDinov3TrainReproducible: Train with rope-dinov3 is bit-identical
// across runs of the same seed, the augmentation is live (rescale off gives
// other weights), the model is back in inference mode afterwards, and a
// run resumed from its step-2 checkpoint ends where the uninterrupted run
// ends.
func TestRopeDinov3TrainReproducible(t *testing.T) {
	cfg, tc := resumeCfg()
	cfg.PE = PEConfig{Name: "rope-dinov3", DinoShift: 0.2, DinoJitter: 1.3}
	tc.Steps, tc.EvalEvery, tc.CheckpointEvery = 4, 0, 2
	ds := brightSpot{n: 40, side: cfg.Image, ch: cfg.Channels}
	run := func(c Config, tc TrainConfig) *ViT[float64] {
		t.Helper()
		m, err := NewViT[float64](c, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Train(m, ds, nil, tc); err != nil {
			t.Fatal(err)
		}
		return m
	}
	equal := func(a, b *ViT[float64]) bool {
		pa, pb := a.Params(), b.Params()
		for i := range pa {
			for j, v := range pa[i].T.Data {
				if v != pb[i].T.Data[j] {
					return false
				}
			}
		}
		return true
	}
	dir := t.TempDir()
	tc1 := tc
	tc1.CheckpointDir = dir
	a := run(cfg, tc1)
	b := run(cfg, tc)
	if !equal(a, b) {
		t.Fatal("two runs with the same seed differ")
	}
	if a.PE.(*ropeDinov3PE[float64]).trainingStep {
		t.Error("PE left in training mode after Train")
	}
	off := cfg
	off.PE = PEConfig{Name: "rope-dinov3", DinoRescale: 1}
	if equal(a, run(off, tc)) {
		t.Error("augmentation off gives the same weights: augmentation not applied in Train")
	}
	// Stop after step 1 (deadline passed), then resume to the end.
	cut := t.TempDir()
	tc2 := tc
	tc2.CheckpointDir, tc2.Deadline = cut, time.Now().Add(-time.Hour)
	run(cfg, tc2)
	tc2.Deadline, tc2.Resume = time.Time{}, filepath.Join(cut, "last.safetensors")
	f, err := ReadSafeFile(tc2.Resume)
	if err != nil {
		t.Fatal(err)
	}
	var st trainState
	if err := json.Unmarshal([]byte(f.Metadata["train_state"]), &st); err != nil || st.Step != 1 {
		t.Fatalf("cut run stopped at step %d (%v), want 1", st.Step, err)
	}
	m, err := NewViT[float64](cfg, 77)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Train(m, ds, nil, tc2); err != nil {
		t.Fatal(err)
	}
	if !equal(a, m) {
		t.Error("a run resumed after step 1 ends with other weights than the uninterrupted run")
	}
}
