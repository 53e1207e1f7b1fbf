package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGELUSavedDerivative checks that the float32 GELU of a recording tape
// saves its derivative in the forward and gives, for 1, 2 and 3 threads,
// the bits of the kernels run once over the whole slice: gelu32 for y,
// and geluDeriv32's g added as g·dy by mulAdd32 for dx.
func TestGELUSavedDerivative(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 1000, 2*parGrain + 13} {
		rng := rand.New(rand.NewPCG(uint64(n), 1))
		x := NewParam[float32](n)
		x.FillNormal(rng, 0, 3)
		dy, dx0 := make([]float32, n), make([]float32, n)
		for i := range dy {
			dy[i], dx0[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		wantY, wantDx := make([]float32, n), append([]float32(nil), dx0...)
		gelu32(wantY, x.Data)
		g := make([]float32, n)
		geluDeriv32(make([]float32, n), g, x.Data)
		mulAdd32(wantDx, g, dy)
		for _, th := range []int{1, 2, 3} {
			withThreads(th, func() {
				copy(x.Grad, dx0)
				var tp Tape[float32]
				y := tp.GELU(x)
				if len(tp.nodes[0].saved) != 1 {
					t.Fatalf("n=%d: GELU saved %d buffers, want its derivative", n, len(tp.nodes[0].saved))
				}
				tp.backwardFrom(y, dy)
				for i := range n {
					if math.Float32bits(y.Data[i]) != math.Float32bits(wantY[i]) ||
						math.Float32bits(x.Grad[i]) != math.Float32bits(wantDx[i]) {
						t.Errorf("n=%d threads %d elem %d: y %v dx %v, want %v %v", n, th, i, y.Data[i], x.Grad[i], wantY[i], wantDx[i])
						break
					}
				}
			})
		}
	}
}

func TestActivationValues(t *testing.T) {
	var tp Tape[float64]
	x := FromData([]float64{1, 0, -1, 2.5, -3}, 5)
	// GELU(1) = Φ(1) = 0.5·(1 + erf(1/√2)) = 0.8413447460685429 (standard normal CDF at 1).
	if g := tp.GELU(x).Data[0]; math.Abs(g-0.8413447460685429) > 1e-15 {
		t.Errorf("GELU(1) = %.17g, want 0.8413447460685429", g)
	}
	checks := []struct {
		name string
		f    func(*Tensor[float64]) *Tensor[float64]
		want func(float64) float64
	}{
		{"GELU", tp.GELU, func(v float64) float64 { return 0.5 * v * math.Erfc(-v/math.Sqrt2) }},
		{"ReLU", tp.ReLU, func(v float64) float64 { return math.Max(v, 0) }},
		{"Sigmoid", tp.Sigmoid, func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }},
		{"Tanh", tp.Tanh, math.Tanh},
		{"Sin", tp.Sin, math.Sin},
		{"Cos", tp.Cos, math.Cos},
		{"Exp", tp.Exp, math.Exp},
	}
	for _, c := range checks {
		y := c.f(x)
		for i, v := range x.Data {
			if w := c.want(v); math.Abs(y.Data[i]-w) > 1e-15*max(1, math.Abs(w)) {
				t.Errorf("%s(%v) = %v, want %v", c.name, v, y.Data[i], w)
			}
		}
	}
	if l := tp.Log(FromData([]float64{math.E}, 1)).Data[0]; math.Abs(l-1) > 1e-15 {
		t.Errorf("Log(e) = %v, want 1", l)
	}
	// Sigmoid must not overflow for very negative inputs.
	if s := tp.Sigmoid(FromData([]float64{-1000, 1000}, 2)).Data; s[0] != 0 || s[1] != 1 {
		t.Errorf("Sigmoid(∓1000) = %v, want [0 1]", s)
	}
	// float32 runs the fast kernel of fastmath.go: within 2 ulp here.
	var tp32 Tape[float32]
	g32 := tp32.GELU(FromData([]float32{1}, 1)).Data[0]
	if d := ulpDiff(g32, 0.8413447460685429); d > 2 {
		t.Errorf("float32 GELU(1) = %v, want %v (%.1f ulp off)", g32, float32(0.8413447460685429), d)
	}
	if g := tp.Scale(x, -2).Data[3]; g != -5 {
		t.Errorf("Scale(2.5, -2) = %v, want -5", g)
	}
	if g := tp.AddScalar(x, 0.5).Data[2]; g != -0.5 {
		t.Errorf("AddScalar(-1, 0.5) = %v, want -0.5", g)
	}
}

// TestGELUDerivative checks the backward, which takes Φ(x) = y/x from the
// forward output, against Φ(x) + x·φ(x) with Φ from erf, across the
// branch points ±1e-3 and −10, in float64 and float32.
func TestGELUDerivative(t *testing.T) {
	xs := []float64{-40, -12, -10.5, -10, -9.99, -3, -1, -0.3, -1.1e-3, -1e-3, -9e-4, -1e-8, 0,
		1e-30, 1e-8, 9e-4, 1e-3, 1.1e-3, 0.3, 1, 2.5, 8, 40}
	want := make([]float64, len(xs))
	for i, x := range xs {
		want[i] = 0.5*math.Erfc(-x/math.Sqrt2) + x*math.Exp(-x*x/2)/math.Sqrt(2*math.Pi)
	}
	x64 := NewParam[float64](len(xs))
	copy(x64.Data, xs)
	var tp Tape[float64]
	tp.Backward(tp.Sum(tp.GELU(x64)))
	x32 := NewParam[float32](len(xs))
	for i, v := range xs {
		x32.Data[i] = float32(v)
	}
	var tp32 Tape[float32]
	tp32.Backward(tp32.Sum(tp32.GELU(x32)))
	for i, w := range want {
		if d := math.Abs(x64.Grad[i] - w); d > 1e-15*max(1, math.Abs(w)) {
			t.Errorf("float64 GELU'(%g) = %.17g, want %.17g", xs[i], x64.Grad[i], w)
		}
		// float32: x is rounded to float32 first; compare with the exact
		// derivative at that rounded x.
		xr := float64(float32(xs[i]))
		w32 := 0.5*math.Erfc(-xr/math.Sqrt2) + xr*math.Exp(-xr*xr/2)/math.Sqrt(2*math.Pi)
		if d := math.Abs(float64(x32.Grad[i]) - w32); d > 3e-7*max(1, math.Abs(w32)) {
			t.Errorf("float32 GELU'(%g) = %.9g, want %.9g", xs[i], x32.Grad[i], w32)
		}
	}
}
