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
