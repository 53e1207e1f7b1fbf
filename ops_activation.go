// This file holds the activations. Each is y = f(x) element-wise,
// x (...) → (...), forward beside backward. A forward
// kernel fills y from x; a backward kernel adds f'(x)·dy into dx, written
// in terms of x or y, whichever is cheaper. Transcendental functions are
// evaluated in float64, except GELU and Exp on float32, which run the
// float32 kernels of fastmath.go (the hot ones of a ViT step).

package loope

import (
	"fmt"
	"math"
	"sync"
)

// Activation codes: unary dispatches its forward and backward kernels on
// them with a switch, once per chunk. (Passing the generic kernels as
// function values instead would allocate a closure per call.)
const (
	actGELU = iota
	actReLU
	actSigmoid
	actTanh
	actSin
	actCos
	actExp
	actLog
)

// unary runs activation act forward, splitting large tensors over threads,
// and records unaryBackward with act in its attributes. A recording GELU also
// stores its derivative in nd.saved[0], so that the backward is one
// multiply-add instead of a second evaluation of Φ and φ (and linearGELU,
// which does the same, has the composition's bits).
func (tp *Tape[T]) unary(act int, x *Tensor[T]) *Tensor[T] {
	out := tp.outNoZero(x.Shape, x) // every kernel writes all of y
	n := len(x.Data)
	var der []T
	if act == actGELU && out.Grad != nil {
		der = tp.scratchNoZero(n) // GELU'(x), written in full with y: the backward is dx += der·dy
	}
	unaryRun(act, out.Data, der, x.Data)
	if out.Grad != nil {
		nd := tp.record(unaryBackward[T]{}, out, x)
		*attrsOf[unaryAttrs](nd) = unaryAttrs{act: act}
		if der != nil {
			nd.saved = append(nd.saved, der)
		}
	}
	return out
}

// unaryRun fills y = f(x) for activation act (and der = f'(x) if der is
// not nil; GELU only), splitting large tensors over threads.
func unaryRun[T Float](act int, y, der, x []T) {
	n := len(x)
	if serial(n) {
		unaryForwardDer(act, y, der, x)
		return
	}
	runPooled[T](&unaryJobs, unaryJob[T]{act: act, y: y, x: x, der: der, n: n}, (n+7)/8, parGrain/8, false)
}

// unaryBackward adds f'·dy into dx through the activation's backward
// kernel, or, when the forward saved f' (der), as dx += der·dy.
type unaryBackward[T Float] struct{}

// unaryAttrs are unary's node attributes.
type unaryAttrs struct{ act int }

func (unaryBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	act, n := attrsOf[unaryAttrs](nd).act, len(x.Data)
	var der []T
	if len(nd.saved) > 0 {
		der = nd.saved[0]
	}
	if serial(n) {
		unaryGradDer(act, x.Grad, y.Grad, x.Data, y.Data, der)
		return
	}
	job := unaryJob[T]{act: act, y: y.Data, x: x.Data, dx: x.Grad, dy: y.Grad, der: der, n: n, backward: true}
	runPooled[T](&unaryJobs, job, (n+7)/8, parGrain/8, false)
}

// unaryJob runs an activation's forward (or, with backward set, its
// gradient) on blocks [lo, hi) of eight elements (a pooled job: no
// closure). der is the saved derivative, or nil. Chunks of whole blocks
// keep every element on the same path (the eight-lane assembly or the Go
// tail of the float32 kernels) whatever the thread count.
type unaryJob[T Float] struct {
	act               int
	y, x, dx, dy, der []T
	n                 int
	backward          bool
}

var unaryJobs [2]sync.Pool // [0] float32, [1] float64

func (j *unaryJob[T]) run(lo, hi int) {
	lo, hi = 8*lo, min(8*hi, j.n)
	var der []T
	if j.der != nil {
		der = j.der[lo:hi]
	}
	if j.backward {
		unaryGradDer(j.act, j.dx[lo:hi], j.dy[lo:hi], j.x[lo:hi], j.y[lo:hi], der)
		return
	}
	unaryForwardDer(j.act, j.y[lo:hi], der, j.x[lo:hi])
}

// unaryForwardDer is unaryForward, which with der != nil (GELU only) also
// fills der with the derivative.
func unaryForwardDer[T Float](act int, y, der, x []T) {
	if der == nil {
		unaryForward(act, y, x)
		return
	}
	if x32, ok := any(x).([]float32); ok {
		geluDeriv32(any(y).([]float32), any(der).([]float32), x32)
		return
	}
	geluForward(y, x)
	const invSqrt2Pi = 0.3989422804014327 // 1/√(2π)
	der = der[:len(x)]
	for i, v := range x {
		f := float64(v)
		der[i] = T(0.5*(1+math.Erf(f/math.Sqrt2)) + f*invSqrt2Pi*math.Exp(-0.5*f*f))
	}
}

// unaryGradDer is unaryGrad, which with der != nil adds der·dy instead.
func unaryGradDer[T Float](act int, dx, dy, x, y, der []T) {
	if der == nil {
		unaryGrad(act, dx, dy, x, y)
		return
	}
	if dx32, ok := any(dx).([]float32); ok {
		mulAdd32(dx32, any(der).([]float32), any(dy).([]float32))
		return
	}
	dy, der = dy[:len(dx)], der[:len(dx)]
	for i, g := range dy {
		dx[i] += der[i] * g
	}
}

// unaryForward fills y = f(x) for activation act.
func unaryForward[T Float](act int, y, x []T) {
	switch act {
	case actGELU:
		geluForward(y, x)
	case actReLU:
		reluForward(y, x)
	case actSigmoid:
		sigmoidForward(y, x)
	case actTanh:
		tanhForward(y, x)
	case actSin:
		sinForward(y, x)
	case actCos:
		cosForward(y, x)
	case actExp:
		expForward(y, x)
	case actLog:
		logForward(y, x)
	default:
		panic(fmt.Sprintf("loope: unknown activation %d", act))
	}
}

// unaryGrad adds f'(x)·dy into dx for activation act.
func unaryGrad[T Float](act int, dx, dy, x, y []T) {
	switch act {
	case actGELU:
		panic("loope: GELU's backward reads the derivative its forward saved")
	case actReLU:
		reluBackward(dx, dy, x, y)
	case actSigmoid:
		sigmoidBackward(dx, dy, x, y)
	case actTanh:
		tanhBackward(dx, dy, x, y)
	case actSin:
		sinBackward(dx, dy, x, y)
	case actCos:
		cosBackward(dx, dy, x, y)
	case actExp:
		expBackward(dx, dy, x, y)
	case actLog:
		logBackward(dx, dy, x, y)
	default:
		panic(fmt.Sprintf("loope: unknown activation %d", act))
	}
}

// GELU returns the exact (erf) Gaussian error linear unit
// y = x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (Hendrycks & Gimpel, arXiv 1606.08415;
// PyTorch's default approximate='none'). x (...) → (...).
func (tp *Tape[T]) GELU(x *Tensor[T]) *Tensor[T] {
	return tp.unary(actGELU, x)
}

func geluForward[T Float](y, x []T) {
	if x32, ok := any(x).([]float32); ok {
		gelu32(any(y).([]float32), x32)
		return
	}
	for i, v := range x {
		f := float64(v)
		y[i] = T(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
	}
}

// ReLU returns max(x, 0). x (...) → (...).
func (tp *Tape[T]) ReLU(x *Tensor[T]) *Tensor[T] {
	return tp.unary(actReLU, x)
}

func reluForward[T Float](y, x []T) {
	for i, v := range x {
		y[i] = max(v, 0)
	}
}

// reluBackward: dx += dy where x > 0 (the subgradient 0 at x = 0, as PyTorch).
func reluBackward[T Float](dx, dy, x, _ []T) {
	for i, v := range x {
		if v > 0 {
			dx[i] += dy[i]
		}
	}
}

// Sigmoid returns 1/(1 + e^(−x)). x (...) → (...).
func (tp *Tape[T]) Sigmoid(x *Tensor[T]) *Tensor[T] {
	return tp.unary(actSigmoid, x)
}

func sigmoidForward[T Float](y, x []T) {
	for i, v := range x {
		y[i] = T(sigmoid(float64(v)))
	}
}

// sigmoidBackward: dx += y·(1 − y)·dy.
func sigmoidBackward[T Float](dx, dy, _, y []T) {
	for i, s := range y {
		dx[i] += s * (1 - s) * dy[i]
	}
}

// sigmoid is 1/(1+e^(−x)), written to avoid overflow of e^(−x) for x ≪ 0.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// Tanh returns tanh(x). x (...) → (...).
func (tp *Tape[T]) Tanh(x *Tensor[T]) *Tensor[T] {
	return tp.unary(actTanh, x)
}

func tanhForward[T Float](y, x []T) {
	for i, v := range x {
		y[i] = T(math.Tanh(float64(v)))
	}
}

// tanhBackward: dx += (1 − y²)·dy.
func tanhBackward[T Float](dx, dy, _, y []T) {
	for i, t := range y {
		dx[i] += (1 - t*t) * dy[i]
	}
}

// Sin returns sin(x). x (...) → (...).
func (tp *Tape[T]) Sin(x *Tensor[T]) *Tensor[T] {
	return tp.unary(actSin, x)
}

func sinForward[T Float](y, x []T) {
	for i, v := range x {
		y[i] = T(math.Sin(float64(v)))
	}
}

// sinBackward: dx += cos(x)·dy.
func sinBackward[T Float](dx, dy, x, _ []T) {
	for i, v := range x {
		dx[i] += T(math.Cos(float64(v))) * dy[i]
	}
}

// Cos returns cos(x). x (...) → (...).
func (tp *Tape[T]) Cos(x *Tensor[T]) *Tensor[T] {
	return tp.unary(actCos, x)
}

func cosForward[T Float](y, x []T) {
	for i, v := range x {
		y[i] = T(math.Cos(float64(v)))
	}
}

// cosBackward: dx −= sin(x)·dy.
func cosBackward[T Float](dx, dy, x, _ []T) {
	for i, v := range x {
		dx[i] -= T(math.Sin(float64(v))) * dy[i]
	}
}

// Exp returns e^x. x (...) → (...).
func (tp *Tape[T]) Exp(x *Tensor[T]) *Tensor[T] {
	return tp.unary(actExp, x)
}

func expForward[T Float](y, x []T) {
	if x32, ok := any(x).([]float32); ok {
		exp32s(any(y).([]float32), x32)
		return
	}
	for i, v := range x {
		y[i] = T(math.Exp(float64(v)))
	}
}

// expBackward: dx += y·dy.
func expBackward[T Float](dx, dy, _, y []T) {
	for i, e := range y {
		dx[i] += e * dy[i]
	}
}

// Log returns the natural logarithm ln x (NaN for x < 0, −Inf at 0).
// x (...) → (...).
func (tp *Tape[T]) Log(x *Tensor[T]) *Tensor[T] {
	return tp.unary(actLog, x)
}

func logForward[T Float](y, x []T) {
	for i, v := range x {
		y[i] = T(math.Log(float64(v)))
	}
}

// logBackward: dx += dy/x.
func logBackward[T Float](dx, dy, x, _ []T) {
	for i, v := range x {
		dx[i] += dy[i] / v
	}
}
