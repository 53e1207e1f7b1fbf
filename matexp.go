// This file holds the matrix exponential kernel behind the MatExp op
// (ops_matexp.go) and the rotation PEs built on it (comrope.go, liere.go):
// scaling and squaring with the degree-13 Padé approximant (Higham 2005),
// forward, and the Fréchet derivative L(A, E) through the block-triangular
// identity exp([[A, E], [0, A]]) = [[e^A, L(A, E)], [0, e^A]]. Everything is
// computed in float64 on one goroutine's pooled workspace.

package loope

import (
	"math"
	"sync"
)

// expmPade13 holds the degree-13 Padé coefficients b_0…b_13 and θ_13, the
// largest 1-norm for which the approximant meets double precision without
// scaling (Higham 2005, Table 2.3).
var expmPade13 = [14]float64{
	64764752532480000, 32382376266240000, 7771770303897600, 1187353796428800,
	129060195264000, 10559470521600, 670442572800, 33522128640,
	1323241920, 40840800, 960960, 16380, 182, 1,
}

const expmTheta13 = 5.371920351148152

// expmWork is one goroutine's workspace for expm64 on matrices up to m×m
// (m = 2n for the Fréchet derivative). It is pooled (expmWorkPool), so a
// steady state allocates nothing.
type expmWork struct {
	buf []float64 // 9 m×m matrices
	piv []int     // LU pivots, m
	io  []float64 // the op's float64 copies of its operands (ops_matexp.go)
}

var expmWorkPool = sync.Pool{New: func() any { return new(expmWork) }}

// mats returns the workspace cut into 9 m×m matrices.
func (w *expmWork) mats(m int) [9][]float64 {
	if cap(w.buf) < 9*m*m {
		w.buf = make([]float64, 9*m*m)
	}
	if cap(w.piv) < m {
		w.piv = make([]int, m)
	}
	var ms [9][]float64
	for i := range ms {
		ms[i] = w.buf[i*m*m : (i+1)*m*m]
	}
	return ms
}

// matMul64 sets c = a·b for m×m row-major matrices (c must not alias a or b).
func matMul64(c, a, b []float64, m int) {
	clear(c)
	for i := range m {
		ci := c[i*m : (i+1)*m]
		for k, aik := range a[i*m : (i+1)*m] {
			if aik == 0 {
				continue
			}
			bk := b[k*m : (k+1)*m]
			for j, v := range bk {
				ci[j] += aik * v
			}
		}
	}
}

// expm64 writes exp(a) into dst for the m×m row-major matrix a (dst may
// alias a). Scaling and squaring: s = max(0, ⌈log₂(‖a‖₁/θ₁₃)⌉), then
// r₁₃(a/2^s) = (V − U)⁻¹(V + U) squared s times, with U the odd and V the
// even part of the Padé numerator (Higham 2005, Algorithm 2.3, degree 13
// always).
func expm64(dst, a []float64, m int, w *expmWork) {
	ms := w.mats(m)
	A, A2, A4, A6, t, u, v, p := ms[0], ms[1], ms[2], ms[3], ms[4], ms[5], ms[6], ms[7]
	norm := 0.0
	for j := range m {
		s := 0.0
		for i := range m {
			s += math.Abs(a[i*m+j])
		}
		norm = max(norm, s)
	}
	s := 0
	if norm > expmTheta13 {
		s = int(math.Ceil(math.Log2(norm / expmTheta13)))
	}
	sc := math.Ldexp(1, -s)
	for i, x := range a {
		A[i] = x * sc
	}
	matMul64(A2, A, A, m)
	matMul64(A4, A2, A2, m)
	matMul64(A6, A4, A2, m)
	b := &expmPade13
	for i := range t {
		t[i] = b[13]*A6[i] + b[11]*A4[i] + b[9]*A2[i]
	}
	matMul64(p, A6, t, m)
	for i := range p {
		p[i] += b[7]*A6[i] + b[5]*A4[i] + b[3]*A2[i]
	}
	for i := range m {
		p[i*m+i] += b[1]
	}
	matMul64(u, A, p, m)
	for i := range t {
		t[i] = b[12]*A6[i] + b[10]*A4[i] + b[8]*A2[i]
	}
	matMul64(v, A6, t, m)
	for i := range v {
		v[i] += b[6]*A6[i] + b[4]*A4[i] + b[2]*A2[i]
	}
	for i := range m {
		v[i*m+i] += b[0]
	}
	// Solve (V − U)·X = V + U: q = V − U in A (no longer needed), X in p.
	q := A
	for i := range q {
		q[i] = v[i] - u[i]
		p[i] = v[i] + u[i]
	}
	luSolve64(q, p, m, w.piv[:m])
	for range s {
		matMul64(t, p, p, m)
		p, t = t, p
	}
	copy(dst, p)
}

// luSolve64 overwrites b (m×m, m right-hand sides) with q⁻¹·b, by LU with
// partial pivoting of q (overwritten). The Padé denominator is well
// conditioned after scaling (Higham 2005, §2), so no refinement is done.
func luSolve64(q, b []float64, m int, piv []int) {
	for k := range m {
		p, best := k, math.Abs(q[k*m+k])
		for i := k + 1; i < m; i++ {
			if a := math.Abs(q[i*m+k]); a > best {
				p, best = i, a
			}
		}
		piv[k] = p
		if p != k {
			for j := range m {
				q[k*m+j], q[p*m+j] = q[p*m+j], q[k*m+j]
				b[k*m+j], b[p*m+j] = b[p*m+j], b[k*m+j]
			}
		}
		d := q[k*m+k]
		for i := k + 1; i < m; i++ {
			f := q[i*m+k] / d
			if f == 0 {
				continue
			}
			q[i*m+k] = f
			for j := k + 1; j < m; j++ {
				q[i*m+j] -= f * q[k*m+j]
			}
			bi, bk := b[i*m:(i+1)*m], b[k*m:(k+1)*m]
			for j := range m {
				bi[j] -= f * bk[j]
			}
		}
	}
	for k := m - 1; k >= 0; k-- {
		bk := b[k*m : (k+1)*m]
		for i := k + 1; i < m; i++ {
			f := q[k*m+i]
			if f == 0 {
				continue
			}
			bi := b[i*m : (i+1)*m]
			for j := range m {
				bk[j] -= f * bi[j]
			}
		}
		d := q[k*m+k]
		for j := range m {
			bk[j] /= d
		}
	}
}

// expmFrechet64 writes L(a, e), the Fréchet derivative of exp at the n×n
// matrix a in direction e, into dst: the top-right n×n block of
// exp([[a, e], [0, a]]). The 2n×2n block matrix lives in w (8·(2n)² is
// reused by expm64 after the block is read in).
//
// L is linear in e, and the error of the block exponential is relative to
// its whole norm, about ‖e^a‖: so e is first scaled by a power of two to
// max |e| ≈ 1 and the result scaled back, else an e much smaller than e^a
// (a small gradient) would come back with only a few correct digits.
func expmFrechet64(dst, a, e []float64, n int, w *expmWork) {
	m := 2 * n
	ms := w.mats(m)
	blk := ms[8]
	clear(blk)
	emax := 0.0
	for _, v := range e[:n*n] {
		emax = max(emax, math.Abs(v))
	}
	if emax == 0 {
		clear(dst[:n*n])
		return
	}
	_, ex := math.Frexp(emax) // emax = f·2^ex, f ∈ [½, 1)
	for i := range n {
		copy(blk[i*m:i*m+n], a[i*n:(i+1)*n])
		for j, v := range e[i*n : (i+1)*n] {
			blk[i*m+n+j] = math.Ldexp(v, -ex)
		}
		copy(blk[(n+i)*m+n:(n+i)*m+m], a[i*n:(i+1)*n])
	}
	expm64(blk, blk, m, w)
	for i := range n {
		for j, v := range blk[i*m+n : i*m+m] {
			dst[i*n+j] = math.Ldexp(v, ex)
		}
	}
}
