package loope

// Tests for ops_norm.go, ops_attention.go and ops_conv.go beyond the
// gradient-check rows: forward values against naive reference loops written
// here, float32 against float64, and bit-identical results for any thread
// count.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// opsbRand returns a tensor of the given shape with U(-1, 1) values from rng.
func opsbRand[T Float](rng *rand.Rand, shape ...int) *Tensor[T] {
	return New[T](shape...).FillUniform(rng, -1, 1)
}

// opsbMaxDiff returns max_i |a_i − b_i|, panicking on a length mismatch.
func opsbMaxDiff[T, U Float](a []T, b []U) float64 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("opsbMaxDiff: lengths %d, %d", len(a), len(b)))
	}
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

func TestLayerNormForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	x, g, b := opsbRand[float64](rng, 3, 4, 7), opsbRand[float64](rng, 7), opsbRand[float64](rng, 7)
	for i := range x.Data[:7] { // a row with a large offset: the two-pass variance must not cancel
		x.Data[i] = 1e4 + x.Data[i]
	}
	var tp Tape[float64]
	y := tp.LayerNorm(x, g, b, 1e-6)
	want := make([]float64, x.Size())
	for r := range 12 {
		row := x.Data[r*7 : (r+1)*7]
		mu := 0.0
		for _, v := range row {
			mu += v / 7
		}
		vr := 0.0
		for _, v := range row {
			vr += (v - mu) * (v - mu) / 7
		}
		for j, v := range row {
			want[r*7+j] = (v-mu)/math.Sqrt(vr+1e-6)*g.Data[j] + b.Data[j]
		}
	}
	if d := opsbMaxDiff(y.Data, want); d > 1e-9 {
		t.Errorf("LayerNorm vs reference: max |diff| %g", d)
	}
}

func TestBatchNorm2dForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 1))
	const B, C, H, W, mom, eps = 3, 2, 2, 3, 0.1, 1e-5
	x, g, b := opsbRand[float64](rng, B, C, H, W), opsbRand[float64](rng, C), opsbRand[float64](rng, C)
	rm0, rv0 := []float64{0.3, -0.1}, []float64{0.7, 1.4}
	for _, training := range []bool{true, false} {
		rm, rv := FromData(append([]float64(nil), rm0...), C), FromData(append([]float64(nil), rv0...), C)
		var tp Tape[float64]
		y := tp.BatchNorm2d(x, g, b, rm, rv, mom, eps, training)
		for c := range C {
			var vals []float64
			for bi := range B {
				vals = append(vals, x.Data[(bi*C+c)*H*W:(bi*C+c+1)*H*W]...)
			}
			n := float64(len(vals))
			mu, vb := 0.0, 0.0
			for _, v := range vals {
				mu += v / n
			}
			for _, v := range vals {
				vb += (v - mu) * (v - mu) / n
			}
			wantRM, wantRV := (1-mom)*rm0[c]+mom*mu, (1-mom)*rv0[c]+mom*vb*n/(n-1)
			useM, useV := mu, vb
			if !training {
				wantRM, wantRV, useM, useV = rm0[c], rv0[c], rm0[c], rv0[c]
			}
			if math.Abs(rm.Data[c]-wantRM) > 1e-12 || math.Abs(rv.Data[c]-wantRV) > 1e-12 {
				t.Errorf("training=%v channel %d: running stats %g, %g, want %g, %g", training, c, rm.Data[c], rv.Data[c], wantRM, wantRV)
			}
			for bi := range B {
				for i := range H * W {
					o := (bi*C+c)*H*W + i
					want := (x.Data[o]-useM)/math.Sqrt(useV+eps)*g.Data[c] + b.Data[c]
					if math.Abs(y.Data[o]-want) > 1e-12 {
						t.Fatalf("training=%v elem %d: %g, want %g", training, o, y.Data[o], want)
					}
				}
			}
		}
	}
}

func TestAttentionForward(t *testing.T) {
	const B, H, N, Dh, scale = 2, 3, 5, 4, 0.5
	rng := rand.New(rand.NewPCG(3, 1))
	q, k, v := opsbRand[float64](rng, B, H, N, Dh), opsbRand[float64](rng, B, H, N, Dh), opsbRand[float64](rng, B, H, N, Dh)
	for _, bshape := range [][]int{nil, {H, N, N}, {B, H, N, N}} {
		var bias *Tensor[float64]
		if bshape != nil {
			bias = opsbRand[float64](rng, bshape...)
		}
		// Unfused: (q·scale)·kᵀ with BatchMatMul, bias, softmax, ·v.
		var tp Tape[float64]
		qs := q.Clone()
		for i := range qs.Data {
			qs.Data[i] *= scale
		}
		s := tp.BatchMatMul(qs, k, false, true)
		for i := range s.Data {
			if bias != nil {
				s.Data[i] += bias.Data[i%bias.Size()]
			}
		}
		RefSoftmax(s.Data, s.Data, N)
		want := tp.BatchMatMul(s, v, false, false)
		got := tp.Attention(q, k, v, bias, scale)
		if d := opsbMaxDiff(got.Data, want.Data); d > 1e-14 {
			t.Errorf("bias %v: fused vs unfused max |diff| %g", bshape, d)
		}
	}
}

func TestRotateForward(t *testing.T) {
	const B, H, N, Dh = 2, 3, 5, 6
	rng := rand.New(rand.NewPCG(4, 1))
	x := opsbRand[float64](rng, B, H, N, Dh)
	for _, hc := range []int{1, H} {
		for _, skip := range []int{0, 1} {
			nr := N - skip
			cos, sin := New[float64](hc, nr, Dh/2), New[float64](hc, nr, Dh/2)
			for i := range cos.Data {
				phi := 4 * rng.Float64()
				cos.Data[i], sin.Data[i] = math.Cos(phi), math.Sin(phi)
			}
			var tp Tape[float64]
			y := tp.Rotate(x, cos, sin, skip)
			for bi := range B {
				for h := range H {
					for n := range N {
						for j := range Dh / 2 {
							a, b := x.At(bi, h, n, 2*j), x.At(bi, h, n, 2*j+1)
							wa, wb := a, b
							if n >= skip {
								c, s := cos.At(h%hc, n-skip, j), sin.At(h%hc, n-skip, j)
								wa, wb = a*c-b*s, a*s+b*c
							}
							ga, gb := y.At(bi, h, n, 2*j), y.At(bi, h, n, 2*j+1)
							if math.Abs(ga-wa) > 1e-15 || math.Abs(gb-wb) > 1e-15 {
								t.Fatalf("Hc=%d skip=%d (%d,%d,%d,%d): (%g, %g), want (%g, %g)", hc, skip, bi, h, n, j, ga, gb, wa, wb)
							}
							// A rotation keeps the pair's length.
							if math.Abs(math.Hypot(ga, gb)-math.Hypot(a, b)) > 1e-14 {
								t.Fatalf("Hc=%d skip=%d: rotation changed a pair's norm", hc, skip)
							}
						}
					}
				}
			}
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
		x, w, bias := opsbRand[float64](rng, tc.x...), opsbRand[float64](rng, tc.w...), opsbRand[float64](rng, tc.w[0])
		x.Grad, w.Grad, bias.Grad = make([]float64, x.Size()), make([]float64, w.Size()), make([]float64, bias.Size())
		var tp Tape[float64]
		y := tp.Conv2d(x, w, bias, tc.stride, tc.pad, tc.groups)
		dy := opsbRand[float64](rng, y.Shape...).Data
		tp.backwardFrom(y, dy)
		ry, rdx, rdw, rdb := refConv2d(x, w, bias, tc.stride, tc.pad, tc.groups, dy)
		for _, c := range []struct {
			what      string
			got, want []float64
		}{{"y", y.Data, ry}, {"dx", x.Grad, rdx}, {"dw", w.Grad, rdw}, {"dbias", bias.Grad, rdb}} {
			if d := opsbMaxDiff(c.got, c.want); d > 1e-12 {
				t.Errorf("%s: %s max |diff| %g", tc.name, c.what, d)
			}
		}
	}
}

// TestConv2dDepthwiseTwin cross-checks the direct depthwise kernel against
// the general patch-row path on the same depthwise geometry.
func TestConv2dDepthwiseTwin(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	x, w, bias := opsbRand[float64](rng, 2, 5, 6, 7), opsbRand[float64](rng, 5, 1, 3, 3), opsbRand[float64](rng, 5)
	for _, sp := range [][2]int{{1, 1}, {2, 0}, {2, 2}} {
		g, ok := convGeomOf(x, w, bias, sp[0], sp[1], 5)
		if !ok || !g.depthwise() {
			t.Fatalf("bad geometry %+v", g)
		}
		direct, gen := make([]float64, g.b*g.o*g.ho*g.wo), make([]float64, g.b*g.o*g.ho*g.wo)
		conv2dDepthwiseForward(direct, x.Data, w.Data, bias.Data, &g)
		conv2dRowsForward(gen, x.Data, w.Data, bias.Data, make([]float64, g.nw*g.slot(false)), &g)
		if d := opsbMaxDiff(direct, gen); d > 1e-14 {
			t.Errorf("stride %d pad %d: depthwise vs patch rows max |diff| %g", sp[0], sp[1], d)
		}
	}
}

// opsbCase names an op call on fresh inputs of the given shapes, for the
// precision and thread-count tests below.
type opsbCase struct {
	name   string
	shapes [][]int
}

var opsbCases = []opsbCase{
	{"LayerNorm", [][]int{{256, 64}, {64}, {64}}},
	{"BatchNorm2d/train", [][]int{{4, 8, 16, 16}, {8}, {8}}},
	{"BatchNorm2d/eval", [][]int{{4, 8, 16, 16}, {8}, {8}}},
	{"Attention/nobias", [][]int{{2, 2, 33, 8}, {2, 2, 33, 8}, {2, 2, 33, 8}}},
	{"Attention/biasHNN", [][]int{{2, 2, 64, 8}, {2, 2, 64, 8}, {2, 2, 64, 8}, {2, 64, 64}}},
	{"Attention/biasBHNN", [][]int{{2, 2, 33, 8}, {2, 2, 33, 8}, {2, 2, 33, 8}, {2, 2, 33, 33}}},
	{"Rotate/shared", [][]int{{4, 4, 129, 8}, {1, 128, 4}, {1, 128, 4}}},
	{"Rotate/perhead", [][]int{{4, 4, 65, 8}, {4, 64, 4}, {4, 64, 4}}},
	{"Conv2d/patchify", [][]int{{3, 3, 32, 32}, {16, 3, 8, 8}, {16}}},
	{"Conv2d/5x5p2", [][]int{{3, 4, 9, 9}, {8, 4, 5, 5}, {8}}},
	{"Conv2d/depthwise3x3p1", [][]int{{3, 16, 14, 14}, {16, 1, 3, 3}, {16}}},
	{"Conv2d/s2p1-groups2", [][]int{{3, 4, 9, 9}, {6, 2, 3, 3}, {6}}},
}

// runOpsbCase builds the named op on inputs drawn from seed, runs backward
// from a random projection and returns the output followed by every input
// gradient, all as float64.
func runOpsbCase[T Float](c opsbCase, seed uint64) []float64 {
	return runOpsbCaseMasked[T](c, seed, -1, false)
}

// runOpsbCaseMasked is runOpsbCase where input noGrad (if ≥ 0) has no
// gradient (its slot in the result is left out), or, with noTape, the
// forward runs on a no-grad tape and only the output is returned.
func runOpsbCaseMasked[T Float](c opsbCase, seed uint64, noGrad int, noTape bool) []float64 {
	rng := rand.New(rand.NewPCG(seed, 3))
	in := make([]*Tensor[T], len(c.shapes))
	for i, s := range c.shapes {
		in[i] = NewParam[T](s...).FillUniform(rng, -1, 1)
	}
	if noGrad >= 0 {
		in[noGrad].Grad = nil
	}
	var tp Tape[T]
	tp.NoGrad = noTape
	var out *Tensor[T]
	switch c.name {
	case "LayerNorm":
		out = tp.LayerNorm(in[0], in[1], in[2], 1e-6)
	case "BatchNorm2d/train", "BatchNorm2d/eval":
		ch := c.shapes[1][0]
		rm, rv := New[T](ch).FillUniform(rng, -1, 1), New[T](ch).FillUniform(rng, 0.5, 2)
		out = tp.BatchNorm2d(in[0], in[1], in[2], rm, rv, 0.1, 1e-5, c.name == "BatchNorm2d/train")
	case "Attention/nobias":
		out = tp.Attention(in[0], in[1], in[2], nil, 0.35)
	case "Attention/biasHNN", "Attention/biasBHNN":
		out = tp.Attention(in[0], in[1], in[2], in[3], 0.35)
	case "Rotate/shared", "Rotate/perhead":
		out = tp.Rotate(in[0], in[1], in[2], 1)
	case "Conv2d/patchify":
		out = tp.Conv2d(in[0], in[1], in[2], 8, 0, 1)
	case "Conv2d/5x5p2":
		out = tp.Conv2d(in[0], in[1], in[2], 1, 2, 1)
	case "Conv2d/depthwise3x3p1":
		out = tp.Conv2d(in[0], in[1], in[2], 1, 1, c.shapes[0][1])
	case "Conv2d/s2p1-groups2":
		out = tp.Conv2d(in[0], in[1], in[2], 2, 1, 2)
	default:
		panic("unknown case " + c.name)
	}
	r := New[T](out.Shape...).FillUniform(rng, -1, 1)
	res := make([]float64, 0, out.Size())
	for _, v := range out.Data {
		res = append(res, float64(v))
	}
	if noTape {
		return res
	}
	tp.backwardFrom(out, r.Data)
	for _, x := range in {
		for _, v := range x.Grad {
			res = append(res, float64(v))
		}
	}
	return res
}

// TestOpsbFloat32 checks that the float32 instantiation agrees with float64
// to float32 precision.
func TestOpsbFloat32(t *testing.T) {
	for ci, c := range opsbCases {
		r64, r32 := runOpsbCase[float64](c, uint64(ci)), runOpsbCase[float32](c, uint64(ci))
		scale := 0.0
		for _, v := range r64 {
			scale = max(scale, math.Abs(v))
		}
		if d := opsbMaxDiff(r32, r64); d > 1e-5*max(scale, 1) {
			t.Errorf("%s: float32 vs float64 max |diff| %g (max |value| %g)", c.name, d, scale)
		}
	}
}

// TestOpsbThreads checks that outputs and gradients are bit-identical for
// 1, 2 and 3 threads (every reduction runs in a fixed order).
func TestOpsbThreads(t *testing.T) {
	prev := int(threads.Load())
	defer SetThreads(prev)
	for ci, c := range opsbCases {
		SetThreads(1)
		ref := runOpsbCase[float32](c, uint64(ci))
		for _, n := range []int{2, 3} {
			SetThreads(n)
			got := runOpsbCase[float32](c, uint64(ci))
			for i := range ref {
				if math.Float64bits(ref[i]) != math.Float64bits(got[i]) {
					t.Errorf("%s: Threads()=%d differs from 1 at element %d: %g vs %g", c.name, n, i, got[i], ref[i])
					break
				}
			}
		}
	}
}

// TestOpsbShapePanics checks that bad shapes panic with a "loope: <Op>:" message.
func TestOpsbShapePanics(t *testing.T) {
	n := func(shape ...int) *Tensor[float64] { return New[float64](shape...) }
	q := n(2, 3, 5, 4)
	for _, c := range []struct {
		op string
		f  func(tp *Tape[float64])
	}{
		{"LayerNorm", func(tp *Tape[float64]) { tp.LayerNorm(n(2, 4), n(3), n(3), 1e-6) }},
		{"LayerNorm", func(tp *Tape[float64]) { tp.LayerNorm(n(2, 4), n(4), nil, 1e-6) }},
		{"BatchNorm2d", func(tp *Tape[float64]) { tp.BatchNorm2d(n(2, 3, 4), n(3), n(3), n(3), n(3), 0.1, 1e-5, true) }},
		{"BatchNorm2d", func(tp *Tape[float64]) { tp.BatchNorm2d(n(2, 3, 2, 2), n(3), n(3), n(2), n(3), 0.1, 1e-5, false) }},
		{"BatchNorm2d", func(tp *Tape[float64]) { tp.BatchNorm2d(n(1, 3, 1, 1), n(3), n(3), n(3), n(3), 0.1, 1e-5, true) }},
		{"Attention", func(tp *Tape[float64]) { tp.Attention(q, n(2, 3, 6, 4), q, nil, 0.5) }},
		{"Attention", func(tp *Tape[float64]) { tp.Attention(q, q, q, n(3, 5, 4), 0.5) }},
		{"Attention", func(tp *Tape[float64]) { tp.Attention(q, q, nil, nil, 0.5) }},
		{"Rotate", func(tp *Tape[float64]) { tp.Rotate(q, n(1, 5, 2), n(1, 5, 2), 1) }},
		{"Rotate", func(tp *Tape[float64]) { tp.Rotate(q, n(2, 4, 2), n(2, 4, 2), 1) }},
		{"Rotate", func(tp *Tape[float64]) { tp.Rotate(n(2, 3, 5, 3), n(1, 5, 1), n(1, 5, 1), 0) }},
		{"Rotate", func(tp *Tape[float64]) { tp.Rotate(q, nil, n(1, 4, 2), 1) }},
		{"Conv2d", func(tp *Tape[float64]) { tp.Conv2d(n(1, 4, 5, 5), n(2, 3, 3, 3), nil, 1, 0, 1) }},
		{"Conv2d", func(tp *Tape[float64]) { tp.Conv2d(n(1, 4, 5, 5), n(3, 2, 3, 3), nil, 1, 0, 2) }},
		{"Conv2d", func(tp *Tape[float64]) { tp.Conv2d(n(1, 4, 2, 2), n(2, 4, 3, 3), nil, 1, 0, 1) }},
		{"Conv2d", func(tp *Tape[float64]) { tp.Conv2d(n(1, 4, 5, 5), n(2, 4, 3, 3), n(3), 1, 0, 1) }},
		{"Conv2d", func(tp *Tape[float64]) { tp.Conv2d(n(1, 4, 5, 5), n(2, 4, 3, 3), nil, 0, 0, 1) }},
	} {
		msg := func() (msg string) {
			defer func() { msg, _ = recover().(string) }()
			var tp Tape[float64]
			c.f(&tp)
			return ""
		}()
		if !strings.HasPrefix(msg, "loope: "+c.op+": ") {
			t.Errorf("%s: panic %q, want prefix %q", c.op, msg, "loope: "+c.op+": ")
		}
	}
}

// TestOpsbPartialGrad checks that leaving out one input's gradient (and
// running on a no-grad tape) changes nothing else: outputs and the other
// gradients stay bit-identical, so every backward branch is covered by the
// gradient-checked all-inputs case.
func TestOpsbPartialGrad(t *testing.T) {
	for ci, c := range opsbCases {
		full := runOpsbCase[float64](c, uint64(ci))
		nOut := len(full)
		for _, s := range c.shapes {
			nOut -= numel("test", s)
		}
		if got := runOpsbCaseMasked[float64](c, uint64(ci), -1, true); !slices.Equal(got, full[:nOut]) {
			t.Errorf("%s: no-grad forward differs", c.name)
		}
		for i := range c.shapes {
			want := slices.Clone(full[:nOut])
			off := nOut
			for j, s := range c.shapes {
				if j != i {
					want = append(want, full[off:off+numel("test", s)]...)
				}
				off += numel("test", s)
			}
			if got := runOpsbCaseMasked[float64](c, uint64(ci), i, false); !slices.Equal(got, want) {
				t.Errorf("%s: without the gradient of input %d the rest differs", c.name, i)
			}
		}
	}
}
