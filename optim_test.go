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

// adamRef is one Adam or AdamW step on every element, written per param as
// torch's single-tensor loop (the plain version of Adam.Update).
func adamRef(o *Adam[float32], lr float64) {
	o.Step++
	bc1 := 1 - math.Pow(o.Beta1, float64(o.Step))
	bc2 := 1 - math.Pow(o.Beta2, float64(o.Step))
	stepSize, bc2Sqrt := float32(lr/bc1), float32(math.Sqrt(bc2))
	b1, b2, eps := float32(o.Beta1), float32(o.Beta2), float32(o.Eps)
	for i, p := range o.params {
		wd := float32(0)
		if o.decay[i] {
			wd = float32(o.WeightDecay)
		}
		m, v := o.m[i], o.v[i]
		for k, g := range p.Grad {
			if o.Decoupled {
				p.Data[k] *= 1 - float32(lr)*wd
			} else if wd != 0 {
				g += wd * p.Data[k]
			}
			m[k] = m[k]*b1 + (1-b1)*g
			v[k] = v[k]*b2 + (1-b2)*g*g
			denom := float32(math.Sqrt(float64(v[k])))/bc2Sqrt + eps
			p.Data[k] -= stepSize * (m[k] / denom)
		}
	}
}

// TestAdamFlatSplit checks Adam.Update, which splits all params' elements
// as one range, against adamRef bit for bit, for AdamW and Adam with L2
// decay, params of sizes around the split (including empty ones), and
// 1, 2 and 3 threads.
func TestAdamFlatSplit(t *testing.T) {
	sizes := []int{3, 0, 40000, 1, 16384, 0, 777, 2 * parGrain}
	build := func() []NamedParam[float32] {
		rng := rand.New(rand.NewPCG(8, 8))
		var ps []NamedParam[float32]
		for i, n := range sizes {
			p := NewParam[float32](n).FillNormal(rng, 0, 1)
			for k := range p.Grad {
				p.Grad[k] = float32(rng.NormFloat64())
			}
			ps = append(ps, NamedParam[float32]{Name: string(rune('a' + i)), T: p, NoDecay: i%3 == 0})
		}
		return ps
	}
	for _, decoupled := range []bool{true, false} {
		ref := NewAdamW(build(), 0.05)
		ref.Decoupled = decoupled
		for range 3 {
			adamRef(ref, 1e-2)
		}
		for _, th := range []int{1, 2, 3} {
			o := NewAdamW(build(), 0.05)
			o.Decoupled = decoupled
			withThreads(th, func() {
				for range 3 {
					o.Update(1e-2)
				}
			})
			for i, p := range o.params {
				for k := range p.Data {
					if math.Float32bits(p.Data[k]) != math.Float32bits(ref.params[i].Data[k]) ||
						math.Float32bits(o.v[i][k]) != math.Float32bits(ref.v[i][k]) {
						t.Fatalf("decoupled %v threads %d: param %d elem %d: %v, want %v", decoupled, th, i, k, p.Data[k], ref.params[i].Data[k])
					}
				}
			}
		}
	}
}
