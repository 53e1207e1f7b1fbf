// This file holds ComRoPE (docs/pe-zoo.md §18), RoPE with trainable
// commuting angle matrices (Longin-Yu/ComRoPE model.py,
// ComRoPEAPAttention and ComRoPELDAttention): per layer and head the
// rotation of token t is R(t) = exp(Σᵢ xᵢ(t)·Aᵢ), Aᵢ block-diagonal with
// b×b skew-symmetric blocks, applied to q and k (R·q) before q·kᵀ.
//
//   - comrope-ap (axis-partitioned): block j belongs to axis j mod 2 and is
//     B_j = P_j − P_jᵀ there, zero in the other axis's generator;
//   - comrope-ld (linearly dependent): block j of axis i is θ_{ij}·(P_j − P_jᵀ).
//
// Both make the generators commute, so qᵢ·kⱼ sees R(xᵢ)ᵀR(xⱼ) = R(xⱼ − xᵢ):
// the logit depends only on the position difference.
//
// Positions (model.py get_positions, axis_scale, prepend_cls): token 0
// (CLS) sits at (0.5, 0.5), patch token t at ((r+½)/G, (c+½)/G) with r = ⌊t/G⌋
// the row (axis 0) and c = t mod G the column (axis 1). Every token, CLS
// included, is rotated.
//
// NOTE(spec): the authors' config default block size b = 2 is used
// (-comrope-block); the paper's tables vary it and the code leaves the
// choice to the run (docs/pe-zoo.md §18).
//
// NOTE(spec): the authors' training-time position perturbation and offset
// (get_positions perturbation_intensity, offset_intensity, 0 by default)
// are not implemented: positions are always the plain grid (docs/pe-zoo.md §18).
//
// NOTE(spec): the ComRoPE tensors are weight-decayed like the attention
// weights they replace (the authors' training script is not published;
// rope-mixed's frequencies are not decayed) (docs/pe-zoo.md §18).
//
// Checkpoint names and shapes (L depth, H heads, Dh = D/H, b block size,
// m = Dh/b blocks; every layer has its own, as each authors' attention layer):
//
//	comrope-ap  pos_embed.self_attn.<l>.freqs       (H, 1, m, b, b)  N(0, 1)
//	comrope-ld  pos_embed.self_attn.<l>.freqs       (H, 1, m, b, b)  N(0, 1)
//	            pos_embed.self_attn.<l>.multiplier  (1, 2, m, 1, 1)  N(0, 1)

package loope

import (
	"fmt"
	"math/rand/v2"
)

func init() {
	registerPE("comrope-ap", "ComRoPE-AP: exp of per-axis block-diagonal skew generators (b 2), per layer and head, CLS at (½, ½)",
		newComRoPE[float32](false), newComRoPE[float64](false))
	registerPE("comrope-ld", "ComRoPE-LD: exp of θ_axis·(P−Pᵀ) block generators (b 2), per layer and head, CLS at (½, ½)",
		newComRoPE[float32](true), newComRoPE[float64](true))
}

// ComRoPEBlock is the default block size b of ComRoPE (the authors'
// CustomVITConfig.block_size).
const ComRoPEBlock = 2

// ComRoPEPositions returns the (G²+1, 2) ComRoPE token positions, CLS first
// at (0.5, 0.5), then patch t at ((r+½)/G, (c+½)/G), r row, c column.
func ComRoPEPositions(grid int) []float64 {
	p := make([]float64, 2*(grid*grid+1))
	p[0], p[1] = 0.5, 0.5
	for t := range grid * grid {
		p[2*(t+1)] = (float64(t/grid) + 0.5) / float64(grid)
		p[2*(t+1)+1] = (float64(t%grid) + 0.5) / float64(grid)
	}
	return p
}

// comropePE is comrope-ap (ld false) or comrope-ld.
type comropePE[T Float] struct {
	NoHooks[T]
	ld    bool
	Freqs []*Tensor[T] // per layer (H, 1, m, b, b)
	Mult  []*Tensor[T] // per layer (1, 2, m, 1, 1), ld only
	pos   *Tensor[T]   // (N, 2) token positions, CLS first
	apc   *Tensor[T]   // (1, N, m, 1, 1) AP coefficient: position on block j's axis
	heads int
	block int
}

// comropeBlock checks the ComRoPE block size against the head dim.
func comropeBlock(name string, cfg Config) (dh, b int, err error) {
	dh, b = cfg.Dim/cfg.Heads, cfg.PE.ComRoPEBlock
	if b == 0 {
		b = ComRoPEBlock
	}
	if b < 0 {
		return 0, 0, fmt.Errorf("loope: %s: -comrope-block must be positive, got %d", name, b)
	}
	if name == "comrope-ap" && (dh%2 != 0 || (dh/2)%b != 0) {
		return 0, 0, fmt.Errorf("loope: comrope-ap: -comrope-block %d must divide half the head dim (dim/heads/2; head dim %d), so each axis gets whole blocks", b, dh)
	}
	if dh%b != 0 {
		return 0, 0, fmt.Errorf("loope: %s: -comrope-block %d must divide the head dim (dim/heads = %d)", name, b, dh)
	}
	return dh, b, nil
}

func newComRoPE[T Float](ld bool) func(cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	return func(cfg Config, rng *rand.Rand) (PosEmb[T], error) {
		name := "comrope-ap"
		if ld {
			name = "comrope-ld"
		}
		dh, b, err := comropeBlock(name, cfg)
		if err != nil {
			return nil, err
		}
		m, g := dh/b, cfg.Grid()
		n := g*g + 1
		p := &comropePE[T]{ld: ld, heads: cfg.Heads, block: b, pos: New[T](n, 2)}
		pos := ComRoPEPositions(g)
		for i, v := range pos {
			p.pos.Data[i] = T(v)
		}
		if !ld {
			p.apc = New[T](1, n, m, 1, 1)
			for t := range n {
				for j := range m {
					p.apc.Data[t*m+j] = T(pos[2*t+j%2])
				}
			}
		}
		for range cfg.Depth {
			f := NewParam[T](cfg.Heads, 1, m, b, b)
			for i := range f.Data {
				f.Data[i] = T(rng.NormFloat64())
			}
			p.Freqs = append(p.Freqs, f)
			if ld {
				mu := NewParam[T](1, 2, m, 1, 1)
				for i := range mu.Data {
					mu.Data[i] = T(rng.NormFloat64())
				}
				p.Mult = append(p.Mult, mu)
			}
		}
		return p, nil
	}
}

func (p *comropePE[T]) Name() string {
	if p.ld {
		return "comrope-ld"
	}
	return "comrope-ap"
}

func (p *comropePE[T]) Params() []NamedParam[T] {
	var ps []NamedParam[T]
	for l, f := range p.Freqs {
		ps = append(ps, NamedParam[T]{Name: fmt.Sprintf("pos_embed.self_attn.%d.freqs", l), T: f})
		if p.ld {
			ps = append(ps, NamedParam[T]{Name: fmt.Sprintf("pos_embed.self_attn.%d.multiplier", l), T: p.Mult[l]})
		}
	}
	return ps
}

// rotations returns layer's (H, N, m, b, b) rotation blocks exp(Σᵢ xᵢ·Aᵢ):
// the generator of block j of token t is c[t, j]·(P_j − P_jᵀ) with
// c = x_{j mod 2} (AP) or c = x·θ (LD, θ (2, m)).
func (p *comropePE[T]) rotations(tp *Tape[T], layer int) *Tensor[T] {
	f := p.Freqs[layer]
	h, m, b := f.Shape[0], f.Shape[2], f.Shape[3]
	n := p.pos.Shape[0]
	s := tp.Reshape(tp.Sub(f, tp.Transpose(f, -1, -2)), h, 1, m, b, b) // skew P − Pᵀ
	c := p.apc
	if p.ld {
		c = tp.Reshape(tp.MatMul(p.pos, tp.Reshape(p.Mult[layer], 2, m)), 1, n, m, 1, 1)
	}
	return tp.MatExp(tp.Mul(c, s)) // (H, N, m, b, b)
}

// RotateQK rotates q and k (B, H, N, Dh) of every token, CLS included.
func (p *comropePE[T]) RotateQK(tp *Tape[T], layer int, q, k *Tensor[T]) (*Tensor[T], *Tensor[T]) {
	r := p.rotations(tp, layer)
	return tp.RotateBlocks(q, r, 0), tp.RotateBlocks(k, r, 0)
}

// attnTables exports the rotation blocks (see AttentionPETables).
func (p *comropePE[T]) attnTables() (map[string]*Tensor[float64], string) {
	out := map[string]*Tensor[float64]{}
	var tp Tape[T]
	tp.NoGrad = true
	for l, f := range p.Freqs {
		out[fmt.Sprintf("comrope.freqs.layer%d", l)] = toF64(f)
		if p.ld {
			out[fmt.Sprintf("comrope.multiplier.layer%d", l)] = toF64(p.Mult[l])
		}
		out[fmt.Sprintf("comrope.rotation.layer%d", l)] = toF64(p.rotations(&tp, l))
		tp.Reset()
	}
	out["comrope.positions"] = toF64(p.pos)
	n, m, b := p.pos.Shape[0], p.Freqs[0].Shape[2], p.block
	gen := "block j of axis j mod 2 is P_j − P_jᵀ (P = comrope.freqs.layer<l>)"
	if p.ld {
		gen = "block j of axis i is θ_ij·(P_j − P_jᵀ) (P = comrope.freqs.layer<l>, θ = comrope.multiplier.layer<l>)"
	}
	return out, fmt.Sprintf("%s rotates q and k of token t (CLS included, at comrope.positions row 0) in layer l, head h, "+
		"channel block j (channels jb…jb+b−1) by the b×b matrix comrope.rotation.layer<l>[h, t, j] = exp(x₀A₀ + x₁A₁), "+
		"(H, N, Dh/b, b, b) = (%d, %d, %d, %d, %d); x = comrope.positions[t] (row, column in (0, 1)), %s.",
		p.Name(), p.heads, n, m, b, b, gen)
}
