// This file holds Cayley, the batched Cayley transform op behind STRING's
// learnable orthogonal basis (string.go), forward beside backward. The
// kernel runs in float64 for both precisions on pooled workspaces (the LU
// solve of matexp.go); work splits over the matrices of the batch in fixed
// ranges: bit-identical for any thread count.

package loope

// Cayley returns P = (I − S)(I + S)⁻¹ = 2(I + S)⁻¹ − I for each n×n matrix S
// of s (..., n, n). For a skew-symmetric S, I + S is invertible and P is
// orthogonal with det P = 1. With Q = (I + S)⁻¹, dP = −2·Q·dS·Q, so the
// gradient is dL/dS = −2·Qᵀ·G·Qᵀ. Computed in float64 and rounded once for
// float32. Shape (..., n, n).
func (tp *Tape[T]) Cayley(s *Tensor[T]) *Tensor[T] {
	n, items := squareBatch("Cayley", s)
	out := tp.outNoZero(s.Shape, s)
	parallelFor(items, matExpGrain(n), func(lo, hi int) {
		w := expmWorkPool.Get().(*expmWork)
		for it := lo; it < hi; it++ {
			q := cayleyInverse(w, s.Data[it*n*n:(it+1)*n*n], n)
			o := out.Data[it*n*n : (it+1)*n*n]
			for i, v := range q {
				if i/n == i%n {
					v -= 0.5
				}
				o[i] = T(2 * v)
			}
		}
		expmWorkPool.Put(w)
	})
	if out.Grad != nil {
		tp.record(cayleyBackward[T]{}, out, s)
	}
	return out
}

// cayleyInverse returns (I + s)⁻¹ for the n×n matrix s, in w's workspace
// (valid until w's next use).
func cayleyInverse[T Float](w *expmWork, s []T, n int) []float64 {
	ms := w.mats(n)
	a, q := ms[0], ms[1]
	clear(q)
	for i, v := range s {
		a[i] = float64(v)
	}
	for i := range n {
		a[i*n+i]++
		q[i*n+i] = 1
	}
	luSolve64(a, q, n, w.piv[:n])
	return q
}

// cayleyBackward: dS += −2·Qᵀ·G·Qᵀ per matrix, Q = (I + S)⁻¹ recomputed.
type cayleyBackward[T Float] struct{}

func (cayleyBackward[T]) backward(nd *node[T]) {
	s, out := nd.in[0], nd.out
	if s.Grad == nil {
		return
	}
	n := s.Shape[len(s.Shape)-1]
	items := s.Size() / (n * n)
	parallelFor(items, matExpGrain(n), func(lo, hi int) {
		w := expmWorkPool.Get().(*expmWork)
		for it := lo; it < hi; it++ {
			q := cayleyInverse(w, s.Data[it*n*n:(it+1)*n*n], n)
			ms := w.mats(n)
			qt, g, t1, t2 := ms[2], ms[3], ms[4], ms[5]
			gd := out.Grad[it*n*n : (it+1)*n*n]
			for i := range n {
				for j := range n {
					qt[i*n+j] = q[j*n+i]
					g[i*n+j] = float64(gd[i*n+j])
				}
			}
			matMul64(t1, qt, g, n)
			matMul64(t2, t1, qt, n)
			ds := s.Grad[it*n*n : (it+1)*n*n]
			for i, v := range t2 {
				ds[i] += T(-2 * v)
			}
		}
		expmWorkPool.Put(w)
	})
}
