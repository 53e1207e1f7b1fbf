// This file holds PaPE (docs/pe-zoo.md §22), parabolic position encoding
// (DTU-PAS/parabolic-position-encoding pape/nn/positions/pape_naive.py,
// ParabolicPositionEncoder, with pape/nn/encoder.py and
// pape/nn/image_classifier.py): an attention-logit bias that is a sum of K
// parabolas in the learnt relative position, with content-dependent
// curvature and slope. For layer l, head h, query token i, key token j:
//
//	u_t = W_pos·p_t                      (H·K values per token; p_t its position)
//	a_i = softplus(W_ab[0]·y_i), b_i = W_ab[1]·y_i   (y = LayerNorm1 output)
//	bias[h, i, j] = scale · Σ_k ( −a_ik·(u_ik − u_jk)² + b_ik·(u_ik − u_jk) )
//
// with scale = Dh^−½: the authors append the parabola features to q and k
// and scale the whole dot product, so the bias is scaled like q·k. The ViT
// hands PaPE the block's LayerNorm output through the attnInputPE hook.
//
// Positions (image_classifier.py, normalize false by default): patch token t
// at p = (c+1, r+1) (column first, 1-based integers), CLS at (0, 0).
//
// NOTE(spec): softplus is computed as log(1 + eˣ) (torch's softplus also
// switches to x above 20; the coefficients here stay far below)
// (docs/pe-zoo.md §22).
//
// NOTE(spec): K = 50 parabolas (the authors' PaPEConfig default), positions
// not normalised (their Config.normalize default), both Linear layers
// without bias and with PyTorch's default init U(±1/√fan_in); pape-ri is
// not implemented (docs/pe-zoo.md §22).
//
// Checkpoint names and shapes (L depth, H heads, D width, K = 50):
//
//	pape  pos_embed.position_encoder.<l>.position.weight  (H·K, 2)
//	      pos_embed.position_encoder.<l>.ab.weight        (2·H·K, D)

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
)

func init() {
	registerPE("pape", "PaPE: logit bias Σ of 50 parabolas in learnt relative positions, curvature/slope from the tokens, per layer",
		newPaPE[float32], newPaPE[float64])
}

// PaPEParabolas is the authors' default number of parabolas K per head.
const PaPEParabolas = 50

// attnInputPE is implemented by PEs whose attention bias reads the block's
// normalised input (PaPE): the ViT passes the LayerNorm output y (B, N, D)
// of block layer before its attention.
type attnInputPE[T Float] interface {
	attnInput(tp *Tape[T], layer int, y *Tensor[T])
}

// papePE is pape.
type papePE[T Float] struct {
	NoHooks[T]
	Pos   []*Tensor[T] // per layer (H·K, 2)
	AB    []*Tensor[T] // per layer (2·H·K, D)
	pos   *Tensor[T]   // (N, 2) token positions, CLS first
	y     *Tensor[T]   // the current block's LayerNorm output (B, N, D)
	heads int
	k     int
	scale float64
}

// PaPEPositions returns the (G²+1, 2) PaPE positions: CLS (0, 0), then
// patch t at (c+1, r+1).
func PaPEPositions(grid int) []float64 {
	p := make([]float64, 2*(grid*grid+1))
	for t := range grid * grid {
		p[2*(t+1)], p[2*(t+1)+1] = float64(t%grid+1), float64(t/grid+1)
	}
	return p
}

func newPaPE[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	if cfg.Heads <= 0 || cfg.Dim%cfg.Heads != 0 {
		return nil, fmt.Errorf("loope: pape needs dim divisible by heads, got %d and %d", cfg.Dim, cfg.Heads)
	}
	g, h, k := cfg.Grid(), cfg.Heads, PaPEParabolas
	p := &papePE[T]{pos: New[T](g*g+1, 2), heads: h, k: k, scale: 1 / math.Sqrt(float64(cfg.Dim/h))}
	for i, v := range PaPEPositions(g) {
		p.pos.Data[i] = T(v)
	}
	for range cfg.Depth {
		w := NewParam[T](h*k, 2).FillUniform(rng, -1/math.Sqrt(2), 1/math.Sqrt(2))
		ab := NewParam[T](2*h*k, cfg.Dim)
		b := 1 / math.Sqrt(float64(cfg.Dim))
		ab.FillUniform(rng, -b, b)
		p.Pos, p.AB = append(p.Pos, w), append(p.AB, ab)
	}
	return p, nil
}

func (p *papePE[T]) Name() string { return "pape" }

func (p *papePE[T]) Params() []NamedParam[T] {
	var ps []NamedParam[T]
	for l := range p.Pos {
		ps = append(ps,
			NamedParam[T]{Name: fmt.Sprintf("pos_embed.position_encoder.%d.position.weight", l), T: p.Pos[l]},
			NamedParam[T]{Name: fmt.Sprintf("pos_embed.position_encoder.%d.ab.weight", l), T: p.AB[l]})
	}
	return ps
}

func (p *papePE[T]) attnInput(tp *Tape[T], layer int, y *Tensor[T]) { p.y = y }

// AttnBias returns the (B, H, N, N) parabola bias of layer (see the file
// comment), built from the LayerNorm output the ViT passed to attnInput.
func (p *papePE[T]) AttnBias(tp *Tape[T], layer int, q *Tensor[T]) *Tensor[T] {
	y := p.y
	if y == nil {
		panic("loope: pape: AttnBias called before attnInput (the ViT passes each block's LayerNorm output first)")
	}
	b, n, h, k := y.Shape[0], y.Shape[1], p.heads, p.k
	u := tp.Transpose(tp.Reshape(tp.Linear(p.pos, p.Pos[layer], nil), n, h, k), 0, 1) // (H, N, K)
	ab := tp.Permute(tp.Reshape(tp.Linear(y, p.AB[layer], nil), b, n, 2, h, k), 2, 0, 3, 1, 4)
	parts := tp.Split(ab, 0, 1, 1)
	a := tp.Reshape(parts[0], b, h, n, k)
	a = tp.Log(tp.AddScalar(tp.Exp(a), 1)) // softplus
	bb := tp.Reshape(parts[1], b, h, n, k)
	au := tp.Mul(a, u) // (B, H, N, K)
	// Σ_k −a_ik u_ik² + b_ik u_ik: (B, H, N, 1), the same for every key j.
	self := tp.SumAxis(tp.Sub(tp.Mul(bb, u), tp.Mul(au, u)), -1, true)
	// Σ_k (2 a_ik u_ik − b_ik)·u_jk − a_ik·u_jk² as one product over 2K.
	c := tp.Concat(-1, tp.Sub(tp.Scale(au, 2), bb), tp.Scale(a, -1))                           // (B, H, N, 2K)
	c = tp.Reshape(tp.Permute(c, 1, 0, 2, 3), h, b*n, 2*k)                                     // (H, B·N, 2K)
	v := tp.Concat(-1, u, tp.Mul(u, u))                                                        // (H, N, 2K)
	cross := tp.Permute(tp.Reshape(tp.BatchMatMul(c, v, false, true), h, b, n, n), 1, 0, 2, 3) // (B, H, N, N)
	return tp.Scale(tp.Add(cross, self), p.scale)
}

// attnTables exports the PaPE weights and positions (see AttentionPETables).
// The bias depends on the tokens, so no bias table is exported.
func (p *papePE[T]) attnTables() (map[string]*Tensor[float64], string) {
	out := map[string]*Tensor[float64]{"pape.positions": toF64(p.pos)}
	for l := range p.Pos {
		out[fmt.Sprintf("pape.position.layer%d", l)] = toF64(p.Pos[l])
		out[fmt.Sprintf("pape.ab.layer%d", l)] = toF64(p.AB[l])
	}
	return out, fmt.Sprintf("pape adds to the logit of query i, key j in layer l, head h the bias "+
		"Dh^−½·Σ_k(−a_ik(u_ik − u_jk)² + b_ik(u_ik − u_jk)), K = %d parabolas: u = pape.position.layer<l>·p "+
		"(H·K, 2) with p = pape.positions (CLS (0, 0), patch (column+1, row+1)); (a, b) = (softplus, identity) of "+
		"pape.ab.layer<l>·y (2·H·K, D), y the block's LayerNorm output, so the bias depends on the image and is "+
		"not exported.", p.k)
}
