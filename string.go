// This file holds Cayley-STRING (docs/pe-zoo.md §20), separable
// translation-invariant RoPE in a learnable orthogonal basis (Schenck et
// al. 2025): R(r) = P·RoPE(r)·Pᵀ with P = (I − S)(I + S)⁻¹ the Cayley
// transform of a learnable skew-symmetric S, applied to q and k before
// q·kᵀ. Since P is orthogonal, R(r₁)ᵀR(r₂) = P·RoPE(r₂ − r₁)·Pᵀ: the logit
// depends only on the position difference, as for RoPE. RoPE(r) here is
// rope-mixed (rope.go, docs/pe-zoo.md §14.2): learnable 2-D frequencies per
// layer and head, rope-vit's init, integer grid positions, CLS unrotated
// (for CLS, R = P·I·Pᵀ = I).
//
// NOTE(spec): the outer P of P·RoPE(r)·Pᵀ is left out: q'·k' =
// (P·a)·(P·b) = a·b for the orthogonal P, so RoPE(r)·Pᵀ·q gives the same
// logits, attention and output at one Dh×Dh product less (docs/pe-zoo.md §20).
//
// NOTE(spec): no authors' code was available; the choices of the paper's
// text left open are: RoPE-Mixed inside (θ 10, rope-vit init); one S per
// layer shared by the heads, S = W − Wᵀ from a raw W initialised to zero, so
// training starts at P = I, i.e. exactly rope-mixed; CLS unrotated; the
// circulant-STRING variant is not implemented (docs/pe-zoo.md §20).
//
// Checkpoint names and shapes (L depth, H heads, Dh = D/H):
//
//	string  pos_embed.freqs     (2, L, H·Dh/2)  rope-mixed's, no weight decay
//	        pos_embed.cayley_s  (L, Dh, Dh)     raw W of S = W − Wᵀ, zeros, no weight decay

package loope

import (
	"fmt"
	"math/rand/v2"
)

func init() {
	registerPE("string", "Cayley-STRING: rope-mixed inside a learnable orthogonal basis P = Cayley(S), per layer, CLS unrotated",
		newString[float32], newString[float64])
}

// stringPE is string: a rope-mixed and one raw Cayley matrix per layer.
type stringPE[T Float] struct {
	NoHooks[T]
	mix *ropePE[T]
	W   *Tensor[T] // (L, Dh, Dh) raw, S = W − Wᵀ
	dh  int
}

func newString[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	dh, err := ropeHeadDim("string", cfg, 4)
	if err != nil {
		return nil, err
	}
	mix, err := newRopeMixed[T](cfg, rng)
	if err != nil {
		return nil, err
	}
	return &stringPE[T]{mix: mix.(*ropePE[T]), W: NewParam[T](cfg.Depth, dh, dh), dh: dh}, nil
}

func (p *stringPE[T]) Name() string { return "string" }

func (p *stringPE[T]) Params() []NamedParam[T] {
	return []NamedParam[T]{
		{Name: "pos_embed.freqs", T: p.mix.Freqs, NoDecay: true},
		{Name: "pos_embed.cayley_s", T: p.W, NoDecay: true},
	}
}

// basis returns layer's (Dh, Dh) orthogonal P = Cayley(W − Wᵀ).
func (p *stringPE[T]) basis(tp *Tape[T], layer int) *Tensor[T] {
	w := tp.Reshape(tp.Slice(p.W, 0, layer, layer+1), p.dh, p.dh)
	return tp.Cayley(tp.Sub(w, tp.Transpose(w, 0, 1)))
}

// RotateQK maps q and k (B, H, N, Dh) of every token to Pᵀ·x (the row
// vector x·P), then rotates the patch tokens by rope-mixed (skip 1).
func (p *stringPE[T]) RotateQK(tp *Tape[T], layer int, q, k *Tensor[T]) (*Tensor[T], *Tensor[T]) {
	pm := p.basis(tp, layer)
	c, s := p.mix.mixedCosSin(tp, layer)
	return tp.Rotate(tp.MatMul(q, pm), c, s, 1), tp.Rotate(tp.MatMul(k, pm), c, s, 1)
}

// attnTables exports the bases and rope-mixed angles (see AttentionPETables).
func (p *stringPE[T]) attnTables() (map[string]*Tensor[float64], string) {
	out, _ := p.mix.attnTables()
	var tp Tape[T]
	tp.NoGrad = true
	for l := range p.W.Shape[0] {
		out[fmt.Sprintf("string.basis.layer%d", l)] = toF64(p.basis(&tp, l))
		tp.Reset()
	}
	out["string.cayley_s"] = toF64(p.W)
	return out, fmt.Sprintf("string rotates q and k of token t in layer l, head h by P·RoPE(t)·Pᵀ: "+
		"first x ↦ Pᵀx with P = string.basis.layer<l> (Dh, Dh) = (%d, %d), the Cayley transform (I − S)(I + S)⁻¹ of "+
		"S = W − Wᵀ, W = string.cayley_s[l]; then, for patch tokens (CLS unrotated), the rope-mixed rotation of channel "+
		"pair j by rope.angles.layer<l>[h, t, j] = t_x·Fx + t_y·Fy radians, rope.freqs (2, L, H·Dh/2) holding Fx and Fy. "+
		"The final P cancels in q·k and is not applied.", p.dh, p.dh)
}
