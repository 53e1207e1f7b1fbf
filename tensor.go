// This file holds the dense tensor type shared by every op: row-major storage,
// a shape, and an optional gradient buffer of the same length.

package loope

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Float is the element type of a tensor: float32 for training and
// benchmarks, float64 for gradient checks, goldens and -f64 fixtures.
// Every op is written once against Float.
type Float interface{ ~float32 | ~float64 }

// Tensor is a dense row-major n-dimensional array.
//
// Grad is nil for tensors that take no part in backpropagation (inputs,
// buffers, anything made in no-grad mode). For parameters it has the length
// of Data, and Backward accumulates into it. An op output that depends on a
// parameter has a non-nil Grad too, but, as in PyTorch, its storage exists
// only while the backward pass needs it (see Tape.newTensor): after Backward
// only the loss (and leaves from Tape.New) keep a readable Grad.
type Tensor[T Float] struct {
	Shape []int // sizes, outermost first; product = len(Data)
	Data  []T   // row-major values
	Grad  []T   // d loss / d Data, or nil
}

// New returns a zeroed tensor of the given shape without a gradient.
func New[T Float](shape ...int) *Tensor[T] {
	return &Tensor[T]{Shape: append([]int(nil), shape...), Data: make([]T, numel("New", shape))}
}

// NewParam returns a zeroed tensor of the given shape with a zeroed gradient:
// a leaf that Backward accumulates into.
func NewParam[T Float](shape ...int) *Tensor[T] {
	t := New[T](shape...)
	t.Grad = make([]T, len(t.Data))
	return t
}

// FromData wraps data (not copied) as a tensor of the given shape. It panics
// if len(data) does not match the shape.
func FromData[T Float](data []T, shape ...int) *Tensor[T] {
	if n := numel("FromData", shape); n != len(data) {
		panic(fmt.Sprintf("loope: FromData: %d values for shape %v", len(data), shape))
	}
	return &Tensor[T]{Shape: append([]int(nil), shape...), Data: data}
}

// Size returns the number of elements.
func (t *Tensor[T]) Size() int { return len(t.Data) }

// Dim returns the size of axis i; negative i counts from the end.
func (t *Tensor[T]) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	if i < 0 || i >= len(t.Shape) {
		panic(fmt.Sprintf("loope: Dim: axis %d out of range for shape %v", i, t.Shape))
	}
	return t.Shape[i]
}

// RequiresGrad reports whether Backward accumulates into t.
func (t *Tensor[T]) RequiresGrad() bool { return t.Grad != nil }

// ZeroGrad clears t's gradient, if it has one.
func (t *Tensor[T]) ZeroGrad() { clear(t.Grad) }

// At returns the element at the given index (one int per axis).
func (t *Tensor[T]) At(idx ...int) T { return t.Data[t.offset("At", idx)] }

// Set stores v at the given index (one int per axis).
func (t *Tensor[T]) Set(v T, idx ...int) { t.Data[t.offset("Set", idx)] = v }

func (t *Tensor[T]) offset(op string, idx []int) int {
	if len(idx) != len(t.Shape) {
		panic(fmt.Sprintf("loope: %s: %d indices for shape %v", op, len(idx), t.Shape))
	}
	off := 0
	for i, v := range idx {
		if v < 0 || v >= t.Shape[i] {
			panic(fmt.Sprintf("loope: %s: index %v out of range for shape %v", op, idx, t.Shape))
		}
		off = off*t.Shape[i] + v
	}
	return off
}

// Clone returns a deep copy of t (data and gradient).
func (t *Tensor[T]) Clone() *Tensor[T] {
	c := &Tensor[T]{Shape: append([]int(nil), t.Shape...), Data: append([]T(nil), t.Data...)}
	if t.Grad != nil {
		c.Grad = append([]T(nil), t.Grad...)
	}
	return c
}

// String returns a short description: shape and, for small tensors, values.
func (t *Tensor[T]) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Tensor%v", t.Shape)
	if len(t.Data) <= 16 {
		fmt.Fprintf(&b, "%v", t.Data)
	}
	return b.String()
}

// FillNormal fills t.Data with N(mean, std²) draws from rng.
func (t *Tensor[T]) FillNormal(rng *rand.Rand, mean, std float64) *Tensor[T] {
	for i := range t.Data {
		t.Data[i] = T(mean + std*rng.NormFloat64())
	}
	return t
}

// FillUniform fills t.Data with U(lo, hi) draws from rng.
func (t *Tensor[T]) FillUniform(rng *rand.Rand, lo, hi float64) *Tensor[T] {
	for i := range t.Data {
		t.Data[i] = T(lo + (hi-lo)*rng.Float64())
	}
	return t
}

// numel returns the product of shape, panicking on a negative size.
func numel(op string, shape []int) int {
	n := 1
	for _, s := range shape {
		if s < 0 {
			// Print a copy so shape does not escape: callers may pass
			// stack-built shapes without allocating.
			panic(fmt.Sprintf("loope: %s: negative size in shape %v", op, append([]int(nil), shape...)))
		}
		n *= s
	}
	return n
}

// sameShape reports whether a and b have identical shapes.
func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// mustSameShape panics, naming op, unless a and b have identical shapes.
func mustSameShape[T Float](op string, a, b *Tensor[T]) {
	if !sameShape(a.Shape, b.Shape) {
		panic(fmt.Sprintf("loope: %s: shape mismatch %v vs %v", op, a.Shape, b.Shape))
	}
}
