package loope

// Checks the Tape's pooling and resize ops (ops_pool.go, ops_resize.go)
// against the plain reference kernels of ref_cnn.go, in float64 (to
// refTol) and float32 (to fastTol), on 1 and 2 threads, including the
// Three-Cell and CNN geometries (max pool 3×3/2 pad 1 and pad 0, average
// pool 3×3/1 pad 1 with and without the padding, 14 → 75 px resize).

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// cnnRefCases are the pooling and resize calls compared with ref_cnn.go.
var cnnRefCases = []struct {
	name  string
	x     []int
	run   func(tp *Tape[float64], x *Tensor[float64]) *Tensor[float64]
	run32 func(tp *Tape[float32], x *Tensor[float32]) *Tensor[float32]
	ref   func(x, dout []float64, s []int) (out, dx []float64)
}{
	{"MaxPool2d/k3s2p1", []int{2, 3, 9, 8}, poolOp[float64](0, 3, 2, 1), poolOp[float32](0, 3, 2, 1), refMax(3, 2, 1)},
	{"MaxPool2d/k3s2p0", []int{1, 4, 17, 17}, poolOp[float64](0, 3, 2, 0), poolOp[float32](0, 3, 2, 0), refMax(3, 2, 0)},
	{"AvgPool2d/k3s1p1-countpad", []int{2, 3, 7, 6}, poolOp[float64](1, 3, 1, 1), poolOp[float32](1, 3, 1, 1), refAvg(3, 1, 1, true)},
	{"AvgPool2d/k3s1p1-nocountpad", []int{2, 3, 7, 6}, poolOp[float64](2, 3, 1, 1), poolOp[float32](2, 3, 1, 1), refAvg(3, 1, 1, false)},
	{"AvgPool2d/k2s2p1-nocountpad", []int{1, 2, 5, 6}, poolOp[float64](2, 2, 2, 1), poolOp[float32](2, 2, 2, 1), refAvg(2, 2, 1, false)},
	{"ResizeBilinear/14to75", []int{2, 3, 14, 14}, resizeOp[float64](75, 75), resizeOp[float32](75, 75), refResize(75, 75)},
	{"ResizeBilinear/down-7x9to4x5", []int{1, 2, 7, 9}, resizeOp[float64](4, 5), resizeOp[float32](4, 5), refResize(4, 5)},
}

// poolOp returns MaxPool2d (kind 0) or AvgPool2d counting (1) or not
// counting (2) the padding, with kernel k, stride s, padding p.
func poolOp[T Float](kind, k, s, p int) func(tp *Tape[T], x *Tensor[T]) *Tensor[T] {
	return func(tp *Tape[T], x *Tensor[T]) *Tensor[T] {
		if kind == 0 {
			return tp.MaxPool2d(x, k, s, p)
		}
		return tp.AvgPool2d(x, k, s, p, kind == 1)
	}
}

func resizeOp[T Float](h, w int) func(tp *Tape[T], x *Tensor[T]) *Tensor[T] {
	return func(tp *Tape[T], x *Tensor[T]) *Tensor[T] { return tp.ResizeBilinear(x, h, w) }
}

func refMax(k, s, p int) func(x, dout []float64, sh []int) ([]float64, []float64) {
	return func(x, dout []float64, sh []int) ([]float64, []float64) {
		g := RefPool{B: sh[0], C: sh[1], H: sh[2], W: sh[3], K: k, Stride: s, Pad: p}
		out, arg, dx := make([]float64, len(dout)), make([]int, len(dout)), make([]float64, len(x))
		RefMaxPool2dForward(out, arg, x, g)
		RefMaxPool2dBackward(dx, dout, arg)
		return out, dx
	}
}

func refAvg(k, s, p int, countPad bool) func(x, dout []float64, sh []int) ([]float64, []float64) {
	return func(x, dout []float64, sh []int) ([]float64, []float64) {
		g := RefPool{B: sh[0], C: sh[1], H: sh[2], W: sh[3], K: k, Stride: s, Pad: p}
		out, dx := make([]float64, len(dout)), make([]float64, len(x))
		RefAvgPool2dForward(out, x, g, countPad)
		RefAvgPool2dBackward(dx, dout, g, countPad)
		return out, dx
	}
}

func refResize(ho, wo int) func(x, dout []float64, sh []int) ([]float64, []float64) {
	return func(x, dout []float64, sh []int) ([]float64, []float64) {
		out, dx := make([]float64, len(dout)), make([]float64, len(x))
		RefResizeBilinearForward(out, x, sh[0]*sh[1], sh[2], sh[3], ho, wo)
		RefResizeBilinearBackward(dx, dout, sh[0]*sh[1], sh[2], sh[3], ho, wo)
		return out, dx
	}
}

func TestCNNOpsVsReference(t *testing.T) {
	for ci, c := range cnnRefCases {
		for _, th := range []int{1, 2} {
			name := fmt.Sprintf("%s/threads=%d", c.name, th)
			rng := rand.New(rand.NewPCG(uint64(ci), 23))
			x64 := NewParam[float64](c.x...).FillUniform(rng, -1, 1)
			x32 := NewParam[float32](c.x...)
			for i, v := range x64.Data { // the same values in both types
				x32.Data[i] = float32(v)
				x64.Data[i] = float64(x32.Data[i])
			}
			var y64 *Tensor[float64]
			var y32 *Tensor[float32]
			var dout []float64
			withThreads(th, func() {
				var tp Tape[float64]
				y64 = c.run(&tp, x64)
				dout = randOf[float64](rng, y64.Shape...).Data
				tp.backwardFrom(y64, dout)
				var tp32 Tape[float32]
				y32 = c.run32(&tp32, x32)
				tp32.backwardFrom(y32, narrow(dout))
			})
			want, wantDx := c.ref(wide(x32.Data), dout, c.x)
			checkClose(t, name+": float64 output", y64.Data, want, refTol)
			checkClose(t, name+": float64 dx", x64.Grad, wantDx, refTol)
			checkClose(t, name+": float32 output", wide(y32.Data), want, fastTol)
			checkClose(t, name+": float32 dx", wide(x32.Grad), wantDx, fastTol)
		}
	}
}
