package loope

import (
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// fastTol is the float32 agreement asked of the fast path against the
// reference layer: the bound of the float32 goldens, relative to
// |value| + max|tensor|.
const fastTol = 1e-4

// wide returns v as float64.
func wide[T Float](v []T) []float64 {
	w := make([]float64, len(v))
	for i, e := range v {
		w[i] = float64(e)
	}
	return w
}

// fastCase is one float32 op of the fast path and its reference: fast runs
// it on the tape; ref computes the output and, for the output gradient
// dout, the gradients of the inputs (nil where an input is a constant),
// from the same inputs in float64.
type fastCase struct {
	name   string
	shapes [][]int
	consts []bool // inputs without gradient
	fast   func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32]
	ref    func(in [][]float64, dout []float64) (out []float64, grads [][]float64)
}

// ViT-like sizes: B 2, N 50 tokens, D 64, 4 heads of 16 (the float32
// attention kernel's in-place path), MLP 256.
const fB, fN, fD, fH, fM = 2, 50, 64, 4, 256

// ropeTables returns rope-axial's cos and sin for a 7×7 grid and head dim
// 16, (N−1, Dh/2) = (49, 8) each.
func ropeTables() (cos, sin []float64) {
	for _, a := range RopeAxialAngles(fD/fH, 7, RopeAxialTheta) {
		s, c := math.Sincos(a)
		cos, sin = append(cos, c), append(sin, s)
	}
	return cos, sin
}

var fastCases = []fastCase{
	{name: "LayerNorm", shapes: [][]int{{fB, fN, fD}, {fD}, {fD}},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
			return tp.LayerNorm(in[0], in[1], in[2], 1e-6)
		},
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			rows := fB * fN
			out, mean, rstd := make([]float64, rows*fD), make([]float64, rows), make([]float64, rows)
			dx, dg, db := make([]float64, rows*fD), make([]float64, fD), make([]float64, fD)
			RefLayerNormForward(out, mean, rstd, in[0], in[1], in[2], rows, fD, 1e-6)
			RefLayerNormBackward(dx, dg, db, dout, in[0], in[1], mean, rstd, rows, fD)
			return out, [][]float64{dx, dg, db}
		}},
	{name: "Linear", shapes: [][]int{{fB, fN, fD}, {3 * fD, fD}, {3 * fD}},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
			return tp.Linear(in[0], in[1], in[2])
		},
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			return refLinear(in[0], in[1], in[2], dout, fB*fN, fD, 3*fD)
		}},
	{name: "GELU", shapes: [][]int{{fB, fN, fM}},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] { return tp.GELU(in[0]) },
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			out, dx := make([]float64, len(in[0])), make([]float64, len(in[0]))
			RefGELUForward(out, in[0])
			RefGELUBackward(dx, dout, in[0])
			return out, [][]float64{dx}
		}},
	{name: "linearGELU", shapes: [][]int{{fB, fN, fD}, {fM, fD}, {fM}},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
			return tp.linearGELU(in[0], in[1], in[2])
		},
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			rows := fB * fN
			pre, out, dpre := make([]float64, rows*fM), make([]float64, rows*fM), make([]float64, rows*fM)
			RefLinearForward(pre, in[0], in[1], in[2], rows, fD, fM)
			RefGELUForward(out, pre)
			RefGELUBackward(dpre, dout, pre)
			_, g := refLinear(in[0], in[1], in[2], dpre, rows, fD, fM)
			return out, g
		}},
	{name: "linearAdd", shapes: [][]int{{fB, fN, fD}, {fB, fN, fM}, {fD, fM}, {fD}},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
			return tp.linearAdd(in[0], in[1], in[2], in[3])
		},
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			out, g := refLinear(in[1], in[2], in[3], dout, fB*fN, fM, fD)
			for i, v := range in[0] {
				out[i] += v // residual: dx = dout
			}
			return out, append([][]float64{dout}, g...)
		}},
	{name: "attentionQKV", shapes: [][]int{{fB, fN, 3 * fD}},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
			return tp.attentionQKV(in[0], nil, fH, 0.25)
		},
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			out, att, dqkv := make([]float64, fB*fN*fD), make([]float64, fB*fH*fN*fN), make([]float64, len(in[0]))
			RefAttentionForward(out, att, in[0], nil, fB, fN, fD, fH, 0.25)
			RefAttentionBackward(dqkv, nil, dout, att, in[0], fB, fN, fD, fH, 0.25)
			return out, [][]float64{dqkv}
		}},
	{name: "attentionQKV/bias", shapes: [][]int{{fB, fN, 3 * fD}, {fH, fN, fN}},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
			return tp.attentionQKV(in[0], in[1], fH, 0.25)
		},
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			out, att := make([]float64, fB*fN*fD), make([]float64, fB*fH*fN*fN)
			dqkv, dbias := make([]float64, len(in[0])), make([]float64, len(in[1]))
			RefAttentionForward(out, att, in[0], in[1], fB, fN, fD, fH, 0.25)
			RefAttentionBackward(dqkv, dbias, dout, att, in[0], fB, fN, fD, fH, 0.25)
			return out, [][]float64{dqkv, dbias}
		}},
	{name: "Rotate+Attention", shapes: [][]int{{fB, fN, 3 * fD}},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
			c, s := ropeTables()
			cos, sin := FromData(narrow(c), 1, fN-1, fD/fH/2), FromData(narrow(s), 1, fN-1, fD/fH/2)
			q, k, v := tp.QKVHeads(in[0], fH)
			q, k = tp.Rotate(q, cos, sin, 1), tp.Rotate(k, cos, sin, 1)
			return tp.MergeHeads(tp.Attention(q, k, v, nil, 0.25))
		},
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			c, s := ropeTables()
			rot, out, att := make([]float64, len(in[0])), make([]float64, fB*fN*fD), make([]float64, fB*fH*fN*fN)
			drot, dqkv := make([]float64, len(in[0])), make([]float64, len(in[0]))
			RefRopeForward(rot, in[0], c, s, fB, fN, fD, fH, 1)
			RefAttentionForward(out, att, rot, nil, fB, fN, fD, fH, 0.25)
			RefAttentionBackward(drot, nil, dout, att, rot, fB, fN, fD, fH, 0.25)
			RefRopeBackward(dqkv, drot, c, s, fB, fN, fD, fH, 1)
			return out, [][]float64{dqkv}
		}},
	{name: "Conv2d/patchify", shapes: [][]int{{fB, 3, 28, 28}, {fD, 3, 2, 2}, {fD}},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
			return tp.Conv2d(in[0], in[1], in[2], 2, 0, 1)
		},
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			return refConv(in, dout, RefConv{B: fB, C: 3, H: 28, W: 28, O: fD, KH: 2, KW: 2, Stride: 2, Groups: 1})
		}},
	{name: "Conv2d/5x5", shapes: [][]int{{fB, 32, 14, 14}, {16, 32, 5, 5}, {16}},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
			return tp.Conv2d(in[0], in[1], in[2], 1, 2, 1)
		},
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			return refConv(in, dout, RefConv{B: fB, C: 32, H: 14, W: 14, O: 16, KH: 5, KW: 5, Stride: 1, Pad: 2, Groups: 1})
		}},
	{name: "BatchNorm2d", shapes: [][]int{{4, 2, 7, 7}, {2}, {2}},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
			rv := New[float32](2)
			rv.Data[0], rv.Data[1] = 1, 1
			return tp.BatchNorm2d(in[0], in[1], in[2], New[float32](2), rv, 0.1, 1e-5, true)
		},
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			out, mean, rstd := make([]float64, len(in[0])), make([]float64, 2), make([]float64, 2)
			dx, dg, db := make([]float64, len(in[0])), make([]float64, 2), make([]float64, 2)
			RefBatchNormForward(out, mean, rstd, in[0], in[1], in[2], make([]float64, 2), []float64{1, 1}, 4, 2, 49, 0.1, 1e-5)
			RefBatchNormBackward(dx, dg, db, dout, in[0], in[1], mean, rstd, 4, 2, 49)
			return out, [][]float64{dx, dg, db}
		}},
	{name: "BCEWithLogits", shapes: [][]int{{8, 6}, {8, 6}}, consts: []bool{false, true},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
			return tp.BCEWithLogits(in[0], toBits(in[1]))
		},
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			dx := make([]float64, len(in[0]))
			loss := RefBCEWithLogits(dx, in[0], wide(toBits(FromData(narrow(in[1]), 8, 6)).Data))
			for i := range dx {
				dx[i] *= dout[0]
			}
			return []float64{loss}, [][]float64{dx, nil}
		}},
	{name: "CrossEntropy", shapes: [][]int{{8, 10}},
		fast: func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
			return tp.CrossEntropy(in[0], []int{0, 3, 9, 1, 1, 5, 7, 2}, 0.1)
		},
		ref: func(in [][]float64, dout []float64) ([]float64, [][]float64) {
			dx := make([]float64, len(in[0]))
			loss := RefCrossEntropy(dx, in[0], []int{0, 3, 9, 1, 1, 5, 7, 2}, 10, 0.1)
			for i := range dx {
				dx[i] *= dout[0]
			}
			return []float64{loss}, [][]float64{dx}
		}},
}

// refLinear runs RefLinearForward and RefLinearBackward: out, [dx, dw, dbias].
func refLinear(x, w, bias, dout []float64, rows, nIn, nOut int) ([]float64, [][]float64) {
	out, dx, dw, db := make([]float64, rows*nOut), make([]float64, rows*nIn), make([]float64, len(w)), make([]float64, nOut)
	RefLinearForward(out, x, w, bias, rows, nIn, nOut)
	RefLinearBackward(dx, dw, db, dout, x, w, rows, nIn, nOut)
	return out, [][]float64{dx, dw, db}
}

// refConv runs RefConv2dForward and RefConv2dBackward on in = x, w, bias.
func refConv(in [][]float64, dout []float64, g RefConv) ([]float64, [][]float64) {
	out, dx, dw, db := make([]float64, len(dout)), make([]float64, len(in[0])), make([]float64, len(in[1])), make([]float64, g.O)
	RefConv2dForward(out, in[0], in[1], in[2], g)
	RefConv2dBackward(dx, dw, db, dout, in[0], in[1], g)
	return out, [][]float64{dx, dw, db}
}

// narrow returns v as float32.
func narrow(v []float64) []float32 {
	n := make([]float32, len(v))
	for i, e := range v {
		n[i] = float32(e)
	}
	return n
}

// toBits maps a tensor of values in [−1, 1) to 0/1 targets (x > 0).
func toBits(x *Tensor[float32]) *Tensor[float32] {
	t := New[float32](x.Shape...)
	for i, v := range x.Data {
		if v > 0 {
			t.Data[i] = 1
		}
	}
	return t
}

// TestFastPathVsReference runs each float32 op of the fast path, fused or
// not (asm kernels, or their Go twins under -tags noasm), and checks its
// output and every input gradient against the reference layer within the
// float32 golden bound, on 1 and 2 threads.
func TestFastPathVsReference(t *testing.T) {
	for ci, c := range fastCases {
		for _, th := range []int{1, 2} {
			rng := rand.New(rand.NewPCG(uint64(ci), 17))
			in := make([]*Tensor[float32], len(c.shapes))
			in64 := make([][]float64, len(c.shapes))
			for i, s := range c.shapes {
				in[i] = NewParam[float32](s...).FillUniform(rng, -1, 1)
				if c.consts != nil && c.consts[i] {
					in[i].Grad = nil
				}
				in64[i] = wide(in[i].Data)
			}
			var out *Tensor[float32]
			var dout []float32
			withThreads(th, func() {
				var tp Tape[float32]
				out = c.fast(&tp, in)
				dout = New[float32](out.Shape...).FillUniform(rng, -1, 1).Data
				tp.backwardFrom(out, dout)
			})
			want, grads := c.ref(in64, wide(dout))
			name := c.name + "/threads=" + string(rune('0'+th))
			checkClose(t, name+": output", wide(out.Data), want, fastTol)
			for i, g := range grads {
				if g != nil {
					checkClose(t, name+": grad of input "+string(rune('0'+i)), wide(in[i].Grad), g, fastTol)
				}
			}
		}
	}
}

// TestRefLayerSize checks the reading target stated in ref_ops.go's header:
// the number of functions (and methods) in ref_ops.go and ref_vit.go, at
// most 40 in all.
func TestRefLayerSize(t *testing.T) {
	count := map[string]int{}
	for _, f := range []string{"ref_ops.go", "ref_vit.go"} {
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			if _, ok := d.(*ast.FuncDecl); ok {
				count[f]++
			}
		}
	}
	total := count["ref_ops.go"] + count["ref_vit.go"]
	if total > 40 {
		t.Errorf("the reference layer has %d functions, the reading target is at most 40", total)
	}
	head, err := parser.ParseFile(token.NewFileSet(), "ref_ops.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(strings.Fields(head.Comments[0].Text()), " ")
	claim := strings.Join(strings.Fields(
		strconv.Itoa(total)+" functions alone: "+strconv.Itoa(count["ref_ops.go"])+" here and "+strconv.Itoa(count["ref_vit.go"])+" in ref_vit.go"), " ")
	if !strings.Contains(want, claim) {
		t.Errorf("ref_ops.go's header must say %q", claim)
	}
}
