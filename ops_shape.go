// This file holds the shape ops: Reshape (a zero-copy view), Transpose and
// Permute (copies through one strided kernel), Concat, Slice, Split and
// Gather, each forward beside its backward.

package loope

import (
	"fmt"
	"sync"
)

// maxPermRank is the largest rank Transpose and Permute accept.
const maxPermRank = 16

// Reshape returns x with a new shape of the same element count; one entry
// may be −1 and is then inferred. x (...) → shape.
//
// The result is a view: its Data and Grad alias x's, so writes to either
// show in both and no backward is recorded (gradients of the view land in
// x.Grad directly). It is valid until the tape's Reset, like every op output.
func (tp *Tape[T]) Reshape(x *Tensor[T], shape ...int) *Tensor[T] {
	out := tp.view(x, shape)
	infer, known := -1, 1
	for i, d := range out.Shape {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d < 0:
			panic(fmt.Sprintf("loope: Reshape: bad shape %v for %v", copyInts(shape), x.Shape))
		default:
			known *= d
		}
	}
	n := len(x.Data)
	if infer >= 0 {
		if known == 0 || n%known != 0 {
			panic(fmt.Sprintf("loope: Reshape: cannot reshape %v into %v", x.Shape, copyInts(shape)))
		}
		out.Shape[infer] = n / known
	} else if known != n {
		panic(fmt.Sprintf("loope: Reshape: cannot reshape %v into %v", x.Shape, copyInts(shape)))
	}
	return out
}

// Transpose returns x with axes i and j swapped (negative counts from the
// end), as a copy. x (..., a, ..., b, ...) → (..., b, ..., a, ...).
func (tp *Tape[T]) Transpose(x *Tensor[T], i, j int) *Tensor[T] {
	r := len(x.Shape)
	i, j = normAxis("Transpose", i, x.Shape), normAxis("Transpose", j, x.Shape)
	if r > maxPermRank {
		panic(fmt.Sprintf("loope: Transpose: rank of %v above %d", x.Shape, maxPermRank))
	}
	var perm [maxPermRank]int
	for k := range r {
		perm[k] = k
	}
	perm[i], perm[j] = j, i
	return tp.permute("Transpose", x, perm[:r])
}

// Permute returns x with its axes reordered, as a copy: output axis k is
// input axis perm[k]. x (d0, d1, ...) → (d[perm[0]], d[perm[1]], ...).
func (tp *Tape[T]) Permute(x *Tensor[T], perm ...int) *Tensor[T] {
	return tp.permute("Permute", x, perm)
}

// permute checks perm and runs the strided copy; the backward runs the
// same copy in the other direction.
func (tp *Tape[T]) permute(op string, x *Tensor[T], perm []int) *Tensor[T] {
	r := len(x.Shape)
	if len(perm) != r || r > maxPermRank {
		panic(fmt.Sprintf("loope: %s: permutation %v for shape %v", op, copyInts(perm), x.Shape))
	}
	var seen [maxPermRank]bool
	var shape [maxPermRank]int
	for k, p := range perm {
		if p < 0 || p >= r || seen[p] {
			panic(fmt.Sprintf("loope: %s: permutation %v for shape %v", op, copyInts(perm), x.Shape))
		}
		seen[p] = true
		shape[k] = x.Shape[p]
	}
	out := tp.outNoZero(shape[:r], x) // the copy writes every element
	permuteCopy(x.Shape, perm, out.Data, x.Data, false)
	if out.Grad != nil {
		nd := tp.record(permuteBackward[T]{}, out, x)
		nd.ints = append(nd.ints, perm...)
	}
	return out
}

// permuteBackward: dx[idx] += dy[perm(idx)], the same traversal as the
// forward with the copy direction reversed (a bijection, so no conflicts).
type permuteBackward[T Float] struct{}

func (permuteBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad != nil {
		permuteCopy(x.Shape, nd.ints, y.Grad, x.Grad, true)
	}
}

// permuteCopy walks the permuted tensor y (output axis k = input axis
// perm[k] of x, shape xShape) in row-major order. Forward (back = false):
// y[o] = x[off(o)]; backward (back = true): x[off(o)] += y[o].
// Swapping the last two axes with the rest in order takes a tiled path.
func permuteCopy[T Float](xShape, perm []int, y, x []T, back bool) {
	r := len(xShape)
	if len(x) == 0 {
		return
	}
	if r >= 2 && perm[r-2] == r-1 && perm[r-1] == r-2 {
		inOrder := true
		for k := range r - 2 {
			inOrder = inOrder && perm[k] == k
		}
		if inOrder {
			m, n := xShape[r-2], xShape[r-1]
			batch := len(x) / (m * n)
			if back { // x (m, n) += yᵀ, y (n, m)
				transposeTiled(x, y, batch, n, m, true)
			} else { // y (n, m) = xᵀ, x (m, n)
				transposeTiled(y, x, batch, m, n, false)
			}
			return
		}
	}
	// Strides of x along the output axes.
	var xs, st, dims, idx [maxPermRank]int
	s := 1
	for k := r - 1; k >= 0; k-- {
		xs[k] = s
		s *= xShape[k]
	}
	for k := range r {
		st[k], dims[k] = xs[perm[k]], xShape[perm[k]]
	}
	if r == 0 {
		if back {
			x[0] += y[0]
		} else {
			y[0] = x[0]
		}
		return
	}
	inner, is := dims[r-1], st[r-1]
	off := 0
	for o := 0; o < len(y); o += inner {
		yr := y[o : o+inner]
		if back {
			for i, v := range yr {
				x[off+i*is] += v
			}
		} else {
			for i := range yr {
				yr[i] = x[off+i*is]
			}
		}
		for k := r - 2; k >= 0; k-- { // odometer over the outer output axes
			idx[k]++
			off += st[k]
			if idx[k] < dims[k] {
				break
			}
			off -= idx[k] * st[k]
			idx[k] = 0
		}
	}
}

// transposeTiled writes dst (batch, n, m) (+)= transpose of src
// (batch, m, n), in 32×32 tiles so both sides stay in cache. Large
// batches split over threads by batch item (each writes its own block).
func transposeTiled[T Float](dst, src []T, batch, m, n int, acc bool) {
	job := transposeJob[T]{dst: dst, src: src, m: m, n: n, acc: acc}
	runPooled[T](&transposeJobs, job, batch, max(1, parGrain/max(m*n, 1)), serial(batch*m*n))
}

// transposeJob is transposeTiled on batch items [lo, hi) (a pooled job: no
// closure).
type transposeJob[T Float] struct {
	dst, src []T
	m, n     int
	acc      bool
}

var transposeJobs [2]sync.Pool // [0] float32, [1] float64

func (j *transposeJob[T]) run(lo, hi int) {
	const tile = 32
	m, n := j.m, j.n
	for b := lo; b < hi; b++ {
		s, d := j.src[b*m*n:(b+1)*m*n], j.dst[b*m*n:(b+1)*m*n]
		for i0 := 0; i0 < m; i0 += tile {
			i1 := min(i0+tile, m)
			for j0 := 0; j0 < n; j0 += tile {
				j1 := min(j0+tile, n)
				for i := i0; i < i1; i++ {
					row := s[i*n : (i+1)*n]
					if j.acc {
						for c := j0; c < j1; c++ {
							d[c*m+i] += row[c]
						}
					} else {
						for c := j0; c < j1; c++ {
							d[c*m+i] = row[c]
						}
					}
				}
			}
		}
	}
}

// Concat joins xs along axis (negative counts from the end); all other axes
// must agree. xs[i] (..., n_i, ...) → (..., Σ n_i, ...).
func (tp *Tape[T]) Concat(axis int, xs ...*Tensor[T]) *Tensor[T] {
	if len(xs) == 0 {
		panic("loope: Concat: no tensors")
	}
	x0 := xs[0]
	axis = normAxis("Concat", axis, x0.Shape)
	total := 0
	for _, x := range xs {
		ok := len(x.Shape) == len(x0.Shape)
		for k := 0; ok && k < len(x.Shape); k++ {
			ok = k == axis || x.Shape[k] == x0.Shape[k]
		}
		if !ok {
			panic(fmt.Sprintf("loope: Concat: shape %v does not match %v along axis %d", x.Shape, x0.Shape, axis))
		}
		total += x.Shape[axis]
	}
	var buf [8]int
	shape := append(buf[:0], x0.Shape...)
	shape[axis] = total
	out := tp.outNoZero(shape, xs...) // the blocks below tile the output
	outer, inner := splitAt(x0.Shape, axis)
	row := total * inner // output row length
	off := 0
	for _, x := range xs {
		w := x.Shape[axis] * inner
		for o := range outer {
			copy(out.Data[o*row+off:o*row+off+w], x.Data[o*w:(o+1)*w])
		}
		off += w
	}
	if out.Grad != nil {
		nd := tp.record(concatBackward[T]{}, out, xs...)
		*attrsOf[concatAttrs](nd) = concatAttrs{outer: outer, inner: inner, axis: axis}
	}
	return out
}

// concatBackward: each dx_i += its block of columns of dy (outer, Σ n_i·inner).
type concatBackward[T Float] struct{}

// concatAttrs are Concat's node attributes: the axis, and the sizes before
// (outer) and after (inner) it.
type concatAttrs struct{ outer, inner, axis int }

func (concatBackward[T]) backward(nd *node[T]) {
	y := nd.out
	at := attrsOf[concatAttrs](nd)
	outer, inner, axis := at.outer, at.inner, at.axis
	row := y.Shape[axis] * inner
	off := 0
	for _, x := range nd.in {
		w := x.Shape[axis] * inner
		if x.Grad != nil {
			for o := range outer {
				dx, g := x.Grad[o*w:(o+1)*w], y.Grad[o*row+off:o*row+off+w]
				for i, v := range g {
					dx[i] += v
				}
			}
		}
		off += w
	}
}

// Slice returns the copy of x restricted to [start, end) along axis
// (negative axis counts from the end). x (..., n, ...) → (..., end−start, ...).
func (tp *Tape[T]) Slice(x *Tensor[T], axis, start, end int) *Tensor[T] {
	axis = normAxis("Slice", axis, x.Shape)
	n := x.Shape[axis]
	if start < 0 || end < start || end > n {
		panic(fmt.Sprintf("loope: Slice: range [%d, %d) out of bounds for axis %d of %v", start, end, axis, x.Shape))
	}
	var buf [8]int
	shape := append(buf[:0], x.Shape...)
	shape[axis] = end - start
	out := tp.outNoZero(shape, x) // the copies below write every element
	outer, inner := splitAt(x.Shape, axis)
	w := (end - start) * inner
	for o := range outer {
		copy(out.Data[o*w:(o+1)*w], x.Data[(o*n+start)*inner:(o*n+end)*inner])
	}
	if out.Grad != nil {
		nd := tp.record(sliceBackward[T]{}, out, x)
		*attrsOf[sliceAttrs](nd) = sliceAttrs{outer: outer, inner: inner, n: n, start: start, end: end}
	}
	return out
}

// sliceBackward: dx[o, start:end, :] += dy[o, :, :].
type sliceBackward[T Float] struct{}

// sliceAttrs are Slice's node attributes: x (outer, n, inner), rows
// [start, end) of n kept.
type sliceAttrs struct{ outer, inner, n, start, end int }

func (sliceBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	at := attrsOf[sliceAttrs](nd)
	outer, inner, n, start, end := at.outer, at.inner, at.n, at.start, at.end
	w := (end - start) * inner
	for o := range outer {
		dx := x.Grad[(o*n+start)*inner : (o*n+end)*inner]
		for i, v := range y.Grad[o*w : (o+1)*w] {
			dx[i] += v
		}
	}
}

// Split cuts x along axis into consecutive pieces of the given sizes, which
// must sum to the axis length; each piece is a Slice. It allocates the
// returned slice. x (..., Σ sizes, ...) → [(..., sizes[i], ...)].
func (tp *Tape[T]) Split(x *Tensor[T], axis int, sizes ...int) []*Tensor[T] {
	axis = normAxis("Split", axis, x.Shape)
	total := 0
	for _, s := range sizes {
		if s < 0 {
			panic(fmt.Sprintf("loope: Split: negative size in %v", copyInts(sizes)))
		}
		total += s
	}
	if total != x.Shape[axis] {
		panic(fmt.Sprintf("loope: Split: sizes %v do not sum to axis %d of %v", copyInts(sizes), axis, x.Shape))
	}
	outs := make([]*Tensor[T], len(sizes))
	start := 0
	for i, s := range sizes {
		outs[i] = tp.Slice(x, axis, start, start+s)
		start += s
	}
	return outs
}

// Gather selects entries idx along axis (negative counts from the end);
// indices may repeat. x (..., n, ...), idx in [0, n) →
// (..., len(idx), ...). out[o, j, i] = x[o, idx[j], i].
func (tp *Tape[T]) Gather(x *Tensor[T], axis int, idx []int) *Tensor[T] {
	axis = normAxis("Gather", axis, x.Shape)
	n := x.Shape[axis]
	for _, j := range idx {
		if j < 0 || j >= n {
			panic(fmt.Sprintf("loope: Gather: index %d out of range for axis %d of %v", j, axis, x.Shape))
		}
	}
	var buf [8]int
	shape := append(buf[:0], x.Shape...)
	shape[axis] = len(idx)
	out := tp.outNoZero(shape, x) // the copies below write every element
	outer, inner := splitAt(x.Shape, axis)
	m := len(idx)
	for o := range outer {
		for k, j := range idx {
			copy(out.Data[(o*m+k)*inner:(o*m+k+1)*inner], x.Data[(o*n+j)*inner:(o*n+j+1)*inner])
		}
	}
	if out.Grad != nil {
		nd := tp.record(gatherBackward[T]{}, out, x)
		*attrsOf[gatherAttrs](nd) = gatherAttrs{outer: outer, inner: inner, n: n}
		nd.ints = append(nd.ints, idx...)
	}
	return out
}

// gatherBackward scatters: dx[o, idx[k], i] += dy[o, k, i], so repeated
// indices add up. nd.ints holds idx.
type gatherBackward[T Float] struct{}

// gatherAttrs are Gather's node attributes: x (outer, n, inner).
type gatherAttrs struct{ outer, inner, n int }

func (gatherBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	at := attrsOf[gatherAttrs](nd)
	outer, inner, n, idx := at.outer, at.inner, at.n, nd.ints
	m := len(idx)
	for o := range outer {
		for k, j := range idx {
			dx := x.Grad[(o*n+j)*inner : (o*n+j+1)*inner]
			for i, v := range y.Grad[(o*m+k)*inner : (o*m+k+1)*inner] {
				dx[i] += v
			}
		}
	}
}

// copyInts returns a copy of s for panic messages, so that s itself does not
// escape and callers' variadic or stack-built slices stay off the heap.
func copyInts(s []int) []int { return append([]int(nil), s...) }
