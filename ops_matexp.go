// This file holds MatExp, the batched matrix exponential op behind the
// ComRoPE and LieRE rotations (comrope.go, liere.go), forward beside
// backward. The kernels (matexp.go) run in float64 for both precisions;
// work splits over the matrices of the batch in fixed ranges, each chunk on
// a pooled workspace: bit-identical for any thread count, no allocation in
// a steady state.

package loope

import "fmt"

// MatExp returns exp(a) for each n×n matrix of a (..., n, n), by scaling and
// squaring with the degree-13 Padé approximant (matexp.go). The gradient is
// the adjoint Fréchet derivative: for G = dL/d exp(A), dL/dA = L(Aᵀ, G), the
// top-right block of exp([[Aᵀ, G], [0, Aᵀ]]). For a skew-symmetric a the
// result is orthogonal (a rotation). Computed in float64 and rounded once
// for float32. Shape (..., n, n).
func (tp *Tape[T]) MatExp(a *Tensor[T]) *Tensor[T] {
	n, items := squareBatch("MatExp", a)
	out := tp.outNoZero(a.Shape, a)
	parallelFor(items, matExpGrain(n), func(lo, hi int) {
		w := expmWorkPool.Get().(*expmWork)
		x := growBuf(&w.io, 2*n*n)
		in, res := x[:n*n], x[n*n:]
		for it := lo; it < hi; it++ {
			for i, v := range a.Data[it*n*n : (it+1)*n*n] {
				in[i] = float64(v)
			}
			expm64(res, in, n, w)
			o := out.Data[it*n*n : (it+1)*n*n]
			for i, v := range res {
				o[i] = T(v)
			}
		}
		expmWorkPool.Put(w)
	})
	if out.Grad != nil {
		tp.record(matExpBackward[T]{}, out, a)
	}
	return out
}

// matExpGrain is the number of n×n exponentials per chunk below which
// splitting does not pay (about 13 n³ flops each).
// squareBatch returns the side n and the number of n×n matrices of x
// (..., n, n), and panics, naming op, unless x is such a batch with n > 0.
func squareBatch[T Float](op string, x *Tensor[T]) (n, items int) {
	r := len(x.Shape)
	if r < 2 || x.Shape[r-1] != x.Shape[r-2] || x.Shape[r-1] == 0 {
		panic(fmt.Sprintf("loope: %s: want (..., n, n) with n > 0, got %v", op, x.Shape))
	}
	n = x.Shape[r-1]
	return n, x.Size() / (n * n)
}

func matExpGrain(n int) int { return max(1, 4096/(n*n*n)) }

// matExpBackward: dA += L(Aᵀ, G) per matrix (expmFrechet64).
type matExpBackward[T Float] struct{}

func (matExpBackward[T]) backward(nd *node[T]) {
	a, out := nd.in[0], nd.out
	if a.Grad == nil {
		return
	}
	n := a.Shape[len(a.Shape)-1]
	items := a.Size() / (n * n)
	parallelFor(items, max(1, matExpGrain(n)/8), func(lo, hi int) {
		w := expmWorkPool.Get().(*expmWork)
		x := growBuf(&w.io, 3*n*n)
		at, g, l := x[:n*n], x[n*n:2*n*n], x[2*n*n:]
		for it := lo; it < hi; it++ {
			ad, gd := a.Data[it*n*n:(it+1)*n*n], out.Grad[it*n*n:(it+1)*n*n]
			for i := range n {
				for j := range n {
					at[i*n+j] = float64(ad[j*n+i])
					g[i*n+j] = float64(gd[i*n+j])
				}
			}
			expmFrechet64(l, at, g, n, w)
			da := a.Grad[it*n*n : (it+1)*n*n]
			for i, v := range l {
				da[i] += T(v)
			}
		}
		expmWorkPool.Put(w)
	})
}
