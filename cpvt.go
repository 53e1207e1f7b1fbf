// This file holds the CPVT positional encoding generator (PEG, docs/pe-zoo.md §11;
// Chu et al. 2021, Algorithm 1; Meituan-AutoML/Twins gvt.py PosCNN, timm
// twins.py PosConv): after block 0 the patch tokens, as a (B, D, G, G) map in
// raster order, go through a depthwise 3×3 convolution with zero padding 1
// and bias, plus a residual; the CLS token passes through unchanged. No APE:
// the zero padding is what leaks absolute position.
//
// Checkpoint names and shapes (D width):
//
//	pos_embed.peg.proj.weight  (D, 1, 3, 3)  weight-decayed
//	pos_embed.peg.proj.bias    (D)           no weight decay
//
// NOTE(spec): init is PyTorch's Conv2d default, as in the CPVT demo and the
// LOOPE repo (docs/pe-zoo.md §11): kaiming_uniform(a = √5), i.e. weight and bias
// U(±1/√fan_in) with fan_in = 9 (one input channel per group), so U(±1/3).
// Twins/CPVTv2 instead draw N(0, 2/9) and exclude the PEG from weight
// decay; here the weight follows timm's default rule (decay on ≥ 2-D
// weights), the bias does not decay.

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
)

func init() {
	registerPE("cpvt", "CPVT PEG: depthwise 3×3 conv + residual on the patch tokens after block 0, CLS passed through, no APE",
		newCPVT[float32], newCPVT[float64])
}

// cpvtPE is the "cpvt" PE.
type cpvtPE[T Float] struct {
	NoHooks[T]
	W, B *Tensor[T] // (D, 1, 3, 3), (D)
	grid int        // G
}

func newCPVT[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	d := cfg.Dim
	bound := 1 / math.Sqrt(9)
	p := &cpvtPE[T]{grid: cfg.Grid(), W: NewParam[T](d, 1, 3, 3).FillUniform(rng, -bound, bound)}
	p.B = NewParam[T](d).FillUniform(rng, -bound, bound)
	return p, nil
}

func (p *cpvtPE[T]) Name() string { return "cpvt" }

func (p *cpvtPE[T]) Params() []NamedParam[T] {
	return []NamedParam[T]{
		{Name: "pos_embed.peg.proj.weight", T: p.W},
		{Name: "pos_embed.peg.proj.bias", T: p.B, NoDecay: true},
	}
}

// AfterBlock applies the PEG after block 0: for x (B, N, D) the patch rows
// X (B, G², D) become X + DWConv(X) on the (B, D, G, G) map.
func (p *cpvtPE[T]) AfterBlock(tp *Tape[T], i int, x *Tensor[T]) *Tensor[T] {
	if i != 0 {
		return x
	}
	b, n, d, g := x.Shape[0], x.Shape[1], x.Shape[2], p.grid
	if n != g*g+1 {
		panic(fmt.Sprintf("loope: cpvt: tokens %v, want (B, %d, D)", x.Shape, g*g+1))
	}
	cls := tp.Slice(x, 1, 0, 1)
	m := tp.Reshape(tp.Transpose(tp.Slice(x, 1, 1, n), 1, 2), b, d, g, g)
	y := tp.Add(tp.Conv2d(m, p.W, p.B, 1, 1, d), m)
	y = tp.Transpose(tp.Reshape(y, b, d, g*g), 1, 2)
	return tp.Concat(1, cls, y)
}

// attnTables exports the PEG kernel (see AttentionPETables).
func (p *cpvtPE[T]) attnTables() (map[string]*Tensor[float64], string) {
	return map[string]*Tensor[float64]{"cpvt.weight": toF64(p.W), "cpvt.bias": toF64(p.B)},
		fmt.Sprintf("cpvt has no position table: after block 0 it adds a depthwise 3×3 convolution (zero padding 1) of the "+
			"(D, G, G) patch map to itself; cpvt.weight (D, 1, 3, 3) and cpvt.bias (D) are that kernel, G = %d.", p.grid)
}
