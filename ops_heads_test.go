package loope

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestHeadsMatchPermute checks QKVHeads and MergeHeads against the
// Reshape/Permute/Split chain they replace (timm's view of the same copy),
// values and gradients, bit for bit, on a small shape (serial) and a large
// one (split over threads).
func TestHeadsMatchPermute(t *testing.T) {
	for _, sz := range []struct{ b, n, h, dh int }{{2, 3, 2, 4}, {8, 65, 4, 32}} {
		b, n, h, dh := sz.b, sz.n, sz.h, sz.dh
		d := h * dh
		rng := rand.New(rand.NewPCG(7, uint64(n)))
		x := NewParam[float32](b, n, 3*d).FillNormal(rng, 0, 1)
		seed := New[float32](4, b, h, n, dh).FillNormal(rng, 0, 1)
		run := func(fused bool) (vals, grad []float32) {
			x.ZeroGrad()
			var tp Tape[float32]
			var q, k, v *Tensor[float32]
			if fused {
				q, k, v = tp.QKVHeads(x, h)
			} else {
				p := tp.Split(tp.Permute(tp.Reshape(x, b, n, 3, h, dh), 2, 0, 3, 1, 4), 0, 1, 1, 1)
				q, k, v = tp.Reshape(p[0], b, h, n, dh), tp.Reshape(p[1], b, h, n, dh), tp.Reshape(p[2], b, h, n, dh)
			}
			// Mix the heads through MergeHeads (or its Permute) so both ops are covered.
			var m *Tensor[float32]
			if fused {
				m = tp.MergeHeads(tp.Mul(q, k))
			} else {
				m = tp.Reshape(tp.Permute(tp.Mul(q, k), 0, 2, 1, 3), b, n, d)
			}
			r := func(a *Tensor[float32]) *Tensor[float32] { return tp.Reshape(a, 1, b, h, n, dh) }
			out := tp.Concat(0, r(q), r(k), r(v), r(m))
			tp.backwardFrom(out, seed.Data)
			return slices.Clone(out.Data), slices.Clone(x.Grad)
		}
		fv, fg := run(true)
		pv, pg := run(false)
		if !slices.Equal(fv, pv) || !slices.Equal(fg, pg) {
			t.Errorf("size %v: QKVHeads/MergeHeads differ from the Permute path (values equal %v, grads equal %v)",
				sz, slices.Equal(fv, pv), slices.Equal(fg, pg))
		}
	}
}
