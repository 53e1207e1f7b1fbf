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
// training starts at P = I, i.e. exactly rope-mixed; CLS unrotated
// (docs/pe-zoo.md §20).
//
// Circulant-STRING (PEConfig.StringBasis "circulant", -string-basis) is the
// paper's other form: R(r) = exp(r_x·L_x + r_y·L_y) with L_k = C_k − C_kᵀ
// for learnable circulant C_k (first row c_k). Circulant matrices commute and
// share the real Fourier basis F, so R(r) = F·RoPE(−φ(r))·Fᵀ: in the basis
// pairs (cos_j, sin_j) of F, pair j turns by −φ_j(r) = −(r_x·θ_xj + r_y·θ_yj)
// with θ_kj = 2·Σ_m c_k[m]·sin(2πmj/Dh), the eigenvalue iθ_kj of L_k; pair 0
// (the constant and alternating vectors, eigenvalue 0) does not turn. The
// code maps q and k to Fᵀx and rotates with those angles (the outer F
// cancels in q·k, as P does above).
//
// NOTE(spec): the circulant form's choices: one c_k per layer, head and axis
// (as rope-mixed's frequencies), integer grid positions, CLS unrotated, and
// c initialised to the minimum-norm c with θ_kj equal to rope-mixed's
// initial frequencies for the pairs j ≥ 1 (the columns of the sine map are
// orthogonal with squared norm 2·Dh, so c = Σ_j f_j·M[:, j]/(2·Dh)).
//
// Checkpoint names and shapes (L depth, H heads, Dh = D/H):
//
//	string            pos_embed.freqs        (2, L, H·Dh/2)  rope-mixed's, no weight decay
//	                  pos_embed.cayley_s     (L, Dh, Dh)     raw W of S = W − Wᵀ, zeros, no weight decay
//	string circulant  pos_embed.circulant_c  (L, 2·H, Dh)    first rows c of C_x (rows 0…H−1) and C_y, no weight decay

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
)

func init() {
	registerPE("string", "STRING: rope-mixed inside a learnable orthogonal basis P = Cayley(S) per layer (-string-basis circulant: exp of circulant skew generators), CLS unrotated",
		newString[float32], newString[float64])
}

// stringPE is string: a rope-mixed and one raw Cayley matrix per layer, or
// (circulant) the first rows of the circulant generators.
type stringPE[T Float] struct {
	NoHooks[T]
	mix *ropePE[T]
	W   *Tensor[T] // Cayley: (L, Dh, Dh) raw, S = W − Wᵀ
	C   *Tensor[T] // circulant: (L, 2H, Dh) first rows of C_x, C_y per head
	F   *Tensor[T] // circulant: (Dh, Dh) real Fourier basis, constant
	M   *Tensor[T] // circulant: (Dh, Dh/2) −2·sin(2πmj/Dh): c ↦ angle per unit position, constant
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
	p := &stringPE[T]{mix: mix.(*ropePE[T]), dh: dh}
	switch cfg.PE.StringBasis {
	case "", "cayley":
		p.W = NewParam[T](cfg.Depth, dh, dh)
	case "circulant":
		p.circulantInit(cfg.Depth, cfg.Heads)
	default:
		return nil, fmt.Errorf("loope: string: -string-basis %q: want cayley or circulant", cfg.PE.StringBasis)
	}
	return p, nil
}

// circulantInit builds F and M and sets C so that the angles start at
// rope-mixed's initial frequencies for the pairs j ≥ 1 (see the NOTE above).
func (p *stringPE[T]) circulantInit(depth, heads int) {
	n, half := p.dh, p.dh/2
	p.F, p.M = New[T](n, n), New[T](n, half)
	for a := range n {
		p.F.Data[a*n] = T(1 / math.Sqrt(float64(n)))
		p.F.Data[a*n+1] = T(float64(1-2*(a%2)) / math.Sqrt(float64(n)))
		for j := 1; j < half; j++ {
			s, c := math.Sincos(2 * math.Pi * float64(a*j%n) / float64(n))
			p.F.Data[a*n+2*j], p.F.Data[a*n+2*j+1] = T(math.Sqrt(2/float64(n))*c), T(math.Sqrt(2/float64(n))*s)
			p.M.Data[a*half+j] = T(-2 * s)
		}
	}
	p.C = NewParam[T](depth, 2*heads, n)
	f := p.mix.Freqs.Data // (2, L, H·half)
	for l := range depth {
		for k := range 2 {
			for h := range heads {
				c := p.C.Data[((l*2+k)*heads+h)*n:][:n]
				fk := f[((k*depth+l)*heads+h)*half:][:half]
				for m := range n {
					var v float64
					for j := 1; j < half; j++ {
						v += float64(fk[j]) * float64(p.M.Data[m*half+j])
					}
					c[m] = T(v / float64(2*n))
				}
			}
		}
	}
	p.mix.Freqs = nil // the angles come from C
}

func (p *stringPE[T]) Name() string { return "string" }

func (p *stringPE[T]) Params() []NamedParam[T] {
	if p.C != nil {
		return []NamedParam[T]{{Name: "pos_embed.circulant_c", T: p.C, NoDecay: true}}
	}
	return []NamedParam[T]{
		{Name: "pos_embed.freqs", T: p.mix.Freqs, NoDecay: true},
		{Name: "pos_embed.cayley_s", T: p.W, NoDecay: true},
	}
}

// basis returns layer's (Dh, Dh) orthogonal P = Cayley(W − Wᵀ), or the
// fixed Fourier basis F of the circulant form.
func (p *stringPE[T]) basis(tp *Tape[T], layer int) *Tensor[T] {
	if p.F != nil {
		return p.F
	}
	w := tp.Reshape(tp.Slice(p.W, 0, layer, layer+1), p.dh, p.dh)
	return tp.Cayley(tp.Sub(w, tp.Transpose(w, 0, 1)))
}

// RotateQK maps q and k (B, H, N, Dh) of every token to Pᵀ·x (the row
// vector x·P), then rotates the patch tokens (skip 1) by rope-mixed, or in
// the circulant form by the angles of c (see the file comment).
func (p *stringPE[T]) RotateQK(tp *Tape[T], layer int, q, k *Tensor[T]) (*Tensor[T], *Tensor[T]) {
	pm := p.basis(tp, layer)
	c, s := p.cosSin(tp, layer)
	return tp.Rotate(tp.MatMul(q, pm), c, s, 1), tp.Rotate(tp.MatMul(k, pm), c, s, 1)
}

// cosSin returns layer's rotation tables (H, G², Dh/2).
func (p *stringPE[T]) cosSin(tp *Tape[T], layer int) (*Tensor[T], *Tensor[T]) {
	if p.C == nil {
		return p.mix.mixedCosSin(tp, layer)
	}
	h, n := p.mix.heads, p.dh
	c := tp.Reshape(tp.Slice(p.C, 0, layer, layer+1), 2*h, n) // (2H, Dh)
	f := tp.Reshape(tp.MatMul(c, p.M), 2, h*p.mix.half)       // (2, H·Dh/2)
	return p.mix.cosSinOf(tp, f)
}

// attnTables exports the bases and rope-mixed angles (see AttentionPETables).
func (p *stringPE[T]) attnTables() (map[string]*Tensor[float64], string) {
	if p.C != nil {
		return p.circulantTables()
	}
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

// circulantTables exports the circulant form's Fourier basis, c and angles.
func (p *stringPE[T]) circulantTables() (map[string]*Tensor[float64], string) {
	var tp Tape[T]
	tp.NoGrad = true
	depth, hh := p.C.Shape[0], p.mix.heads*p.mix.half
	freqs := New[T](2, depth, hh) // rope-mixed's layout, from c
	for l := range depth {
		f := tp.MatMul(tp.Reshape(tp.Slice(p.C, 0, l, l+1), 2*p.mix.heads, p.dh), p.M) // (2H, Dh/2)
		copy(freqs.Data[l*hh:(l+1)*hh], f.Data[:hh])
		copy(freqs.Data[(depth+l)*hh:(depth+l+1)*hh], f.Data[hh:])
		tp.Reset()
	}
	mix := *p.mix
	mix.Freqs = freqs
	out, _ := mix.attnTables()
	out["string.basis"], out["string.circulant_c"] = toF64(p.F), toF64(p.C)
	return out, fmt.Sprintf("circulant string rotates q and k of token t in layer l, head h by exp(t_x·L_x + t_y·L_y), "+
		"L_k = C_k − C_kᵀ with C_k circulant of first row string.circulant_c[l, k·H + h] (L, 2H, Dh): first x ↦ Fᵀx with "+
		"F = string.basis (Dh, Dh) = (%d, %d), the real Fourier basis (columns: constant, alternating, then cos_j, sin_j); "+
		"then, for patch tokens (CLS unrotated), channel pair j turns by rope.angles.layer<l>[h, t, j] = t_x·Fx + t_y·Fy "+
		"radians, rope.freqs (2, L, H·Dh/2) holding Fx = −2·Σ_m c_x[m]·sin(2πmj/Dh) and Fy. The final F cancels in q·k.", p.dh, p.dh)
}
