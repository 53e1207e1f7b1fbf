package loope

import (
	"math/rand/v2"
	"testing"
)

// TestCaitOpsVsReference checks the CaiT kernels HeadMix and LayerScale,
// output and every input gradient, against their float64 twins of
// ref_cait.go: to rounding in float64, within the float32 golden bound in
// float32.
func TestCaitOpsVsReference(t *testing.T) {
	t.Run("float64", func(t *testing.T) { checkCaitOps[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { checkCaitOps[float32](t, fastTol) })
}

func checkCaitOps[T Float](t *testing.T, tol float64) {
	const b, h, n, d = 2, 4, 7, 6
	rng := rand.New(rand.NewPCG(3, 17))
	run := func(name string, shapes [][]int, fast func(tp *Tape[T], in []*Tensor[T]) *Tensor[T],
		ref func(in [][]float64, dout []float64) ([]float64, [][]float64)) {
		in := make([]*Tensor[T], len(shapes))
		in64 := make([][]float64, len(shapes))
		for i, s := range shapes {
			in[i] = NewParam[T](s...).FillUniform(rng, -1, 1)
			in64[i] = wide(in[i].Data)
		}
		var tp Tape[T]
		out := fast(&tp, in)
		dout := New[T](out.Shape...).FillUniform(rng, -1, 1).Data
		tp.backwardFrom(out, dout)
		want, grads := ref(in64, wide(dout))
		checkClose(t, name+": output", wide(out.Data), want, tol)
		for i, g := range grads {
			checkClose(t, name+": grad of input "+string(rune('0'+i)), wide(in[i].Grad), g, tol)
		}
	}
	run("HeadMix", [][]int{{b, h, n, n}, {h, h}, {h}},
		func(tp *Tape[T], in []*Tensor[T]) *Tensor[T] { return tp.HeadMix(in[0], in[1], in[2]) },
		func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			out := make([]float64, len(in[0]))
			dx, dw, db := make([]float64, len(in[0])), make([]float64, h*h), make([]float64, h)
			RefHeadMixForward(out, in[0], in[1], in[2], b, h, n*n)
			RefHeadMixBackward(dx, dw, db, dout, in[0], in[1], b, h, n*n)
			return out, [][]float64{dx, dw, db}
		})
	run("LayerScale", [][]int{{b, n, d}, {b, n, d}, {d}},
		func(tp *Tape[T], in []*Tensor[T]) *Tensor[T] { return tp.LayerScale(in[0], in[1], in[2]) },
		func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			out := make([]float64, len(in[0]))
			dx, dy, dg := make([]float64, len(in[0])), make([]float64, len(in[0])), make([]float64, d)
			RefLayerScaleForward(out, in[0], in[1], in[2], b*n, d)
			RefLayerScaleBackward(dx, dy, dg, dout, in[1], in[2], b*n, d)
			return out, [][]float64{dx, dy, dg}
		})
}
