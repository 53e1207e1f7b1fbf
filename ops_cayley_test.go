package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

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
