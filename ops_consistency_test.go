package loope

// Tests for ops_norm.go, ops_attention.go and ops_conv.go beyond the
// gradient-check rows: forward values against naive reference loops written
// here, float32 against float64, and bit-identical results for any thread
// count.

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// opCase names an op call on fresh inputs of the given shapes, for the
// precision and thread-count tests below.
type opCase struct {
	name   string
	shapes [][]int
}

var opCases = []opCase{
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

// runOpCase builds the named op on inputs drawn from seed, runs backward
// from a random projection and returns the output followed by every input
// gradient, all as float64.
func runOpCase[T Float](c opCase, seed uint64) []float64 {
	return runOpCaseMasked[T](c, seed, -1, false)
}

// runOpCaseMasked is runOpCase where input noGrad (if ≥ 0) has no
// gradient (its slot in the result is left out), or, with noTape, the
// forward runs on a no-grad tape and only the output is returned.
func runOpCaseMasked[T Float](c opCase, seed uint64, noGrad int, noTape bool) []float64 {
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

// TestOpsFloat32 checks that the float32 instantiation agrees with float64
// to float32 precision.
func TestOpsFloat32(t *testing.T) {
	for ci, c := range opCases {
		r64, r32 := runOpCase[float64](c, uint64(ci)), runOpCase[float32](c, uint64(ci))
		scale := 0.0
		for _, v := range r64 {
			scale = max(scale, math.Abs(v))
		}
		if d := maxDiff(r32, r64); d > 1e-5*max(scale, 1) {
			t.Errorf("%s: float32 vs float64 max |diff| %g (max |value| %g)", c.name, d, scale)
		}
	}
}

// TestOpsThreads checks that outputs and gradients are bit-identical for
// 1, 2 and 3 threads (every reduction runs in a fixed order).
func TestOpsThreads(t *testing.T) {
	prev := int(threads.Load())
	defer SetThreads(prev)
	for ci, c := range opCases {
		SetThreads(1)
		ref := runOpCase[float32](c, uint64(ci))
		for _, n := range []int{2, 3} {
			SetThreads(n)
			got := runOpCase[float32](c, uint64(ci))
			for i := range ref {
				if math.Float64bits(ref[i]) != math.Float64bits(got[i]) {
					t.Errorf("%s: Threads()=%d differs from 1 at element %d: %g vs %g", c.name, n, i, got[i], ref[i])
					break
				}
			}
		}
	}
}

// TestOpsShapePanics checks that bad shapes panic with a "loope: <Op>:" message.
func TestOpsShapePanics(t *testing.T) {
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

// TestOpsPartialGrad checks that leaving out one input's gradient (and
// running on a no-grad tape) changes nothing else: outputs and the other
// gradients stay bit-identical, so every backward branch is covered by the
// gradient-checked all-inputs case.
func TestOpsPartialGrad(t *testing.T) {
	for ci, c := range opCases {
		full := runOpCase[float64](c, uint64(ci))
		nOut := len(full)
		for _, s := range c.shapes {
			nOut -= numel("test", s)
		}
		if got := runOpCaseMasked[float64](c, uint64(ci), -1, true); !slices.Equal(got, full[:nOut]) {
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
			if got := runOpCaseMasked[float64](c, uint64(ci), i, false); !slices.Equal(got, want) {
				t.Errorf("%s: without the gradient of input %d the rest differs", c.name, i)
			}
		}
	}
}

func benchOp(b *testing.B, shapes [][]int, build func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32]) {
	rng := rand.New(rand.NewPCG(1, 2))
	in := make([]*Tensor[float32], len(shapes))
	for i, s := range shapes {
		in[i] = NewParam[float32](s...).FillUniform(rng, -1, 1)
	}
	var tp Tape[float32]
	var seed []float32
	for b.Loop() {
		tp.Reset()
		out := build(&tp, in)
		if seed == nil {
			seed = New[float32](out.Shape...).FillUniform(rng, -1, 1).Data
		}
		tp.backwardFrom(out, seed)
	}
}
