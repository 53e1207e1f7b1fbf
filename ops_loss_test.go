package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestCrossEntropyValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	logits := randTensor(rng, 3, 4)
	for i := range logits.Data {
		logits.Data[i] *= 3
	}
	labels := []int{2, 0, 3}
	for _, eps := range []float64{0, 0.1, 0.5} {
		// Hand formula: p = e^x / Σ e^x, loss_r = (1−ε)(−ln p_y) + ε·mean_k(−ln p_k).
		want := 0.0
		for r, y := range labels {
			z := 0.0
			for k := range 4 {
				z += math.Exp(logits.Data[r*4+k])
			}
			mean := 0.0
			for k := range 4 {
				mean -= math.Log(math.Exp(logits.Data[r*4+k])/z) / 4
			}
			want += (1-eps)*-math.Log(math.Exp(logits.Data[r*4+y])/z) + eps*mean
		}
		want /= 3
		var tp Tape[float64]
		if got := tp.CrossEntropy(logits, labels, eps).Data[0]; math.Abs(got-want) > 1e-14 {
			t.Errorf("ε=%v: CrossEntropy = %.17g, want %.17g", eps, got, want)
		}
	}
	// Equal logits: p = 1/K for every class, so loss = ln K for any ε.
	var tp Tape[float64]
	if got := tp.CrossEntropy(FromData([]float64{1000, 1000, 1000, 1000, 1000}, 1, 5), []int{3}, 0.2).Data[0]; math.Abs(got-math.Log(5)) > 1e-12 {
		t.Errorf("uniform logits: %v, want ln 5 = %v", got, math.Log(5))
	}
	mustPanic(t, "loope: CrossEntropy: label 4 of row 1 out of range", func() {
		tp.CrossEntropy(logits, []int{0, 4, 1}, 0)
	})
	mustPanic(t, "loope: CrossEntropy:", func() { tp.CrossEntropy(logits, []int{0, 1}, 0) })
}

func TestBCEWithLogitsValues(t *testing.T) {
	xs := []float64{-3, -0.5, 0, 0.7, 2.5, 4}
	ts := []float64{0, 1, 0.5, 1, 0.2, 0}
	// Naive: −[t·ln σ(x) + (1−t)·ln(1−σ(x))], fine for moderate x.
	want := 0.0
	for i, x := range xs {
		s := 1 / (1 + math.Exp(-x))
		want -= ts[i]*math.Log(s) + (1-ts[i])*math.Log(1-s)
	}
	want /= float64(len(xs))
	var tp Tape[float64]
	if got := tp.BCEWithLogits(FromData(xs, 2, 3), FromData(ts, 2, 3)).Data[0]; math.Abs(got-want) > 1e-14 {
		t.Errorf("BCE = %.17g, want %.17g", got, want)
	}
	// Extremes: x = 100, t = 0 costs 100 + ln(1+e^−100) ≈ 100; x = −100, t = 0
	// costs ln(1+e^−100) ≈ e^−100; x = ±100 with the matching label ≈ e^−100.
	big := tp.BCEWithLogits(FromData([]float64{100, -100, 100, -100}, 4), FromData([]float64{0, 0, 1, 1}, 4)).Data[0]
	if wantBig := (100 + 100 + 2*math.Exp(-100) + 2*math.Exp(-100)) / 4; math.IsInf(big, 0) || math.IsNaN(big) || math.Abs(big-wantBig) > 1e-12 {
		t.Errorf("BCE at ±100 = %v, want %v", big, wantBig)
	}
	// Targets never receive a gradient, even if they have a Grad buffer.
	logits := NewParam[float64](2, 3)
	copy(logits.Data, xs)
	targets := NewParam[float64](2, 3)
	copy(targets.Data, ts)
	tp.Reset()
	tp.Backward(tp.BCEWithLogits(logits, targets))
	for i, g := range targets.Grad {
		if g != 0 {
			t.Fatalf("targets.Grad[%d] = %v, want 0", i, g)
		}
	}
	for i, g := range logits.Grad {
		if want := (1/(1+math.Exp(-xs[i])) - ts[i]) / 6; math.Abs(g-want) > 1e-15 {
			t.Errorf("logits.Grad[%d] = %v, want (σ(x)−t)/n = %v", i, g, want)
		}
	}
}
