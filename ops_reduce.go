// This file holds the reductions: Sum and Mean over all elements, SumAxis
// and MeanAxis over one axis, and Softmax over the last axis, each forward
// beside its backward.

package loope

import (
	"fmt"
	"math"
)

// normAxis returns axis in [0, rank), counting a negative axis from the end;
// it panics naming op and shape if the axis is out of range.
func normAxis(op string, axis int, shape []int) int {
	r := len(shape)
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		panic(fmt.Sprintf("loope: %s: axis %d out of range for shape %v", op, axis, shape))
	}
	return axis
}

// splitAt returns the products of shape[:axis] and shape[axis+1:]: the
// tensor viewed as (outer, shape[axis], inner).
func splitAt(shape []int, axis int) (outer, inner int) {
	outer, inner = 1, 1
	for _, d := range shape[:axis] {
		outer *= d
	}
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	return outer, inner
}

// scalarOut returns a rank-0 arena tensor (Shape []int{}, one element).
func (tp *Tape[T]) scalarOut(inputs ...*Tensor[T]) *Tensor[T] {
	out := tp.out(nil, inputs...)
	if out.Shape == nil {
		out.Shape = []int{}
	}
	return out
}

// Sum returns Σ x over all elements: x (...) → () (rank 0). The sum runs
// serially in float64.
func (tp *Tape[T]) Sum(x *Tensor[T]) *Tensor[T] { return tp.sumAll(x, 1) }

// Mean returns Σ x / n over all n elements: x (...) → () (rank 0).
func (tp *Tape[T]) Mean(x *Tensor[T]) *Tensor[T] {
	return tp.sumAll(x, 1/float64(max(len(x.Data), 1)))
}

// sumAll returns scale·Σ x as a rank-0 tensor.
func (tp *Tape[T]) sumAll(x *Tensor[T], scale float64) *Tensor[T] {
	out := tp.scalarOut(x)
	s := 0.0
	for _, v := range x.Data {
		s += float64(v)
	}
	out.Data[0] = T(s * scale)
	if out.Grad != nil {
		nd := tp.record(sumAllBackward[T]{}, out, x)
		*attrsOf[scaleAttrs](nd) = scaleAttrs{scale: scale}
	}
	return out
}

// sumAllBackward: dx += scale·dy for every element.
type sumAllBackward[T Float] struct{}

func (sumAllBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	g := T(attrsOf[scaleAttrs](nd).scale * float64(y.Grad[0]))
	for i := range x.Grad {
		x.Grad[i] += g
	}
}

// SumAxis returns the sum over one axis (negative counts from the end):
// x (..., n, ...) → (..., 1, ...) with keepDim, else (..., ...).
func (tp *Tape[T]) SumAxis(x *Tensor[T], axis int, keepDim bool) *Tensor[T] {
	return tp.sumAxis("SumAxis", x, axis, keepDim, false)
}

// MeanAxis returns the mean over one axis (negative counts from the end):
// x (..., n, ...) → (..., 1, ...) with keepDim, else (..., ...).
func (tp *Tape[T]) MeanAxis(x *Tensor[T], axis int, keepDim bool) *Tensor[T] {
	return tp.sumAxis("MeanAxis", x, axis, keepDim, true)
}

// sumAxis is the shared forward of SumAxis and MeanAxis: x viewed as
// (outer, n, inner) reduces to (outer, inner), times 1/n when mean.
func (tp *Tape[T]) sumAxis(op string, x *Tensor[T], axis int, keepDim, mean bool) *Tensor[T] {
	axis = normAxis(op, axis, x.Shape)
	outer, inner := splitAt(x.Shape, axis)
	n := x.Shape[axis]
	var buf [8]int
	shape := append(buf[:0], x.Shape[:axis]...)
	if keepDim {
		shape = append(shape, 1)
	}
	shape = append(shape, x.Shape[axis+1:]...)
	out := tp.out(shape, x)
	scale := 1.0
	if mean && n > 0 {
		scale = 1 / float64(n)
	}
	c := T(scale)
	if inner == 1 { // reducing the last axis: contiguous rows
		for o := range outer {
			var s T
			for _, v := range x.Data[o*n : (o+1)*n] {
				s += v
			}
			out.Data[o] = s * c
		}
	}
	for o := 0; o < outer && inner > 1; o++ {
		dst := out.Data[o*inner : (o+1)*inner]
		for k := range n {
			for i, v := range x.Data[(o*n+k)*inner : (o*n+k+1)*inner] {
				dst[i] += v
			}
		}
		if mean {
			for i := range dst {
				dst[i] *= c
			}
		}
	}
	if out.Grad != nil {
		nd := tp.record(sumAxisBackward[T]{}, out, x)
		*attrsOf[sumAxisAttrs](nd) = sumAxisAttrs{outer: outer, n: n, inner: inner, scale: scale}
	}
	return out
}

// sumAxisBackward: dx[o, k, i] += scale·dy[o, i] for every k.
type sumAxisBackward[T Float] struct{}

// sumAxisAttrs are SumAxis's node attributes: x viewed as (outer, n,
// inner), summed over n, times scale.
type sumAxisAttrs struct {
	outer, n, inner int
	scale           float64
}

func (sumAxisBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	at := attrsOf[sumAxisAttrs](nd)
	outer, n, inner, c := at.outer, at.n, at.inner, T(at.scale)
	if inner == 1 {
		for o := range outer {
			g := c * y.Grad[o]
			for k := range x.Grad[o*n : (o+1)*n] {
				x.Grad[o*n+k] += g
			}
		}
		return
	}
	for o := range outer {
		g := y.Grad[o*inner : (o+1)*inner]
		for k := range n {
			dx := x.Grad[(o*n+k)*inner : (o*n+k+1)*inner]
			for i, v := range g {
				dx[i] += c * v
			}
		}
	}
}

// Softmax returns the softmax over the last axis,
// y_j = e^(x_j − m) / Σ_k e^(x_k − m) with m the row maximum (so no
// overflow). x (..., K) → (..., K).
func (tp *Tape[T]) Softmax(x *Tensor[T]) *Tensor[T] {
	if len(x.Shape) < 1 {
		panic(fmt.Sprintf("loope: Softmax: need rank ≥ 1, got shape %v", x.Shape))
	}
	out := tp.out(x.Shape, x)
	k := x.Shape[len(x.Shape)-1]
	if k > 0 {
		rows := len(x.Data) / k
		if serial(len(x.Data)) {
			softmaxRows(out.Data, x.Data, k, 0, rows)
		} else {
			y, xd := out.Data, x.Data
			parallelFor(rows, max(1, parGrain/k), func(lo, hi int) { softmaxRows(y, xd, k, lo, hi) })
		}
	}
	if out.Grad != nil {
		tp.record(softmaxBackward[T]{}, out, x)
	}
	return out
}

// softmaxRows computes rows [lo, hi) of the softmax of x (rows, k) into y.
// exp and the row sum run in float64, except for float32 rows, which run
// the fast kernel of fastmath.go.
func softmaxRows[T Float](y, x []T, k, lo, hi int) {
	if y32, ok := any(y).([]float32); ok {
		copy(y[lo*k:hi*k], x[lo*k:hi*k])
		for r := lo; r < hi; r++ {
			softmaxRow32(y32[r*k : (r+1)*k])
		}
		return
	}
	for r := lo; r < hi; r++ {
		xr, yr := x[r*k:(r+1)*k], y[r*k:(r+1)*k]
		m := xr[0]
		for _, v := range xr[1:] {
			m = max(m, v)
		}
		s := 0.0
		for j, v := range xr {
			e := math.Exp(float64(v - m))
			yr[j] = T(e)
			s += e
		}
		inv := 1 / s
		for j := range yr {
			yr[j] = T(float64(yr[j]) * inv)
		}
	}
}

// softmaxBackward: dx += y ⊙ (dy − Σ_j dy_j·y_j), per row.
type softmaxBackward[T Float] struct{}

func (softmaxBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	k := y.Shape[len(y.Shape)-1]
	if k == 0 {
		return
	}
	rows := len(y.Data) / k
	if serial(len(y.Data)) {
		softmaxGradRows(x.Grad, y.Grad, y.Data, k, 0, rows)
		return
	}
	parallelFor(rows, max(1, parGrain/k), func(lo, hi int) {
		softmaxGradRows(x.Grad, y.Grad, y.Data, k, lo, hi)
	})
}

// softmaxGradRows is softmaxBackward on rows [lo, hi).
func softmaxGradRows[T Float](dx, dy, y []T, k, lo, hi int) {
	for r := lo; r < hi; r++ {
		g, yr, d := dy[r*k:(r+1)*k], y[r*k:(r+1)*k], dx[r*k:(r+1)*k]
		var dot T
		for j, v := range g {
			dot += v * yr[j]
		}
		for j, v := range g {
			d[j] += yr[j] * (v - dot)
		}
	}
}
