// This file holds the indexing op the contextual relative-position PEs need:
// TakeAlongLast, a gather along the last axis with a different index row
// for every row of the second-last axis (numpy take_along_axis on the last
// axis, the index broadcast over the leading axes), forward beside backward.

package loope

import "fmt"

// TakeAlongLast returns out[..., m, j] = x[..., m, idx[m·J + j]] for
// x (..., M, K) and idx (M, J) flattened row-major with J = cols: shape
// (..., M, J). Indices may repeat within a row. iRPE's contextual mode uses
// it to spread the per-bucket products q·r (B, H, N, K) over the token pairs
// (B, H, N, N) (docs/pe-zoo.md §13.3, irpe.py forward_rpe_transpose).
func (tp *Tape[T]) TakeAlongLast(x *Tensor[T], idx []int, cols int) *Tensor[T] {
	r := len(x.Shape)
	if r < 2 || cols < 0 || len(idx) != x.Shape[r-2]*cols {
		panic(fmt.Sprintf("loope: TakeAlongLast: x %v needs (..., M, K) and idx of M·cols entries, got %d entries, cols %d",
			x.Shape, len(idx), cols))
	}
	m, k := x.Shape[r-2], x.Shape[r-1]
	for _, v := range idx {
		if v < 0 || v >= k {
			panic(fmt.Sprintf("loope: TakeAlongLast: index %d out of range for the last axis of %v", v, x.Shape))
		}
	}
	var buf [8]int
	shape := append(buf[:0], x.Shape...)
	shape[r-1] = cols
	out := tp.out(shape, x)
	outer := len(x.Data) / max(m*k, 1)
	if m*k == 0 {
		outer = 0
	}
	parallelFor(outer, max(1, 4096/max(m*cols, 1)), func(lo, hi int) {
		for o := lo; o < hi; o++ {
			for i := range m {
				xr := x.Data[(o*m+i)*k : (o*m+i+1)*k]
				or := out.Data[(o*m+i)*cols : (o*m+i+1)*cols]
				for j, v := range idx[i*cols : (i+1)*cols] {
					or[j] = xr[v]
				}
			}
		}
	})
	if out.Grad != nil {
		nd := tp.record(takeAlongLastBackward[T]{}, out, x)
		*attrsOf[takeAlongLastAttrs](nd) = takeAlongLastAttrs{outer: outer, m: m, k: k, cols: cols}
		nd.ints = append(nd.ints, idx...)
	}
	return out
}

// takeAlongLastBackward scatters: dx[..., m, idx[m·J+j]] += dy[..., m, j],
// so repeated indices add up. Each leading item writes only its own rows of
// dx, so the split over items is race-free and deterministic.
// nd.ints holds idx.
type takeAlongLastBackward[T Float] struct{}

// takeAlongLastAttrs are TakeAlongLast's node attributes: x (outer, m, k),
// cols indices per row.
type takeAlongLastAttrs struct{ outer, m, k, cols int }

func (takeAlongLastBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	at := attrsOf[takeAlongLastAttrs](nd)
	outer, m, k, cols, idx := at.outer, at.m, at.k, at.cols, nd.ints
	parallelFor(outer, max(1, 4096/max(m*cols, 1)), func(lo, hi int) {
		for o := lo; o < hi; o++ {
			for i := range m {
				dx := x.Grad[(o*m+i)*k : (o*m+i+1)*k]
				dy := y.Grad[(o*m+i)*cols : (o*m+i+1)*cols]
				for j, v := range idx[i*cols : (i+1)*cols] {
					dx[v] += dy[j]
				}
			}
		}
	})
}
