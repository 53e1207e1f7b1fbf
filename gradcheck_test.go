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
