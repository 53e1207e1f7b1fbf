// This file holds the relative-position attention biases (docs/pe-zoo.md §12–§13), each
// added to the attention logits after (q·scale)·kᵀ and before the softmax:
//
//   - rpe: a learnable 2-D relative position bias over the whole patch grid
//     (Swin's index, (2G−1)² entries per head) plus BEiT's three CLS entries,
//     one table per layer (timm beit.py gen_relative_position_index);
//   - irpe: iRPE bias mode, product method, ratio 1.9, per head, skip 1
//     (microsoft/Cream iRPE/DeiT-with-iRPE/irpe.py), no APE;
//   - irpe-ctx: iRPE contextual product mode on keys, shared head, ratio 1.9,
//     skip 1, the released deit_tiny_patch16_224_ctx_product_50_shared_k,
//     which keeps timm's learnable APE.
//
// Checkpoint names and shapes (G grid side, N = G²+1 tokens, D width,
// L depth, H heads, Dh = D/H, K = 50 iRPE buckets at ratio 1.9):
//
//	rpe       pos_embed.rel_pos.<l>.relative_position_bias_table  ((2G−1)²+3, H)  per layer, no weight decay
//	irpe      pos_embed.rpe_k.<l>.lookup_table_bias                (H, K)          per layer
//	irpe-ctx  pos_embed                                            (1, N, D)       APE, no weight decay
//	          pos_embed.rpe_k.<l>.lookup_table_weight              (1, Dh, K)      per layer
//
// NOTE(spec): rpe uses BEiT's index (the CLS pairs get three learnable
// entries; docs/pe-zoo.md §12, 2,196 per layer, 26,352 for ti16) but
// Swin's init trunc_normal(std .02), which the LOOPE repo's RPE also uses
// (docs/pe-zoo.md §12); BEiT inits it to zeros. No APE (docs/paper.md §10 #22).
//
// NOTE(spec): iRPE's skip token (CLS) is not bias-free: every pair in row 0
// or column 0 uses one extra bucket K−1 (irpe.py get_bucket_ids_2d), so CLS
// pairs share one learnable entry (bias mode) or one learnable vector r
// (contextual). iRPE tables start at zero (irpe.py, initializer no-op) and,
// as in iRPE's DeiT training, are weight-decayed (2-D/3-D, not in
// no_weight_decay); its APE is not.

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
)

func init() {
	registerPE("rpe", "2-D relative position bias (Swin index over the grid + BEiT's 3 CLS entries), per layer and head, trunc_normal .02",
		newRPE[float32], newRPE[float64])
	registerPE("irpe", "iRPE bias mode (product, ratio 1.9, per head, skip 1), per layer, zero init, no APE",
		newIRPEBias[float32], newIRPEBias[float64])
	registerPE("irpe-ctx", "iRPE contextual product on keys (ratio 1.9, shared head, skip 1) + learnable APE (DeiT-Ti release)",
		newIRPECtx[float32], newIRPECtx[float64])
}

// IRPERatio is the ratio of the released iRPE DeiT-Tiny config
// (α = ratio, β = 2·ratio, γ = 8·ratio; docs/pe-zoo.md §13.1).
const IRPERatio = 1.9

// RelPosIndex returns the (N, N) BEiT relative-position index, N = G²+1
// with CLS at 0 (timm beit.py gen_relative_position_index; docs/pe-zoo.md §12).
// For patch tokens i = (r_i, c_i), j = (r_j, c_j) (raster, row-major):
// idx = (r_i − r_j + G − 1)·(2G − 1) + (c_i − c_j + G − 1); with
// T = (2G−1)² + 3 table rows, row 0 (CLS as query) is T−3, column 0 (CLS
// as key) T−2 and [0, 0] T−1.
func RelPosIndex(grid int) []int {
	n, w := grid*grid+1, 2*grid-1
	t := w*w + 3
	idx := make([]int, n*n)
	for i := 1; i < n; i++ {
		ri, ci := (i-1)/grid, (i-1)%grid
		for j := 1; j < n; j++ {
			rj, cj := (j-1)/grid, (j-1)%grid
			idx[i*n+j] = (ri-rj+grid-1)*w + (ci - cj + grid - 1)
		}
		idx[i*n] = t - 2
	}
	for j := 1; j < n; j++ {
		idx[j] = t - 3
	}
	idx[0] = t - 1
	return idx
}

// IRPEPiecewise is iRPE's piecewise index g(x) (irpe.py piecewise_index,
// Eq. 18 of Wu et al. 2021) for an integer offset x: x itself if |x| ≤ α,
// else sign(x)·min(β, round(α + ln(|x|/α)/ln(γ/α)·(β − α))) truncated to an
// integer. round is half-to-even (torch.round).
func IRPEPiecewise(x int, alpha, beta, gamma float64) int {
	ax := math.Abs(float64(x))
	if ax <= alpha {
		return x
	}
	v := math.Min(math.RoundToEven(alpha+math.Log(ax/alpha)/math.Log(gamma/alpha)*(beta-alpha)), beta)
	if x < 0 {
		v = -v
	}
	return int(v) // torch .to(long) truncates toward zero
}

// IRPEProductBuckets returns iRPE's product-method bucket ids (N, N) for a
// G×G grid with one skip (CLS) token, N = G²+1, and the bucket count K.
// With α, β, γ = ratio·(1, 2, 8), b = ⌊β⌋, S = 2b+1 and the offsets
// Δr = r_i − r_j, Δc = c_i − c_j of query i and key j:
// id = (g(Δr) + b)·S + (g(Δc) + b) ∈ [0, S²); every pair in row 0 or
// column 0 gets the extra id S², so K = S² + 1 (50 at ratio 1.9).
func IRPEProductBuckets(grid int, ratio float64) (ids []int, k int) {
	alpha, beta, gamma := ratio, 2*ratio, 8*ratio
	b := int(beta)
	s := 2*b + 1
	k = s*s + 1
	g := make([]int, 2*grid-1) // g(Δ) + b for Δ = −(G−1)…G−1
	for d := range g {
		g[d] = IRPEPiecewise(d-(grid-1), alpha, beta, gamma) + b
	}
	n := grid*grid + 1
	ids = make([]int, n*n)
	for i := range n {
		for j := range n {
			if i == 0 || j == 0 {
				ids[i*n+j] = k - 1
				continue
			}
			ri, ci, rj, cj := (i-1)/grid, (i-1)%grid, (j-1)/grid, (j-1)%grid
			ids[i*n+j] = g[ri-rj+grid-1]*s + g[ci-cj+grid-1]
		}
	}
	return ids, k
}

// rpePE is the "rpe" PE: per layer a learnable table ((2G−1)²+3, H),
// looked up through RelPosIndex into an (H, N, N) logit bias.
type rpePE[T Float] struct {
	NoHooks[T]
	Tables []*Tensor[T] // L × ((2G−1)²+3, H)
	index  []int        // (N, N) RelPosIndex
	n      int          // N
	heads  int          // H
}

func newRPE[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	g := cfg.Grid()
	rows := (2*g-1)*(2*g-1) + 3
	p := &rpePE[T]{index: RelPosIndex(g), n: g*g + 1, heads: cfg.Heads, Tables: make([]*Tensor[T], cfg.Depth)}
	for l := range p.Tables {
		p.Tables[l] = NewParam[T](rows, cfg.Heads)
		truncNormal(p.Tables[l].Data, rng, 0.02)
	}
	return p, nil
}

func (p *rpePE[T]) Name() string { return "rpe" }

func (p *rpePE[T]) Params() []NamedParam[T] {
	ps := make([]NamedParam[T], len(p.Tables))
	for l, t := range p.Tables {
		ps[l] = NamedParam[T]{Name: fmt.Sprintf("pos_embed.rel_pos.%d.relative_position_bias_table", l), T: t, NoDecay: true}
	}
	return ps
}

// AttnBias returns bias[h, i, j] = table[index[i, j], h], shape (H, N, N).
func (p *rpePE[T]) AttnBias(tp *Tape[T], layer int, q *Tensor[T]) *Tensor[T] {
	g := tp.Gather(p.Tables[layer], 0, p.index) // (N², H)
	return tp.Reshape(tp.Transpose(g, 0, 1), p.heads, p.n, p.n)
}

// irpePE is iRPE with the product method on keys: bias mode (per-head
// scalar per bucket) or contextual mode (shared-head vector per bucket,
// dotted with the scaled query), one table per layer.
type irpePE[T Float] struct {
	NoHooks[T]
	ctx    bool
	APE    *Tensor[T]   // (1, N, D) timm pos_embed (contextual only)
	Tables []*Tensor[T] // L × (H, K) bias mode, or L × (1, Dh, K) contextual
	ids    []int        // (N, N) IRPEProductBuckets
	n, k   int          // N, K
	heads  int          // H
	dh     int          // Dh
}

func newIRPE[T Float](cfg Config, rng *rand.Rand, ctx bool) *irpePE[T] {
	g := cfg.Grid()
	ids, k := IRPEProductBuckets(g, IRPERatio)
	p := &irpePE[T]{ctx: ctx, ids: ids, n: g*g + 1, k: k, heads: cfg.Heads, dh: cfg.Dim / cfg.Heads,
		Tables: make([]*Tensor[T], cfg.Depth)}
	if ctx {
		p.APE = NewParam[T](1, cfg.Tokens(), cfg.Dim)
		truncNormal(p.APE.Data, rng, 0.02)
	}
	for l := range p.Tables {
		if ctx {
			p.Tables[l] = NewParam[T](1, p.dh, k) // zeros, as irpe.py
		} else {
			p.Tables[l] = NewParam[T](cfg.Heads, k)
		}
	}
	return p
}

func newIRPEBias[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	return newIRPE[T](cfg, rng, false), nil
}

func newIRPECtx[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	return newIRPE[T](cfg, rng, true), nil
}

func (p *irpePE[T]) Name() string {
	if p.ctx {
		return "irpe-ctx"
	}
	return "irpe"
}

func (p *irpePE[T]) Params() []NamedParam[T] {
	var ps []NamedParam[T]
	name := "pos_embed.rpe_k.%d.lookup_table_bias"
	if p.ctx {
		ps = append(ps, NamedParam[T]{Name: "pos_embed", T: p.APE, NoDecay: true})
		name = "pos_embed.rpe_k.%d.lookup_table_weight"
	}
	for l, t := range p.Tables {
		ps = append(ps, NamedParam[T]{Name: fmt.Sprintf(name, l), T: t})
	}
	return ps
}

// AddInput adds the APE (contextual mode only).
func (p *irpePE[T]) AddInput(tp *Tape[T], x, img *Tensor[T]) *Tensor[T] {
	if p.APE == nil {
		return x
	}
	return tp.Add(x, p.APE)
}

// AttnBias returns, in bias mode, bias[h, i, j] = b[h, id(i, j)] (H, N, N);
// in contextual mode bias[b, h, i, j] = Σ_d q_s[b, h, i, d]·W[d, id(i, j)]
// (B, H, N, N) with the scaled query q_s = q·Dh^−½ (irpe.py
// forward_rpe_transpose: a MatMul to (B, H, N, K), then a per-row gather).
func (p *irpePE[T]) AttnBias(tp *Tape[T], layer int, q *Tensor[T]) *Tensor[T] {
	t := p.Tables[layer]
	if !p.ctx {
		b := tp.TakeAlongLast(tp.Reshape(t, p.heads, 1, p.k), p.ids, p.n*p.n) // (H, 1, N²)
		return tp.Reshape(b, p.heads, p.n, p.n)
	}
	qs := tp.Scale(q, 1/math.Sqrt(float64(p.dh)))
	lt := tp.MatMul(qs, tp.Reshape(t, p.dh, p.k)) // (B, H, N, K)
	return tp.TakeAlongLast(lt, p.ids, p.n)
}

// attnTables exports the rpe tables and the biases they give (see
// AttentionPETables).
func (p *rpePE[T]) attnTables() (map[string]*Tensor[float64], string) {
	out := map[string]*Tensor[float64]{"rpe.index": intsTensor(p.index, p.n, p.n)}
	var tp Tape[T]
	tp.NoGrad = true
	for l, t := range p.Tables {
		out[fmt.Sprintf("rpe.table.layer%d", l)] = toF64(t)
		out[fmt.Sprintf("rpe.bias.layer%d", l)] = toF64(p.AttnBias(&tp, l, nil))
	}
	return out, fmt.Sprintf("rpe adds bias.layer<l>[h, i, j] = table.layer<l>[index[i, j], h] to the attention logits of "+
		"layer l (query i, key j; token 0 is CLS, patch t is token t+1); (H, N, N) = (%d, %d, %d). index (N, N) is the "+
		"Swin index (Δrow+G−1)(2G−1)+(Δcol+G−1) over the grid, with rows T−3 (CLS query), T−2 (CLS key), T−1 (CLS–CLS).",
		p.heads, p.n, p.n)
}

// attnTables exports the iRPE buckets and tables (see AttentionPETables).
func (p *irpePE[T]) attnTables() (map[string]*Tensor[float64], string) {
	out := map[string]*Tensor[float64]{"irpe.buckets": intsTensor(p.ids, p.n, p.n)}
	if p.ctx {
		out["pos_embed"] = toF64(p.APE)
		for l, t := range p.Tables {
			w := toF64(t)
			w.Shape = []int{p.dh, p.k}
			out[fmt.Sprintf("irpe_ctx.table.layer%d", l)] = w
		}
		return out, fmt.Sprintf("irpe-ctx adds, in layer l, the content-dependent bias q_s[i]·table.layer<l>[:, buckets[i, j]] "+
			"(q_s the scaled query of token i, shared over heads; (Dh, K) = (%d, %d)) to the logits, so no fixed bias "+
			"table exists; buckets (N, N) is the iRPE product bucket of each query/key pair (K−1 for CLS pairs). "+
			"pos_embed (1, N, D) is the learnable APE it also adds to the input.", p.dh, p.k)
	}
	var tp Tape[T]
	tp.NoGrad = true
	for l, t := range p.Tables {
		out[fmt.Sprintf("irpe.table.layer%d", l)] = toF64(t)
		out[fmt.Sprintf("irpe.bias.layer%d", l)] = toF64(p.AttnBias(&tp, l, nil))
	}
	return out, fmt.Sprintf("irpe adds bias.layer<l>[h, i, j] = table.layer<l>[h, buckets[i, j]] to the attention logits of "+
		"layer l; (H, N, N) = (%d, %d, %d), K = %d buckets (iRPE product, ratio %.1f; K−1 for CLS pairs).",
		p.heads, p.n, p.n, p.k, IRPERatio)
}

// toF64 returns a float64 copy of t.
func toF64[T Float](t *Tensor[T]) *Tensor[float64] {
	out := New[float64](t.Shape...)
	for i, v := range t.Data {
		out.Data[i] = float64(v)
	}
	return out
}

// intsTensor returns the ints v as a float64 tensor of the given shape.
func intsTensor(v []int, shape ...int) *Tensor[float64] {
	out := New[float64](shape...)
	for i, x := range v {
		out.Data[i] = float64(x)
	}
	return out
}
