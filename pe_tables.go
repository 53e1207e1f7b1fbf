// This file exports the tables of the PEs: PETable, the (N, D) table an
// additive PE adds to the tokens, and, for `loope pe`, the tables of the
// attention-side and convolutional PEs (rpe, irpe, irpe-ctx, rope-*, cpvt,
// comrope-*, liere, string, rope-dinov3, pape), which add no (N, D) table
// to the input, so their lookup tables, biases, angles, rotation matrices
// or weights are exported instead, under descriptive names, with a text
// that explains them.

package loope

import (
	"fmt"
	"math"
)

// attnTabler is implemented by the PEs AttentionPETables knows.
type attnTabler interface {
	attnTables() (map[string]*Tensor[float64], string)
}

// AttentionPETables builds the model cfg with seed (as NewViT) and returns
// the tables of its attention-side or convolutional PE with an explanation:
//
//	rpe         rpe.index (N, N), rpe.table.layer<l> ((2G−1)²+3, H), rpe.bias.layer<l> (H, N, N)
//	irpe        irpe.buckets (N, N), irpe.table.layer<l> (H, K), irpe.bias.layer<l> (H, N, N)
//	irpe-ctx    irpe.buckets (N, N), irpe_ctx.table.layer<l> (Dh, K), pos_embed (1, N, D)
//	rope-axial  rope.angles (G², Dh/2)
//	rope-1d     rope.angles (G², Dh/2)
//	rope-mixed  rope.freqs (2, L, H·Dh/2), rope.angles.layer<l> (H, G², Dh/2)
//	cpvt        cpvt.weight (D, 1, 3, 3), cpvt.bias (D)
//	comrope-ap  comrope.positions (N, 2), comrope.freqs.layer<l> (H, 1, Dh/b, b, b),
//	            comrope.rotation.layer<l> (H, N, Dh/b, b, b)
//	comrope-ld  as comrope-ap, plus comrope.multiplier.layer<l> (1, 2, Dh/b, 1, 1)
//	liere       liere.positions (G², 2), liere.generators (2, Dh, Dh), liere.rotation (G², Dh, Dh)
//	rope-dinov3 rope.coords (G², 2), rope.angles (G², Dh/2) (inference angles)
//	pape        pape.positions (N, 2), pape.position.layer<l> (H·K, 2), pape.ab.layer<l> (2·H·K, D)
//	string      rope.freqs, rope.angles.layer<l> (as rope-mixed), string.cayley_s (L, Dh, Dh),
//	            string.basis.layer<l> (Dh, Dh)
//
// Integer tables (index, buckets) are stored as float64. Other PEs are an
// error.
func AttentionPETables(cfg Config, seed uint64) (map[string]*Tensor[float64], string, error) {
	m, err := NewViT[float64](cfg, seed)
	if err != nil {
		return nil, "", err
	}
	return AttentionPETablesOf(m.PE)
}

// AttentionPETablesOf is AttentionPETables for the PE of an existing
// model, e.g. one loaded from a checkpoint, whose tables are learnt.
func AttentionPETablesOf[T Float](pe PosEmb[T]) (map[string]*Tensor[float64], string, error) {
	t, ok := pe.(attnTabler)
	if !ok {
		return nil, "", fmt.Errorf("loope: PE %q is not an attention-side or convolutional PE (want rpe, irpe, irpe-ctx, rope-axial, rope-mixed, rope-1d, cpvt, comrope-ap, comrope-ld, liere, string, rope-dinov3 or pape)", pe.Name())
	}
	tables, text := t.attnTables()
	return tables, text, nil
}

// PETable returns the additive positional table m's PE adds to the tokens
// of image img (1, C, H, W), as (N, D) float64 rows with the CLS row first:
// AddInput applied to zero tokens. It returns nil if the PE adds nothing
// there (none, RoPE, relative biases, CPVT), and an error if AddInput is
// not additive, i.e. AddInput(x) − x differs from AddInput(0) for random x.
func PETable[T Float](m *ViT[T], img *Tensor[T]) ([]float64, error) {
	return PETableOf(m.PE, m.Cfg, img)
}

// PETableOf is PETable for the PE pe of any model, built for the config c
// (a ViT's or CaiT's config, or a CrossViT branch's, CrossViTBranch.Cfg):
// AddInput on c.Tokens() zero tokens of width c.Dim.
func PETableOf[T Float](pe PosEmb[T], c Config, img *Tensor[T]) ([]float64, error) {
	if len(img.Shape) != 4 || img.Shape[0] != 1 {
		panic(fmt.Sprintf("loope: PETable: image shape %v, want (1, %d, %d, %d)", img.Shape, c.Channels, c.Image, c.Image))
	}
	n, d := c.Tokens(), c.Dim
	tp := &Tape[T]{NoGrad: true}
	zero := New[T](1, n, d)
	out := pe.AddInput(tp, zero, img)
	if out == zero {
		return nil, nil
	}
	table := make([]float64, n*d)
	nonzero := false
	for i, v := range out.Data {
		table[i] = float64(v)
		nonzero = nonzero || v != 0
	}
	if !nonzero {
		return nil, nil
	}
	x := New[T](1, n, d)
	for i := range x.Data {
		x.Data[i] = T(math.Sin(float64(i)))
	}
	tp.Reset()
	out = pe.AddInput(tp, x, img)
	var scale float64
	for _, v := range table {
		scale = max(scale, math.Abs(v))
	}
	for i, v := range out.Data {
		if diff := math.Abs(float64(v) - float64(x.Data[i]) - table[i]); diff > 1e-4*(1+scale) {
			return nil, fmt.Errorf("loope: PE %s: AddInput is not additive (token %d, dim %d off by %g)", pe.Name(), i/d, i%d, diff)
		}
	}
	return table, nil
}
