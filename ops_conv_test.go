package loope

// Tests of the patch-row path of Conv2d (ops_conv.go) against the direct
// 7-loop convolution refConv2d, across chunk boundaries and thread counts.

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// conv2dRowsCases: odd sizes, strides 1 and 2, paddings 0 to 2, groups 1
// and 2, batches 1 to 9. Stride 1 with a square kernel and pad < KH takes
// the transposed-convolution dx; the others (stride 2, a non-square
// kernel, pad ≥ KH) take col2im; O/groups ≥ convWideO takes the
// per-image forward.
var conv2dRowsCases = []struct {
	name                string
	x, w                []int
	stride, pad, groups int
}{
	{"k3s1p1", []int{5, 3, 7, 5}, []int{4, 3, 3, 3}, 1, 1, 1},
	{"k5s1p2-narrowing", []int{9, 6, 7, 7}, []int{3, 6, 5, 5}, 1, 2, 1},
	{"k5s1p2-to1", []int{3, 4, 5, 6}, []int{1, 4, 5, 5}, 1, 2, 1},
	{"k3s1p0-groups2", []int{4, 4, 6, 7}, []int{6, 2, 3, 3}, 1, 0, 2},
	{"k3s2p1", []int{7, 3, 9, 7}, []int{5, 3, 3, 3}, 2, 1, 1},
	{"k2s2p0-patchify", []int{9, 5, 6, 8}, []int{7, 5, 2, 2}, 2, 0, 1},
	{"k3s2p2-groups2", []int{2, 4, 5, 7}, []int{4, 2, 3, 3}, 2, 2, 2},
	{"k2x3s1p1-nonsquare", []int{3, 2, 5, 5}, []int{3, 2, 2, 3}, 1, 1, 1},
	{"k2s1p2-pad-ge-k", []int{1, 3, 4, 3}, []int{2, 3, 2, 2}, 1, 2, 1},
	{"wide-O-groups2", []int{3, 4, 5, 5}, []int{64, 2, 3, 3}, 1, 1, 2},
	{"wide-O-s2", []int{5, 3, 6, 6}, []int{32, 3, 2, 2}, 2, 0, 1},
}

// withConvChunkElems runs fn with convChunkElems set to n.
func withConvChunkElems(n int, fn func()) {
	old := convChunkElems
	convChunkElems = n
	defer func() { convChunkElems = old }()
	fn()
}

// TestConv2dRowsVsReference: output and all gradients against refConv2d
// (float64), with one image per chunk, two or three per chunk, and the
// default chunking.
func TestConv2dRowsVsReference(t *testing.T) {
	for ci, tc := range conv2dRowsCases {
		rng := rand.New(rand.NewPCG(uint64(ci), 11))
		x, w, bias := opsbRand[float64](rng, tc.x...), opsbRand[float64](rng, tc.w...), opsbRand[float64](rng, tc.w[0])
		g, ok := convGeomOf(x, w, bias, tc.stride, tc.pad, tc.groups)
		if !ok || g.depthwise() {
			t.Fatalf("%s: bad geometry %+v", tc.name, g)
		}
		dy := opsbRand[float64](rng, g.b, g.o, g.ho, g.wo).Data
		ry, rdx, rdw, rdb := refConv2d(x, w, bias, tc.stride, tc.pad, tc.groups, dy)
		k, l := g.k(), g.ho*g.wo
		for _, elems := range []int{1, 2 * l * k, 3 * l * k, 1 << 16} {
			withConvChunkElems(elems, func() {
				x.Grad, w.Grad, bias.Grad = make([]float64, x.Size()), make([]float64, w.Size()), make([]float64, bias.Size())
				var tp Tape[float64]
				y := tp.Conv2d(x, w, bias, tc.stride, tc.pad, tc.groups)
				tp.backwardFrom(y, dy)
				for _, c := range []struct {
					what      string
					got, want []float64
				}{{"y", y.Data, ry}, {"dx", x.Grad, rdx}, {"dw", w.Grad, rdw}, {"dbias", bias.Grad, rdb}} {
					if d := opsbMaxDiff(c.got, c.want); d > 1e-12 {
						t.Errorf("%s, chunk elems %d: %s max |diff| %g", tc.name, elems, c.what, d)
					}
				}
			})
		}
	}
}

// TestConv2dRowsThreads: float32 output and gradients are bit-identical for
// 1, 2 and 3 threads, with chunks of two images (so several chunks and a
// partial last one).
func TestConv2dRowsThreads(t *testing.T) {
	defer SetThreads(0)
	for ci, tc := range conv2dRowsCases {
		var first [][]float32
		for _, threads := range []int{1, 2, 3} {
			SetThreads(threads)
			rng := rand.New(rand.NewPCG(uint64(ci), 12))
			x := NewParam[float32](tc.x...).FillUniform(rng, -1, 1)
			w := NewParam[float32](tc.w...).FillUniform(rng, -1, 1)
			bias := NewParam[float32](tc.w[0]).FillUniform(rng, -1, 1)
			g, _ := convGeomOf(x, w, bias, tc.stride, tc.pad, tc.groups)
			dy := New[float32](g.b, g.o, g.ho, g.wo).FillUniform(rng, -1, 1).Data
			var got [][]float32
			withConvChunkElems(2*g.ho*g.wo*g.k(), func() {
				var tp Tape[float32]
				y := tp.Conv2d(x, w, bias, tc.stride, tc.pad, tc.groups)
				tp.backwardFrom(y, dy)
				got = [][]float32{slices.Clone(y.Data), x.Grad, w.Grad, bias.Grad}
			})
			if first == nil {
				first = got
				continue
			}
			for i, what := range []string{"y", "dx", "dw", "dbias"} {
				if !slices.Equal(got[i], first[i]) {
					t.Errorf("%s: %s differs between 1 and %d threads", tc.name, what, threads)
				}
			}
		}
	}
}

// TestConv2dChunking: the chunk size depends on the geometry only, and a
// chunk's patch rows stay within convChunkElems unless one image exceeds it.
func TestConv2dChunking(t *testing.T) {
	defer SetThreads(0)
	for _, c := range conv2dSmallCases {
		x, w := New[float32](c.x...), New[float32](c.w...)
		var cbs []int
		for _, threads := range []int{1, 2, 5} {
			SetThreads(threads)
			g, _ := convGeomOf(x, w, nil, c.stride, c.pad, c.groups)
			cbs = append(cbs, g.cb)
			if per := g.ho * g.wo * g.k(); g.cb > 1 && g.cb*per > convChunkElems {
				t.Errorf("%s: %d images of %d patch elements exceed %d", c.name, g.cb, per, convChunkElems)
			}
		}
		if cbs[1] != cbs[0] || cbs[2] != cbs[0] {
			t.Errorf("%s: images per chunk %v vary with the thread count", c.name, cbs)
		}
	}
}
