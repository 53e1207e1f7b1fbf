package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAdamLRScale: a param with learning-rate factor s takes the steps of
// an AdamW of its own with lr·s (Adam step and decoupled decay), and the
// other params are unaffected.
func TestAdamLRScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	mk := func() (*Tensor[float64], *Tensor[float64]) {
		r := rand.New(rand.NewPCG(1, 2))
		return NewParam[float64](5).FillNormal(r, 0, 1), NewParam[float64](3).FillNormal(r, 0, 1)
	}
	a, b := mk()
	a1, _ := mk()
	_, b1 := mk()
	both := NewAdamW([]NamedParam[float64]{{Name: "a", T: a}, {Name: "b", T: b}}, 0.1)
	if n := both.SetLRScale([]*Tensor[float64]{a}, 7); n != 1 {
		t.Fatalf("SetLRScale found %d params, want 1", n)
	}
	onlyA := NewAdamW([]NamedParam[float64]{{Name: "a", T: a1}}, 0.1)
	onlyB := NewAdamW([]NamedParam[float64]{{Name: "b", T: b1}}, 0.1)
	for step := range 5 {
		for _, p := range []*Tensor[float64]{a, b} {
			p.Grad = p.Grad[:0]
			for range p.Size() {
				p.Grad = append(p.Grad, rng.NormFloat64())
			}
		}
		copy(a1.Grad, a.Grad)
		copy(b1.Grad, b.Grad)
		lr := 1e-2 * float64(step+1)
		both.Update(lr)
		onlyA.Update(7 * lr)
		onlyB.Update(lr)
	}
	for i := range a.Data {
		if d := math.Abs(a.Data[i] - a1.Data[i]); d > 1e-14 {
			t.Fatalf("scaled param element %d: %v, own AdamW with 7·lr %v", i, a.Data[i], a1.Data[i])
		}
	}
	for i := range b.Data {
		if b.Data[i] != b1.Data[i] {
			t.Fatalf("unscaled param element %d: %v, own AdamW %v", i, b.Data[i], b1.Data[i])
		}
	}
}
