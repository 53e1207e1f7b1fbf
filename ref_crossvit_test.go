package loope

import (
	"math/rand/v2"
	"testing"
)

// TestResizeBicubicVsReference checks ResizeBicubic, output and input
// gradient, against its dense float64 twin of ref_crossvit.go, down
// (CrossViT's 240 → 224 in miniature) and up, in float64 and float32.
func TestResizeBicubicVsReference(t *testing.T) {
	t.Run("float64", func(t *testing.T) { checkResize[float64](t, 1e-12) })
	t.Run("float32", func(t *testing.T) { checkResize[float32](t, fastTol) })
}

func checkResize[T Float](t *testing.T, tol float64) {
	rng := rand.New(rand.NewPCG(5, 17))
	for _, s := range [][4]int{{15, 15, 14, 14}, {14, 12, 12, 10}, {4, 5, 9, 7}} {
		h, w, oh, ow := s[0], s[1], s[2], s[3]
		x := NewParam[T](2, 3, h, w).FillUniform(rng, -1, 1)
		var tp Tape[T]
		out := tp.ResizeBicubic(x, oh, ow)
		dout := New[T](out.Shape...).FillUniform(rng, -1, 1).Data
		tp.backwardFrom(out, dout)
		want, dx := make([]float64, 6*oh*ow), make([]float64, 6*h*w)
		RefResizeBicubicForward(want, wide(x.Data), 6, h, w, oh, ow)
		RefResizeBicubicBackward(dx, wide(dout), 6, h, w, oh, ow)
		checkClose(t, "ResizeBicubic output", wide(out.Data), want, tol)
		checkClose(t, "ResizeBicubic grad", wide(x.Grad), dx, tol)
	}
}
