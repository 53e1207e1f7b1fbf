// This file holds SinCos, the interleaved sine/cosine feature map shared by
// the sinusoidal PEs whose arguments carry a gradient: LOOPE's
// E(X_G + X_C) (docs/paper.md §2.4) and the learnable Fourier features
// (docs/pe-zoo.md §9), forward beside backward.

package loope

import (
	"fmt"
	"math"
)

// SinCos returns the interleaved sine/cosine features of x (..., K):
// y (..., 2K) with y[..., 2i] = sin(x[..., i]) and y[..., 2i+1] = cos(x[..., i]),
// the layout of the LOOPE code and of Vaswani's table (docs/pe-zoo.md §5). Feeding
// it positions times frequencies, x = p·ω, gives the sinusoidal PE of p.
// The functions are evaluated in float64 for every T.
func (tp *Tape[T]) SinCos(x *Tensor[T]) *Tensor[T] {
	r := len(x.Shape)
	if r == 0 {
		panic(fmt.Sprintf("loope: SinCos: x %v must have at least one axis", x.Shape))
	}
	var buf [8]int // stack storage for the output shape (tp.out copies it)
	shape := append(buf[:0], x.Shape...)
	shape[r-1] *= 2
	out := tp.out(shape, x)
	y := out.Data
	for i, v := range x.Data {
		s, c := math.Sincos(float64(v))
		y[2*i], y[2*i+1] = T(s), T(c)
	}
	if out.Grad != nil {
		tp.record(sinCosBackward[T]{}, out, x)
	}
	return out
}

// sinCosBackward: dx_i += cos(x_i)·dy_{2i} − sin(x_i)·dy_{2i+1}, with
// sin and cos read back from the forward output y.
type sinCosBackward[T Float] struct{}

func (sinCosBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	for i := range x.Grad {
		x.Grad[i] += y.Data[2*i+1]*y.Grad[2*i] - y.Data[2*i]*y.Grad[2*i+1]
	}
}
