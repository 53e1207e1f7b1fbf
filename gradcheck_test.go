package loope

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
)

// gradCase is one row of the gradient-check table: build maps the inputs
// (all float64 parameters, drawn by init or U(-1, 1)) to an output.
type gradCase struct {
	name   string // "<TapeMethod>" or "<TapeMethod>/<variant>"
	shapes [][]int
	// init fills input i; nil means U(-1, 1). Use it to keep inputs away
	// from kinks (ReLU at 0, |x| near ties) or in a valid domain.
	init  func(i int, x []float64, rng *rand.Rand)
	build func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64]
}

// gradCases lists every differentiable op. TestGradCoverage fails if a
// Tape method that records an op has no row here.
var gradCases = []gradCase{
	{name: "MatMul", shapes: [][]int{{2, 3, 4}, {4, 5}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.MatMul(in[0], in[1]) }},
	{name: "Linear", shapes: [][]int{{2, 3, 4}, {5, 4}, {5}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Linear(in[0], in[1], in[2]) }},
	{name: "Linear/nobias", shapes: [][]int{{3, 4}, {5, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Linear(in[0], in[1], nil) }},
	{name: "BatchMatMul/NN", shapes: [][]int{{2, 3, 4, 5}, {2, 3, 5, 2}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.BatchMatMul(in[0], in[1], false, false)
		}},
	{name: "BatchMatMul/NT", shapes: [][]int{{2, 4, 5}, {2, 3, 5}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.BatchMatMul(in[0], in[1], false, true)
		}},
	{name: "BatchMatMul/TN", shapes: [][]int{{2, 5, 4}, {2, 5, 3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.BatchMatMul(in[0], in[1], true, false)
		}},
	{name: "BatchMatMul/TT", shapes: [][]int{{2, 5, 4}, {2, 3, 5}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.BatchMatMul(in[0], in[1], true, true)
		}},
	// Rows for further ops go here, grouped by op file.

	// ---- opsa: ops_broadcast.go, ops_activation.go, ops_reduce.go, ops_shape.go, ops_loss.go ----
	{name: "Add", shapes: [][]int{{2, 3, 4}, {2, 3, 4}}, build: binCase(opAdd)},
	{name: "Add/suffix", shapes: [][]int{{2, 3, 4}, {4}}, build: binCase(opAdd)},
	{name: "Add/suffix2", shapes: [][]int{{2, 3, 4}, {3, 4}}, build: binCase(opAdd)},
	{name: "Add/prefix", shapes: [][]int{{3, 4}, {2, 3, 4}}, build: binCase(opAdd)},
	{name: "Add/outer", shapes: [][]int{{3, 1}, {1, 4}}, build: binCase(opAdd)},
	{name: "Add/scalar", shapes: [][]int{{}, {2, 3}}, build: binCase(opAdd)},
	{name: "Sub", shapes: [][]int{{2, 3, 4}, {2, 3, 4}}, build: binCase(opSub)},
	{name: "Sub/bcast", shapes: [][]int{{2, 1, 4}, {3, 1}}, build: binCase(opSub)},
	{name: "Sub/rowwise", shapes: [][]int{{2, 3, 4}, {2, 3, 1}}, build: binCase(opSub)},
	{name: "Mul", shapes: [][]int{{2, 3, 4}, {2, 3, 4}}, build: binCase(opMul)},
	{name: "Mul/bcast", shapes: [][]int{{2, 1, 4}, {3, 1}}, build: binCase(opMul)},
	{name: "Mul/suffix", shapes: [][]int{{2, 3, 4}, {4}}, build: binCase(opMul)},
	{name: "Mul/self", shapes: [][]int{{2, 3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Mul(in[0], in[0]) }},
	{name: "Mul/mixed", shapes: [][]int{{2, 1, 3, 1, 2}, {4, 1, 5, 2}}, build: binCase(opMul)},
	{name: "Div", shapes: [][]int{{2, 3, 4}, {2, 3, 4}}, init: awayFromZero(1), build: binCase(opDiv)},
	{name: "Div/bcast", shapes: [][]int{{3, 4}, {2, 3, 4}}, init: awayFromZero(1), build: binCase(opDiv)},
	{name: "Div/rowwise", shapes: [][]int{{2, 3, 4}, {2, 3, 1}}, init: awayFromZero(1), build: binCase(opDiv)},
	{name: "AddBias", shapes: [][]int{{2, 3, 4}, {4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.AddBias(in[0], in[1]) }},
	{name: "Scale", shapes: [][]int{{2, 3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Scale(in[0], -1.7) }},
	{name: "AddScalar", shapes: [][]int{{2, 3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.AddScalar(in[0], 0.3) }},
	{name: "GELU", shapes: [][]int{{3, 5}}, init: uniformInit(-3, 3), build: unaryCase((*Tape[float64]).GELU)},
	{name: "ReLU", shapes: [][]int{{3, 5}}, init: awayFromZero(0), build: unaryCase((*Tape[float64]).ReLU)},
	{name: "Sigmoid", shapes: [][]int{{3, 5}}, init: uniformInit(-4, 4), build: unaryCase((*Tape[float64]).Sigmoid)},
	{name: "Tanh", shapes: [][]int{{3, 5}}, init: uniformInit(-2, 2), build: unaryCase((*Tape[float64]).Tanh)},
	{name: "Sin", shapes: [][]int{{3, 5}}, init: uniformInit(-4, 4), build: unaryCase((*Tape[float64]).Sin)},
	{name: "Cos", shapes: [][]int{{3, 5}}, init: uniformInit(-4, 4), build: unaryCase((*Tape[float64]).Cos)},
	{name: "Exp", shapes: [][]int{{3, 5}}, init: uniformInit(-2, 2), build: unaryCase((*Tape[float64]).Exp)},
	{name: "Log", shapes: [][]int{{3, 5}}, init: uniformInit(0.2, 3), build: unaryCase((*Tape[float64]).Log)},
	{name: "Sum", shapes: [][]int{{2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Sum(in[0]) }},
	{name: "Mean", shapes: [][]int{{2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Mean(in[0]) }},
	{name: "SumAxis/mid", shapes: [][]int{{2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.SumAxis(in[0], 1, false) }},
	{name: "SumAxis/last-keep", shapes: [][]int{{2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.SumAxis(in[0], -1, true) }},
	{name: "MeanAxis/first", shapes: [][]int{{2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.MeanAxis(in[0], 0, false) }},
	{name: "MeanAxis/neg-keep", shapes: [][]int{{2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.MeanAxis(in[0], -2, true) }},
	{name: "MeanAxis/last", shapes: [][]int{{2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.MeanAxis(in[0], 2, false) }},
	{name: "Softmax", shapes: [][]int{{2, 3, 5}}, init: uniformInit(-3, 3),
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Softmax(in[0]) }},
	{name: "Reshape", shapes: [][]int{{2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			// Through an op on each side, so the view's aliased Grad carries
			// a gradient both into and out of it.
			return tp.Sin(tp.Reshape(tp.Tanh(in[0]), 4, -1))
		}},
	{name: "Reshape/leaf", shapes: [][]int{{2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Reshape(in[0], 6, 4) }},
	{name: "Transpose/last2", shapes: [][]int{{2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Transpose(in[0], -1, -2) }},
	{name: "Transpose/outer", shapes: [][]int{{2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Transpose(in[0], 0, 1) }},
	{name: "Permute", shapes: [][]int{{2, 3, 4, 5}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Permute(in[0], 2, 0, 3, 1) }},
	{name: "Concat", shapes: [][]int{{2, 1, 4}, {2, 3, 4}, {2, 2, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Concat(1, in...) }},
	{name: "Concat/last", shapes: [][]int{{2, 3}, {2, 1}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Concat(-1, in...) }},
	{name: "Slice", shapes: [][]int{{2, 5, 3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Slice(in[0], 1, 1, 4) }},
	{name: "Split", shapes: [][]int{{2, 6}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			p := tp.Split(in[0], -1, 1, 3, 2)
			// Weight the pieces differently so a mix-up shows.
			return tp.Concat(1, tp.Scale(p[2], 2), p[0], tp.Scale(p[1], -3))
		}},
	{name: "Gather", shapes: [][]int{{2, 4, 3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Gather(in[0], 1, []int{3, 0, 3, 1, 3}) // repeats: the backward must add
		}},
	{name: "CrossEntropy", shapes: [][]int{{4, 5}}, init: uniformInit(-3, 3),
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.CrossEntropy(in[0], []int{1, 4, 0, 1}, 0)
		}},
	{name: "CrossEntropy/smooth", shapes: [][]int{{4, 5}}, init: uniformInit(-3, 3),
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.CrossEntropy(in[0], []int{1, 4, 0, 1}, 0.1)
		}},
	{name: "BCEWithLogits", shapes: [][]int{{3, 4}}, init: uniformInit(-4, 4),
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			// Targets are constants (no gradient by contract): fixed soft
			// labels j/11, not a checked input.
			t := New[float64](3, 4)
			for j := range t.Data {
				t.Data[j] = float64(j) / 11
			}
			return tp.BCEWithLogits(in[0], t)
		}},
	// ---- end opsa ----
	// ---- Rows of branch opsb: ops_norm.go, ops_attention.go, ops_conv.go ----
	{name: "LayerNorm", shapes: [][]int{{2, 3, 5}, {5}, {5}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.LayerNorm(in[0], in[1], in[2], 1e-6)
		}},
	{name: "BatchNorm2d/train", shapes: [][]int{{2, 3, 2, 3}, {3}, {3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			// Fresh running stats per call: the FD loop repeats the forward many times.
			rm, rv := FromData([]float64{0.1, -0.2, 0.3}, 3), FromData([]float64{0.5, 1, 2}, 3)
			return tp.BatchNorm2d(in[0], in[1], in[2], rm, rv, 0.1, 1e-5, true)
		}},
	{name: "BatchNorm2d/eval", shapes: [][]int{{2, 3, 2, 3}, {3}, {3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			rm, rv := FromData([]float64{0.1, -0.2, 0.3}, 3), FromData([]float64{0.5, 1, 2}, 3)
			return tp.BatchNorm2d(in[0], in[1], in[2], rm, rv, 0.1, 1e-5, false)
		}},
	{name: "Attention/nobias", shapes: [][]int{{2, 2, 3, 4}, {2, 2, 3, 4}, {2, 2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Attention(in[0], in[1], in[2], nil, 0.5)
		}},
	{name: "Attention/biasHNN", shapes: [][]int{{2, 2, 3, 4}, {2, 2, 3, 4}, {2, 2, 3, 4}, {2, 3, 3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Attention(in[0], in[1], in[2], in[3], 0.5)
		}},
	{name: "Attention/biasBHNN", shapes: [][]int{{2, 2, 3, 4}, {2, 2, 3, 4}, {2, 2, 3, 4}, {2, 2, 3, 3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Attention(in[0], in[1], in[2], in[3], 0.5)
		}},
	{name: "QKVHeads", shapes: [][]int{{2, 3, 12}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			q, k, v := tp.QKVHeads(in[0], 2)
			return tp.Concat(0, q, k, v)
		}},
	{name: "MergeHeads", shapes: [][]int{{2, 3, 4, 2}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.MergeHeads(in[0]) }},
	{name: "Rotate/shared-skip0", shapes: [][]int{{2, 2, 3, 4}, {1, 3, 2}, {1, 3, 2}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Rotate(in[0], in[1], in[2], 0)
		}},
	{name: "Rotate/shared-skip1", shapes: [][]int{{2, 2, 4, 4}, {1, 3, 2}, {1, 3, 2}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Rotate(in[0], in[1], in[2], 1)
		}},
	{name: "Rotate/perhead-skip0", shapes: [][]int{{2, 2, 3, 4}, {2, 3, 2}, {2, 3, 2}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Rotate(in[0], in[1], in[2], 0)
		}},
	{name: "Rotate/perhead-skip1", shapes: [][]int{{2, 2, 4, 4}, {2, 3, 2}, {2, 3, 2}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Rotate(in[0], in[1], in[2], 1)
		}},
	{name: "Conv2d/patchify", shapes: [][]int{{2, 2, 4, 4}, {3, 2, 2, 2}, {3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Conv2d(in[0], in[1], in[2], 2, 0, 1)
		}},
	{name: "Conv2d/5x5p2", shapes: [][]int{{2, 2, 4, 3}, {3, 2, 5, 5}, {3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Conv2d(in[0], in[1], in[2], 1, 2, 1)
		}},
	{name: "Conv2d/depthwise3x3p1", shapes: [][]int{{2, 3, 4, 3}, {3, 1, 3, 3}, {3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Conv2d(in[0], in[1], in[2], 1, 1, 3)
		}},
	{name: "Conv2d/depthwise-s2-nobias", shapes: [][]int{{1, 2, 5, 4}, {2, 1, 3, 2}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Conv2d(in[0], in[1], nil, 2, 1, 2)
		}},
	{name: "Conv2d/s2p1-groups2", shapes: [][]int{{2, 4, 5, 4}, {4, 2, 3, 3}, {4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Conv2d(in[0], in[1], in[2], 2, 1, 2)
		}},
	{name: "Conv2d/s2-nobias", shapes: [][]int{{1, 2, 6, 5}, {3, 2, 2, 3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Conv2d(in[0], in[1], nil, 2, 0, 1)
		}},
	// ---- end of branch opsb rows ----
	{name: "RotateBlocks/shared-skip1-b2", shapes: [][]int{{2, 2, 4, 4}, {1, 3, 2, 2, 2}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.RotateBlocks(in[0], in[1], 1)
		}},
	{name: "RotateBlocks/perhead-skip0-dense", shapes: [][]int{{2, 2, 3, 4}, {2, 3, 1, 4, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.RotateBlocks(in[0], in[1], 0)
		}},
	// ---- ops_matexp.go ----
	{name: "MatExp", shapes: [][]int{{2, 3, 3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.MatExp(in[0]) }},
	{name: "MatExp/scaled", shapes: [][]int{{2, 4, 4}}, init: uniformInit(-4, 4), // ‖A‖₁ > θ₁₃: squarings run
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.MatExp(in[0]) }},
	{name: "MatExp/skew", shapes: [][]int{{3, 2, 2}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.MatExp(tp.Sub(in[0], tp.Transpose(in[0], -1, -2)))
		}},
	// ---- ops_cayley.go ----
	{name: "Cayley", shapes: [][]int{{2, 3, 3}}, init: uniformInit(-0.4, 0.4), // I + S well conditioned
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.Cayley(in[0]) }},
	{name: "Cayley/skew", shapes: [][]int{{4, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Cayley(tp.Scale(tp.Sub(in[0], tp.Transpose(in[0], -1, -2)), 3))
		}},
	// ---- ops_cait.go (CaiT) ----
	{name: "HeadMix", shapes: [][]int{{2, 3, 4, 5}, {3, 3}, {3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.HeadMix(in[0], in[1], in[2])
		}},
	{name: "LayerScale", shapes: [][]int{{2, 3, 4}, {2, 3, 4}, {4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.LayerScale(in[0], in[1], in[2])
		}},
	{name: "ClassAttention", shapes: [][]int{{2, 3, 1, 4}, {2, 3, 5, 4}, {2, 3, 5, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.ClassAttention(in[0], in[1], in[2], 0.5)
		}},
	// ---- ops_crossvit.go (CrossViT) ----
	{name: "ResizeBicubic/down", shapes: [][]int{{2, 2, 7, 6}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.ResizeBicubic(in[0], 6, 4) }},
	{name: "ResizeBicubic/up", shapes: [][]int{{1, 2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.ResizeBicubic(in[0], 5, 7) }},
	{name: "CrossAttention", shapes: [][]int{{2, 3, 1, 4}, {2, 3, 5, 4}, {2, 3, 5, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.CrossAttention(in[0], in[1], in[2], 0.5)
		}},
	// ---- ops_index.go (branch pe2) ----
	{name: "TakeAlongLast", shapes: [][]int{{2, 3, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			// idx (3, 5) with repeats in a row: the backward must add.
			return tp.TakeAlongLast(in[0], []int{3, 0, 3, 1, 3, 2, 2, 0, 1, 1, 0, 0, 0, 0, 3}, 5)
		}},
	// ---- CNN reference models: ops_pool.go, ops_resize.go, Conv2dHW (ops_conv.go) ----
	{name: "Conv2dHW/1x3-pad01", shapes: [][]int{{2, 3, 4, 5}, {4, 3, 1, 3}, {4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Conv2dHW(in[0], in[1], in[2], 1, 0, 1, 1)
		}},
	{name: "Conv2dHW/3x1-pad10-s2-nobias", shapes: [][]int{{1, 2, 5, 4}, {3, 2, 3, 1}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Conv2dHW(in[0], in[1], nil, 2, 1, 0, 1)
		}},
	{name: "Conv2dHW/1x5-pad02-wide", shapes: [][]int{{1, 2, 3, 6}, {33, 2, 1, 5}, {33}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.Conv2dHW(in[0], in[1], in[2], 1, 0, 2, 1)
		}},
	{name: "MaxPool2d/k3s2p1", shapes: [][]int{{2, 3, 5, 6}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.MaxPool2d(in[0], 3, 2, 1) }},
	{name: "MaxPool2d/k2s1p0", shapes: [][]int{{1, 2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.MaxPool2d(in[0], 2, 1, 0) }},
	{name: "AvgPool2d/k3s1p1-countpad", shapes: [][]int{{2, 2, 4, 5}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.AvgPool2d(in[0], 3, 1, 1, true)
		}},
	{name: "AvgPool2d/k3s2p1-nocountpad", shapes: [][]int{{1, 2, 5, 5}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.AvgPool2d(in[0], 3, 2, 1, false)
		}},
	{name: "GlobalAvgPool2d", shapes: [][]int{{2, 3, 2, 3}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.GlobalAvgPool2d(in[0]) }},
	{name: "ResizeBilinear/up", shapes: [][]int{{1, 2, 3, 4}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.ResizeBilinear(in[0], 7, 5) }},
	{name: "ResizeBilinear/down", shapes: [][]int{{2, 1, 6, 5}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return tp.ResizeBilinear(in[0], 4, 3) }},
}

// gradTol is the acceptance bound |analytic − numeric| ≤ 1e-6 + 1e-5·|numeric|.
func gradTol(numeric float64) float64 { return 1e-6 + 1e-5*math.Abs(numeric) }

// TestGradCheck compares, for every row of gradCases, the tape's gradient
// of the loss Σ out⊙R (R fixed random) with central finite differences.
func TestGradCheck(t *testing.T) {
	for ci, tc := range gradCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkGradCase(t, tc, uint64(ci))
		})
	}
}

func checkGradCase(t *testing.T, tc gradCase, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	in := make([]*Tensor[float64], len(tc.shapes))
	for i, s := range tc.shapes {
		in[i] = NewParam[float64](s...)
		if tc.init != nil {
			tc.init(i, in[i].Data, rng)
		} else {
			in[i].FillUniform(rng, -1, 1)
		}
	}
	var tp Tape[float64]
	out := tc.build(&tp, in)
	r := make([]float64, out.Size())
	for i := range r {
		r[i] = rng.Float64()*2 - 1
	}
	tp.backwardFrom(out, r)
	loss := func() float64 {
		var tp Tape[float64]
		tp.NoGrad = true
		o := tc.build(&tp, in)
		s := 0.0
		for i, v := range o.Data {
			s += v * r[i]
		}
		return s
	}
	for i, x := range in {
		numeric := fd.Gradient(nil, func(v []float64) float64 {
			saved := append([]float64(nil), x.Data...)
			copy(x.Data, v)
			f := loss()
			copy(x.Data, saved)
			return f
		}, append([]float64(nil), x.Data...), &fd.Settings{Formula: fd.Central, Step: 1e-6})
		bad := 0
		for j, n := range numeric {
			if a := x.Grad[j]; !(math.Abs(a-n) <= gradTol(n)) {
				if bad < 5 {
					t.Errorf("input %d %v, elem %d: analytic %.10g, numeric %.10g", i, x.Shape, j, a, n)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("input %d: %d of %d elements off", i, bad, len(numeric))
		}
	}
}

// nonOpMethods are Tape methods that record no op of their own.
var nonOpMethods = map[string]bool{"Backward": true, "Len": true, "New": true, "Reset": true}

// TestGradCoverage fails if an exported Tape method (an op) has no row in
// gradCases: a new op without a gradient check is a failing review.
func TestGradCoverage(t *testing.T) {
	have := map[string]bool{}
	for _, c := range gradCases {
		have[strings.SplitN(c.name, "/", 2)[0]] = true
	}
	typ := reflect.TypeOf(&Tape[float64]{})
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		if !nonOpMethods[name] && !have[name] {
			t.Errorf("op Tape.%s has no row in gradCases", name)
		}
	}
}

// binCase returns a gradCase build for the binary op code op on in[0], in[1].
func binCase(op int) func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
	return func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
		switch op {
		case opAdd:
			return tp.Add(in[0], in[1])
		case opSub:
			return tp.Sub(in[0], in[1])
		case opMul:
			return tp.Mul(in[0], in[1])
		default:
			return tp.Div(in[0], in[1])
		}
	}
}

// unaryCase returns a gradCase build applying f to in[0].
func unaryCase(f func(*Tape[float64], *Tensor[float64]) *Tensor[float64]) func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
	return func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return f(tp, in[0]) }
}

// uniformInit fills every input with U(lo, hi).
func uniformInit(lo, hi float64) func(int, []float64, *rand.Rand) {
	return func(_ int, x []float64, rng *rand.Rand) {
		for j := range x {
			x[j] = lo + (hi-lo)*rng.Float64()
		}
	}
}

// awayFromZero fills input i with ±U(0.3, 1.3) (random sign) and the other
// inputs with U(-1, 1): a kink or pole at 0 stays ≥ 0.3 away, far beyond
// the 1e-6 FD step.
func awayFromZero(i int) func(int, []float64, *rand.Rand) {
	return func(k int, x []float64, rng *rand.Rand) {
		for j := range x {
			if k != i {
				x[j] = 2*rng.Float64() - 1
				continue
			}
			v := 0.3 + rng.Float64()
			if rng.IntN(2) == 0 {
				v = -v
			}
			x[j] = v
		}
	}
}
