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
		x, w, bias := randOf[float64](rng, tc.x...), randOf[float64](rng, tc.w...), randOf[float64](rng, tc.w[0])
		g, ok := convGeomOf(x, w, bias, tc.stride, tc.pad, tc.groups)
		if !ok || g.depthwise() {
			t.Fatalf("%s: bad geometry %+v", tc.name, g)
		}
		dy := randOf[float64](rng, g.b, g.o, g.ho, g.wo).Data
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
					if d := maxDiff(c.got, c.want); d > 1e-12 {
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

// refConv2d runs the reference layer's convolution (RefConv2dForward,
// RefConv2dBackward) on tensors: it returns y and, for dy, the gradients of
// Σ y⊙dy w.r.t. x, w, bias.
func refConv2d(x, w, bias *Tensor[float64], stride, pad, groups int, dy []float64) (y, dx, dw, db []float64) {
	g := RefConv{B: x.Shape[0], C: x.Shape[1], H: x.Shape[2], W: x.Shape[3], O: w.Shape[0], KH: w.Shape[2], KW: w.Shape[3],
		Stride: stride, Pad: pad, Groups: groups}
	y, dx, dw, db = make([]float64, len(dy)), make([]float64, x.Size()), make([]float64, w.Size()), make([]float64, g.O)
	RefConv2dForward(y, x.Data, w.Data, bias.Data, g)
	RefConv2dBackward(dx, dw, db, dy, x.Data, w.Data, g)
	return y, dx, dw, db
}

// conv2dRefCases cover the three uses (patchify, 5×5 pad 2, depthwise 3×3 pad 1)
// and general strides, paddings and groups. Fields: x shape, w shape, stride, pad, groups.
var conv2dRefCases = []struct {
	name                string
	x, w                []int
	stride, pad, groups int
}{
	{"patchify", []int{2, 3, 8, 12}, []int{5, 3, 4, 4}, 4, 0, 1},
	{"5x5p2", []int{3, 4, 6, 5}, []int{6, 4, 5, 5}, 1, 2, 1},
	{"depthwise3x3p1", []int{2, 6, 5, 7}, []int{6, 1, 3, 3}, 1, 1, 6},
	{"depthwise-s2-5x3p2", []int{1, 3, 7, 6}, []int{3, 1, 5, 3}, 2, 2, 3},
	{"s2p1-groups2", []int{2, 4, 7, 6}, []int{6, 2, 3, 3}, 2, 1, 2},
	{"s3p3-k2", []int{1, 2, 5, 4}, []int{3, 2, 2, 2}, 3, 3, 1},
	{"1x1", []int{2, 3, 3, 3}, []int{4, 3, 1, 1}, 1, 0, 1},
	// Maps narrower than the padding (LOOPE's 5×5 convs on a 1×1 or 1×2
	// grid; found by FuzzConfig): some kernel columns see only padding.
	{"5x5p2-on-1x1", []int{2, 3, 1, 1}, []int{4, 3, 5, 5}, 1, 2, 1},
	{"5x5p2-on-1x2", []int{1, 2, 1, 2}, []int{3, 2, 5, 5}, 1, 2, 1},
	{"depthwise3x3p1-on-1x1", []int{1, 2, 1, 1}, []int{2, 1, 3, 3}, 1, 1, 2},
}

func TestConv2dVsReference(t *testing.T) {
	for ci, tc := range conv2dRefCases {
		rng := rand.New(rand.NewPCG(uint64(ci), 5))
		x, w, bias := randOf[float64](rng, tc.x...), randOf[float64](rng, tc.w...), randOf[float64](rng, tc.w[0])
		x.Grad, w.Grad, bias.Grad = make([]float64, x.Size()), make([]float64, w.Size()), make([]float64, bias.Size())
		var tp Tape[float64]
		y := tp.Conv2d(x, w, bias, tc.stride, tc.pad, tc.groups)
		dy := randOf[float64](rng, y.Shape...).Data
		tp.backwardFrom(y, dy)
		ry, rdx, rdw, rdb := refConv2d(x, w, bias, tc.stride, tc.pad, tc.groups, dy)
		for _, c := range []struct {
			what      string
			got, want []float64
		}{{"y", y.Data, ry}, {"dx", x.Grad, rdx}, {"dw", w.Grad, rdw}, {"dbias", bias.Grad, rdb}} {
			if d := maxDiff(c.got, c.want); d > 1e-12 {
				t.Errorf("%s: %s max |diff| %g", tc.name, c.what, d)
			}
		}
	}
}

// TestConv2dDepthwiseTwin cross-checks the direct depthwise kernel against
// the general patch-row path on the same depthwise geometry.
func TestConv2dDepthwiseTwin(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	x, w, bias := randOf[float64](rng, 2, 5, 6, 7), randOf[float64](rng, 5, 1, 3, 3), randOf[float64](rng, 5)
	for _, sp := range [][2]int{{1, 1}, {2, 0}, {2, 2}} {
		g, ok := convGeomOf(x, w, bias, sp[0], sp[1], 5)
		if !ok || !g.depthwise() {
			t.Fatalf("bad geometry %+v", g)
		}
		direct, gen := make([]float64, g.b*g.o*g.ho*g.wo), make([]float64, g.b*g.o*g.ho*g.wo)
		conv2dDepthwiseForward(direct, x.Data, w.Data, bias.Data, &g)
		conv2dRowsForward(gen, x.Data, w.Data, bias.Data, make([]float64, g.nw*g.slot(false)), &g)
		if d := maxDiff(direct, gen); d > 1e-14 {
			t.Errorf("stride %d pad %d: depthwise vs patch rows max |diff| %g", sp[0], sp[1], d)
		}
	}
}

func BenchmarkConv2dPatchify(b *testing.B) {
	b.ReportAllocs()
	benchOp(b, [][]int{{8, 3, 224, 224}, {192, 3, 16, 16}, {192}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.Conv2d(in[0], in[1], in[2], 16, 0, 1)
	})
}

func BenchmarkConv2dDepthwise3x3(b *testing.B) {
	b.ReportAllocs()
	benchOp(b, [][]int{{8, 192, 14, 14}, {192, 1, 3, 3}, {192}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.Conv2d(in[0], in[1], in[2], 1, 1, 192)
	})
}

func BenchmarkConv2d5x5(b *testing.B) {
	b.ReportAllocs()
	benchOp(b, [][]int{{8, 16, 14, 14}, {16, 16, 5, 5}, {16}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.Conv2d(in[0], in[1], in[2], 1, 2, 1)
	})
}

// conv2dSmallCases are the Conv2d calls of one `small` LOOPE training step.
// xGrad says whether the input needs a gradient: the first LOOPE conv and the
// patch embedding read the images (and constant coordinate maps) only.
var conv2dSmallCases = []struct {
	name                string
	x, w                []int
	stride, pad, groups int
	xGrad               bool
}{
	{"loope1-5to32-k2s2", []int{64, 5, 28, 28}, []int{32, 5, 2, 2}, 2, 0, 1, false},
	{"loope2-32to16-k5p2", []int{64, 32, 14, 14}, []int{16, 32, 5, 5}, 1, 2, 1, true},
	{"loope3-16to8-k5p2", []int{64, 16, 14, 14}, []int{8, 16, 5, 5}, 1, 2, 1, true},
	{"loope4-8to4-k5p2", []int{64, 8, 14, 14}, []int{4, 8, 5, 5}, 1, 2, 1, true},
	{"loope5-4to1-k5p2", []int{64, 4, 14, 14}, []int{1, 4, 5, 5}, 1, 2, 1, true},
	{"patch-3to64-k2s2", []int{64, 3, 28, 28}, []int{64, 3, 2, 2}, 2, 0, 1, false},
}

func BenchmarkConv2dSmall(b *testing.B) {
	for _, c := range conv2dSmallCases {
		b.Run("conv="+c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			x := New[float32](c.x...).FillUniform(rng, -1, 1)
			if c.xGrad {
				x = NewParam[float32](c.x...).FillUniform(rng, -1, 1)
			}
			w := NewParam[float32](c.w...).FillUniform(rng, -1, 1)
			bias := NewParam[float32](c.w[0]).FillUniform(rng, -1, 1)
			var tp Tape[float32]
			var seed []float32
			step := func() {
				tp.Reset()
				out := tp.Conv2d(x, w, bias, c.stride, c.pad, c.groups)
				if seed == nil {
					seed = New[float32](out.Shape...).FillUniform(rng, -1, 1).Data
				}
				tp.backwardFrom(out, seed)
			}
			step() // warm-up: the tape's arena reaches its steady state
			b.ReportAllocs()
			cpu0 := processCPUTime()
			for b.Loop() {
				step()
			}
			if cpu := processCPUTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			}
		})
	}
}

// TestConv2dHWVsReference: Conv2dHW with padding (padH, padW) against the
// direct convolution (refConv2d, no padding) of x zero-padded by hand,
// whose dx, cropped to x, is x's gradient. Covers Inception's 1×7 / 7×1
// pairs, stride 2, and kernels that take the transposed-convolution and
// the col2im dx.
func TestConv2dHWVsReference(t *testing.T) {
	for ci, tc := range []struct {
		name               string
		x, w               []int
		stride, ph, pw, gr int
	}{
		{"1x7-pad03", []int{2, 4, 5, 9}, []int{6, 4, 1, 7}, 1, 0, 3, 1},
		{"7x1-pad30", []int{2, 4, 9, 5}, []int{6, 4, 7, 1}, 1, 3, 0, 1},
		{"1x3-pad01-s2", []int{1, 3, 6, 7}, []int{4, 3, 1, 3}, 2, 0, 1, 1},
		{"3x3-pad21-groups2", []int{2, 4, 4, 5}, []int{4, 2, 3, 3}, 1, 2, 1, 2},
		{"3x1-pad10-wide", []int{1, 3, 4, 4}, []int{40, 3, 3, 1}, 1, 1, 0, 1},
	} {
		rng := rand.New(rand.NewPCG(uint64(ci), 41))
		x, w, bias := randOf[float64](rng, tc.x...), randOf[float64](rng, tc.w...), randOf[float64](rng, tc.w[0])
		x.Grad, w.Grad, bias.Grad = make([]float64, x.Size()), make([]float64, w.Size()), make([]float64, bias.Size())
		var tp Tape[float64]
		y := tp.Conv2dHW(x, w, bias, tc.stride, tc.ph, tc.pw, tc.gr)
		dy := randOf[float64](rng, y.Shape...).Data
		tp.backwardFrom(y, dy)
		b, c, h, wd := tc.x[0], tc.x[1], tc.x[2], tc.x[3]
		hp, wp := h+2*tc.ph, wd+2*tc.pw
		xp := New[float64](b, c, hp, wp)
		for i := range b * c {
			for r := range h {
				copy(xp.Data[(i*hp+r+tc.ph)*wp+tc.pw:], x.Data[(i*h+r)*wd:(i*h+r+1)*wd])
			}
		}
		ry, rdxp, rdw, rdb := refConv2d(xp, w, bias, tc.stride, 0, tc.gr, dy)
		rdx := make([]float64, x.Size())
		for i := range b * c {
			for r := range h {
				copy(rdx[(i*h+r)*wd:(i*h+r+1)*wd], rdxp[(i*hp+r+tc.ph)*wp+tc.pw:])
			}
		}
		for _, cmp := range []struct {
			what      string
			got, want []float64
		}{{"y", y.Data, ry}, {"dx", x.Grad, rdx}, {"dw", w.Grad, rdw}, {"dbias", bias.Grad, rdb}} {
			if d := maxDiff(cmp.got, cmp.want); d > 1e-12 {
				t.Errorf("%s: %s max |diff| %g", tc.name, cmp.what, d)
			}
		}
	}
}
