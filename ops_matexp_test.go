package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

// skewFill fills x (…, n, n) with a random skew-symmetric matrix per item,
// entries of size scale.
func skewFill(x []float64, n int, scale float64, rng *rand.Rand) {
	for it := 0; it < len(x)/(n*n); it++ {
		m := x[it*n*n : (it+1)*n*n]
		for i := range n {
			m[i*n+i] = 0
			for j := i + 1; j < n; j++ {
				v := scale * rng.NormFloat64()
				m[i*n+j], m[j*n+i] = v, -v
			}
		}
	}
}

// orthoErr returns max |RᵀR − I| over the n×n matrices of r.
func orthoErr[T Float](r []T, n int) float64 {
	worst := 0.0
	for it := 0; it < len(r)/(n*n); it++ {
		m := r[it*n*n : (it+1)*n*n]
		for i := range n {
			for j := range n {
				s := 0.0
				for k := range n {
					s += float64(m[k*n+i]) * float64(m[k*n+j])
				}
				if i == j {
					s--
				}
				worst = max(worst, math.Abs(s))
			}
		}
	}
	return worst
}

// TestMatExpSkewOrthogonal checks that exp of a skew-symmetric matrix is
// orthogonal to working precision, in float64 and float32, for norms that
// need many squarings (LieRE's dense 64×64 generators reach ‖A‖₁ ≈ 10²).
func TestMatExpSkewOrthogonal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{2, 8, 32} {
		for _, scale := range []float64{0.1, 3} {
			a := make([]float64, 3*n*n)
			skewFill(a, n, scale, rng)
			var tp Tape[float64]
			tp.NoGrad = true
			r := tp.MatExp(FromData(a, 3, n, n))
			if e := orthoErr(r.Data, n); e > 1e-12 {
				t.Errorf("float64 n %d scale %g: max |RᵀR − I| = %g", n, scale, e)
			}
			a32 := make([]float32, len(a))
			for i, v := range a {
				a32[i] = float32(v)
			}
			var tp32 Tape[float32]
			tp32.NoGrad = true
			r32 := tp32.MatExp(FromData(a32, 3, n, n))
			if e := orthoErr(r32.Data, n); e > 1e-5 {
				t.Errorf("float32 n %d scale %g: max |RᵀR − I| = %g", n, scale, e)
			}
			for i, v := range r.Data {
				if d := math.Abs(float64(r32.Data[i]) - v); d > 1e-5 {
					t.Fatalf("float32 n %d scale %g elem %d: %g vs float64 %g", n, scale, i, r32.Data[i], v)
				}
			}
		}
	}
}

// TestMatExpNoAlloc checks that a steady-state forward and backward of
// MatExp allocate only the closures of their two parallelFor calls.
func TestMatExpNoAlloc(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	a := NewParam[float64](4, 6, 6)
	skewFill(a.Data, 6, 1, rng)
	var tp Tape[float64]
	step := func() {
		tp.Reset()
		out := tp.MatExp(a)
		tp.backwardFrom(out, out.Data)
	}
	step()
	if n := testing.AllocsPerRun(20, step); n > 4 {
		t.Errorf("MatExp forward+backward: %v allocations per step, want ≤ 4", n)
	}
}
