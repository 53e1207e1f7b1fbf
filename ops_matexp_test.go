package loope

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestMatExpGonum compares MatExp in float64 with gonum's mat.Dense.Exp on
// matrices of several sizes and norms (below θ₁₃ and far above it, so both
// the unscaled and the scaled-and-squared paths run).
func TestMatExpGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 8, 17} {
		for _, scale := range []float64{0.01, 1, 20} {
			a := New[float64](2, n, n)
			for i := range a.Data {
				a.Data[i] = scale * rng.NormFloat64() / math.Sqrt(float64(n))
			}
			var tp Tape[float64]
			tp.NoGrad = true
			got := tp.MatExp(a)
			for it := range 2 {
				var e mat.Dense
				e.Exp(mat.NewDense(n, n, append([]float64(nil), a.Data[it*n*n:(it+1)*n*n]...)))
				want := e.RawMatrix().Data
				nrm := mat.Norm(&e, 1)
				for i, w := range want {
					if d := math.Abs(got.Data[it*n*n+i] - w); d > 1e-12*nrm {
						t.Fatalf("n %d scale %g item %d elem %d: got %.17g, gonum %.17g (‖e^A‖₁ %g)", n, scale, it, i, got.Data[it*n*n+i], w, nrm)
					}
				}
			}
		}
	}
}

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

// TestCayleyOrthogonal checks Cayley of a skew-symmetric matrix: P is
// orthogonal and (I + S)·P = I − S, in float64 and float32.
func TestCayleyOrthogonal(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	n := 6
	a := make([]float64, 2*n*n)
	skewFill(a, n, 2, rng)
	var tp Tape[float64]
	tp.NoGrad = true
	p := tp.Cayley(FromData(a, 2, n, n))
	if e := orthoErr(p.Data, n); e > 1e-13 {
		t.Errorf("float64: max |PᵀP − I| = %g", e)
	}
	for it := range 2 {
		s, pp := a[it*n*n:(it+1)*n*n], p.Data[it*n*n:(it+1)*n*n]
		for i := range n {
			for j := range n {
				lhs := pp[i*n+j]
				for k := range n {
					lhs += s[i*n+k] * pp[k*n+j]
				}
				rhs := -s[i*n+j]
				if i == j {
					rhs++
				}
				if math.Abs(lhs-rhs) > 1e-12 {
					t.Fatalf("item %d (%d, %d): (I+S)P = %g, I−S = %g", it, i, j, lhs, rhs)
				}
			}
		}
	}
	a32 := make([]float32, len(a))
	for i, v := range a {
		a32[i] = float32(v)
	}
	var tp32 Tape[float32]
	tp32.NoGrad = true
	if e := orthoErr(tp32.Cayley(FromData(a32, 2, n, n)).Data, n); e > 1e-5 {
		t.Errorf("float32: max |PᵀP − I| = %g", e)
	}
}

// TestMatExpFrechetSmallDirection: L(A, E) is linear in E, and a direction
// far smaller than e^A (a small gradient) keeps full relative precision:
// L(A, 2⁻⁴⁰·E) = 2⁻⁴⁰·L(A, E) to rounding.
func TestMatExpFrechetSmallDirection(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	n := 4
	a, e := make([]float64, n*n), make([]float64, n*n)
	skewFill(a, n, 1, rng)
	for i := range e {
		e[i] = rng.NormFloat64()
	}
	small := make([]float64, n*n)
	for i, v := range e {
		small[i] = math.Ldexp(v*1e-3, -40)
	}
	w := new(expmWork)
	l, ls := make([]float64, n*n), make([]float64, n*n)
	expmFrechet64(l, a, e, n, w)
	expmFrechet64(ls, a, small, n, w)
	scale := 0.0
	for _, v := range l {
		scale = max(scale, math.Abs(v))
	}
	for i := range l {
		if d := math.Abs(math.Ldexp(ls[i], 40)/1e-3 - l[i]); d > 1e-14*scale {
			t.Errorf("elem %d: scaled %.17g, unscaled %.17g", i, math.Ldexp(ls[i], 40)/1e-3, l[i])
		}
	}
}
