// This file holds LieRE (docs/pe-zoo.md §19), Lie rotational position
// encodings (StanfordMIMI/LieRE models/rope_vit.py LierePositionEncoder with
// phase_type "naver", the "liere" architecture of its image classifier):
// the rotation of patch token t is R(t) = exp(p₀(t)·A₀ + p₁(t)·A₁) with two
// dense learnable Dh×Dh skew-symmetric generators, shared by every layer and
// head (rotary_embedding_per_layer and _per_head false, the authors'
// defaults), applied as R·q and R·k before q·kᵀ. The CLS token gets the
// identity. The generators need not commute, so unlike RoPE the logit is in
// general not a function of the position difference alone.
//
// Positions: p = (r/(G−1), c/(G−1)) ∈ [0, 1]² (torch.linspace(0, 1, G) per
// axis, cartesian_prod: axis 0 the row r, axis 1 the column c); G = 1 gives 0.
//
// NOTE(spec): the authors form the generator as U − Uᵀ with
// U = triu(W, 1) − 0.5, so the −0.5 cancels: A = triu(W, 1) − triu(W, 1)ᵀ.
// The Go code computes that exact form (it differs from the authors' float
// rounding by a few ulps); W's diagonal and lower triangle are stored (the
// checkpoint keeps the authors' tensor) but get no gradient (docs/pe-zoo.md §19).
//
// NOTE(spec): generator_dim defaults to 64 in the authors' ModelArgs, the
// head dim of every model they train, i.e. one dense Dh×Dh generator per
// axis; the Go code takes generator_dim = Dh for any head dim (docs/pe-zoo.md §19).
//
// NOTE(spec): the generators are not weight-decayed: the authors train with
// plain Adam (no decay at all), and decay would shrink every rotation toward
// the identity (docs/pe-zoo.md §19).
//
// Checkpoint name and shape (Dh = D/H):
//
//	liere  pos_embed.generator_raw_params  (2, 1, 1, Dh, Dh)  U[0, 2π), no weight decay

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
)

func init() {
	registerPE("liere", "LieRE: exp of 2 dense learnable Dh×Dh skew generators (positions in [0,1]²), shared by layers and heads, CLS unrotated",
		newLieRE[float32], newLieRE[float64])
}

// LieREPositions returns the (G², 2) LieRE patch positions (r/(G−1), c/(G−1)).
func LieREPositions(grid int) []float64 {
	p := make([]float64, 2*grid*grid)
	den := float64(max(grid-1, 1))
	for t := range grid * grid {
		p[2*t], p[2*t+1] = float64(t/grid)/den, float64(t%grid)/den
	}
	return p
}

// lierePE is liere.
type lierePE[T Float] struct {
	NoHooks[T]
	W    *Tensor[T] // (2, 1, 1, Dh, Dh) raw generators
	triu *Tensor[T] // (Dh, Dh) strict upper-triangle mask
	pos  *Tensor[T] // (G², 2) patch positions
	dh   int
	// The rotations are shared by every layer: built at layer 0 and reused
	// by the later layers of the same forward on the same tape.
	tape *Tape[T]
	rot  *Tensor[T] // (1, G², 1, Dh, Dh)
}

func newLieRE[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	dh := cfg.Dim / cfg.Heads
	if dh < 2 {
		return nil, fmt.Errorf("loope: liere needs a head dim (dim/heads) of at least 2, got %d", dh)
	}
	g := cfg.Grid()
	p := &lierePE[T]{W: NewParam[T](2, 1, 1, dh, dh), triu: New[T](dh, dh), pos: New[T](g*g, 2), dh: dh}
	for i := range p.W.Data {
		p.W.Data[i] = T(2 * math.Pi * rng.Float64())
	}
	for i := range dh {
		for j := i + 1; j < dh; j++ {
			p.triu.Data[i*dh+j] = 1
		}
	}
	for i, v := range LieREPositions(g) {
		p.pos.Data[i] = T(v)
	}
	return p, nil
}

func (p *lierePE[T]) Name() string { return "liere" }

func (p *lierePE[T]) Params() []NamedParam[T] {
	return []NamedParam[T]{{Name: "pos_embed.generator_raw_params", T: p.W, NoDecay: true}}
}

// rotations returns the (1, G², 1, Dh, Dh) rotations exp(p₀A₀ + p₁A₁).
func (p *lierePE[T]) rotations(tp *Tape[T]) *Tensor[T] {
	dh, n := p.dh, p.pos.Shape[0]
	u := tp.Mul(tp.Reshape(p.W, 2, dh, dh), p.triu)
	a := tp.Reshape(tp.Sub(u, tp.Transpose(u, -1, -2)), 2, dh*dh) // (2, Dh²) skew generators
	return tp.MatExp(tp.Reshape(tp.MatMul(p.pos, a), 1, n, 1, dh, dh))
}

// RotateQK rotates q and k (B, H, N, Dh) of the patch tokens (skip 1).
func (p *lierePE[T]) RotateQK(tp *Tape[T], layer int, q, k *Tensor[T]) (*Tensor[T], *Tensor[T]) {
	if layer == 0 || p.tape != tp || p.rot == nil {
		p.tape, p.rot = tp, p.rotations(tp)
	}
	return tp.RotateBlocks(q, p.rot, 1), tp.RotateBlocks(k, p.rot, 1)
}

// attnTables exports the generators and rotations (see AttentionPETables).
func (p *lierePE[T]) attnTables() (map[string]*Tensor[float64], string) {
	var tp Tape[T]
	tp.NoGrad = true
	dh, n := p.dh, p.pos.Shape[0]
	u := tp.Mul(tp.Reshape(p.W, 2, dh, dh), p.triu)
	out := map[string]*Tensor[float64]{
		"liere.generators": toF64(tp.Sub(u, tp.Transpose(u, -1, -2))),
		"liere.positions":  toF64(p.pos),
	}
	r := toF64(p.rotations(&tp))
	r.Shape = []int{n, dh, dh}
	out["liere.rotation"] = r
	return out, fmt.Sprintf("liere rotates q and k of patch token t (CLS unrotated) by the dense Dh×Dh matrix "+
		"liere.rotation[t] = exp(p₀·A₀ + p₁·A₁), (G², Dh, Dh) = (%d, %d, %d), the same in every layer and head; "+
		"A = liere.generators (2, Dh, Dh), the skew-symmetric generators of axis 0 (row) and 1 (column); "+
		"p = liere.positions[t] = (row, column)/(G−1).", n, dh, dh)
}
