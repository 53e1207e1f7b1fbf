// This file holds CaiT, Class-Attention in Image Transformers (Touvron et
// al. 2021), as timm's models/cait.py: the architecture "cait" of the
// registry, its presets, timm's initialisation and the forward pass in
// timm's op order. The ops it adds (talking-heads HeadMix, the LayerScale
// residual, ClassAttention) are in ops_cait.go; docs/architectures.md §1
// describes the model, its presets and how a PE enters.
//
// How a positional embedding enters (the LOOPE authors' models/cait.py):
// timm's CaiT adds pos_embed (N−1 rows) to the patch tokens only and
// concatenates cls_token after the patch blocks. The authors build a PE of
// N rows and set pos_embed to its rows 1… and cls_token to its row 0,
// trainable only if the PE is. Here the PE's AddInput runs on the patch
// tokens with a zero row in front: the patch rows get the PE added, and
// row 0 (the PE's own row 0, which reads the image for LOOPE) is the CLS
// token. NOTE(spec): that is the default; Config.CaitCLS "learned" keeps
// timm's own learned cls_token instead (the PE's row 0 is then unused).
// Attention-side PEs (RoPE family, relative biases) act in the patch
// self-attention only, on the patch rows of their ViT tables; cpvt's PEG
// acts after patch block 0; the class-attention blocks get no PE. PaPE is
// refused (its bias reads the attention input of every token).

package loope

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

func init() {
	presets["cait-s24"] = Config{Arch: "cait", Image: 224, Channels: 3, Patch: 16, Dim: 384, Depth: 24, Heads: 8, MLP: 1536,
		ClassDepth: 2, InitValues: 1e-5}
	// The ViT preset tiny's image and widths, CaiT's structure.
	presets["cait-tiny"] = Config{Arch: "cait", Image: 14, Channels: 3, Patch: 2, Dim: 64, Depth: 4, Heads: 4, MLP: 256,
		ClassDepth: 2, InitValues: 1e-5}
	registerArch("cait", archSpec{
		summary:   "timm Cait: LayerScale talking-heads blocks on the patches, then class-attention blocks for the CLS token",
		validate:  validateCaiT,
		minParams: caitParams,
		f32:       func(c Config, seed uint64) (Model[float32], error) { return asModel(NewCaiT[float32](c, seed)) },
		f64:       func(c Config, seed uint64) (Model[float64], error) { return asModel(NewCaiT[float64](c, seed)) },
	})
}

// caitRefusedPEs names the PEs CaiT cannot take, with the reason.
var caitRefusedPEs = map[string]string{
	"pape": "its logit bias reads the attention input of every token, CLS included",
}

// validateCaiT checks the CaiT fields of c: those it shares with the ViT
// (validateViT), the class-attention depth, the LayerScale init, the CLS
// mode and whether the PE can enter a CaiT.
func validateCaiT(c Config) error {
	errs := []error{validateViT(c)}
	if c.ClassDepth <= 0 {
		errs = append(errs, fmt.Errorf("class_depth (CaiT class-attention blocks) must be > 0, got %d", c.ClassDepth))
	} else if c.ClassDepth > MaxDepth {
		errs = append(errs, fmt.Errorf("class_depth %d exceeds the limit %d", c.ClassDepth, MaxDepth))
	}
	if math.IsNaN(c.InitValues) || math.IsInf(c.InitValues, 0) {
		errs = append(errs, fmt.Errorf("init_values must be finite, got %g", c.InitValues))
	}
	if c.CaitCLS != "" && c.CaitCLS != "learned" {
		errs = append(errs, fmt.Errorf("cait_cls must be \"\" (CLS = the PE's row 0) or \"learned\", got %q", c.CaitCLS))
	}
	if why, bad := caitRefusedPEs[c.PE.Name]; bad {
		errs = append(errs, fmt.Errorf("positional embedding %q cannot enter a CaiT: %s", c.PE.Name, why))
	}
	return errors.Join(errs...)
}

// caitParams returns the number of scalars of a CaiT of c without its PE:
// what every checkpoint of c stores at least. c's sizes must be within the
// Max* bounds.
func caitParams(c Config) int64 {
	d, m, k, h := int64(c.Dim), int64(c.MLP), int64(c.Classes), int64(c.Heads)
	patch := d*int64(c.Channels)*int64(c.Patch)*int64(c.Patch) + d
	mlp := m*d + m + d*m + d
	block := 4*d + 3*d*d + 3*d + d*d + d + 2*(h*h+h) + mlp + 2*d
	cblock := 4*d + 4*(d*d+d) + mlp + 2*d
	n := patch + int64(c.Depth)*block + int64(c.ClassDepth)*cblock + 2*d + k*d + k
	if c.CaitCLS == "learned" {
		n += d
	}
	return n
}

// CaitBlock is timm's LayerScaleBlock with TalkingHeadAttn.
type CaitBlock[T Float] struct {
	Gamma1, Gamma2 *Tensor[T] // (D), (D): LayerScale
	Norm1W, Norm1B *Tensor[T] // (D), (D)
	QKVW, QKVB     *Tensor[T] // (3D, D), (3D)
	ProjW, ProjB   *Tensor[T] // (D, D), (D)
	ProjLW, ProjLB *Tensor[T] // (H, H), (H): head mixing before the softmax
	ProjWW, ProjWB *Tensor[T] // (H, H), (H): head mixing after the softmax
	Norm2W, Norm2B *Tensor[T] // (D), (D)
	FC1W, FC1B     *Tensor[T] // (MLP, D), (MLP)
	FC2W, FC2B     *Tensor[T] // (D, MLP), (D)
}

// ClassAttnBlock is timm's LayerScaleBlockClassAttn with ClassAttn.
type ClassAttnBlock[T Float] struct {
	Gamma1, Gamma2 *Tensor[T] // (D), (D): LayerScale
	Norm1W, Norm1B *Tensor[T] // (D), (D)
	QW, QB         *Tensor[T] // (D, D), (D)
	KW, KB         *Tensor[T] // (D, D), (D)
	VW, VB         *Tensor[T] // (D, D), (D)
	ProjW, ProjB   *Tensor[T] // (D, D), (D)
	Norm2W, Norm2B *Tensor[T] // (D), (D)
	FC1W, FC1B     *Tensor[T] // (MLP, D), (MLP)
	FC2W, FC2B     *Tensor[T] // (D, MLP), (D)
}

// CaiT is timm's Cait (global pool "token") with a pluggable positional
// embedding; see the file comment for how the PE and the CLS token enter.
type CaiT[T Float] struct {
	Cfg            Config
	PatchW, PatchB *Tensor[T] // (D, C, P, P), (D)
	CLS            *Tensor[T] // (1, 1, D) with CaitCLS "learned"; nil: the PE's row 0
	PE             PosEmb[T]
	Blocks         []CaitBlock[T]
	TokenBlocks    []ClassAttnBlock[T] // timm blocks_token_only
	NormW, NormB   *Tensor[T]          // (D), (D)
	HeadW, HeadB   *Tensor[T]          // (K, D), (K)
	attnPE         bool                // the PE rotates q, k or biases the logits
	afterPE        bool                // the PE acts after a block (cpvt)
}

// NewCaiT builds a CaiT with timm's initialisation (Linear weights
// trunc_normal(0.02) and zero biases, LayerNorm 1 and 0, gammas
// init_values, cls_token trunc_normal(0.02), the patch conv PyTorch's
// default), drawing every random value from a PCG stream seeded with seed.
func NewCaiT[T Float](cfg Config, seed uint64) (*CaiT[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if a := archName(cfg.Arch); a != "cait" {
		return nil, fmt.Errorf("loope: NewCaiT: config is of architecture %q; use NewModel", a)
	}
	rng := rand.New(rand.NewPCG(seed, 0xca17))
	d, c, p, h := cfg.Dim, cfg.Channels, cfg.Patch, cfg.Heads
	m := &CaiT[T]{Cfg: cfg}
	bound := 1 / math.Sqrt(float64(c*p*p)) // kaiming_uniform(a=√5): U(±1/√fan_in)
	m.PatchW = NewParam[T](d, c, p, p).FillUniform(rng, -bound, bound)
	m.PatchB = NewParam[T](d).FillUniform(rng, -bound, bound)
	if cfg.CaitCLS == "learned" {
		m.CLS = NewParam[T](1, 1, d)
		truncNormal(m.CLS.Data, rng, 0.02)
	}
	pe, err := newPosEmb[T](cfg, rng)
	if err != nil {
		return nil, err
	}
	m.PE = pe
	switch pe.(type) {
	case noPE[T], *learnablePE[T], *fixedPE[T], *loopePE[T], *fourierPE[T]:
	case *cpvtPE[T]:
		m.afterPE = true
	default:
		m.attnPE = true
	}
	linear := func(out, in int) (*Tensor[T], *Tensor[T]) {
		w := NewParam[T](out, in)
		truncNormal(w.Data, rng, 0.02)
		return w, NewParam[T](out)
	}
	fill := func(n int, v float64) *Tensor[T] {
		t := NewParam[T](n)
		for i := range t.Data {
			t.Data[i] = T(v)
		}
		return t
	}
	m.Blocks = make([]CaitBlock[T], cfg.Depth)
	for i := range m.Blocks {
		b := &m.Blocks[i]
		b.Gamma1, b.Gamma2 = fill(d, cfg.InitValues), fill(d, cfg.InitValues)
		b.Norm1W, b.Norm1B = fill(d, 1), NewParam[T](d)
		b.QKVW, b.QKVB = linear(3*d, d)
		b.ProjW, b.ProjB = linear(d, d)
		b.ProjLW, b.ProjLB = linear(h, h)
		b.ProjWW, b.ProjWB = linear(h, h)
		b.Norm2W, b.Norm2B = fill(d, 1), NewParam[T](d)
		b.FC1W, b.FC1B = linear(cfg.MLP, d)
		b.FC2W, b.FC2B = linear(d, cfg.MLP)
	}
	m.TokenBlocks = make([]ClassAttnBlock[T], cfg.ClassDepth)
	for i := range m.TokenBlocks {
		b := &m.TokenBlocks[i]
		b.Gamma1, b.Gamma2 = fill(d, cfg.InitValues), fill(d, cfg.InitValues)
		b.Norm1W, b.Norm1B = fill(d, 1), NewParam[T](d)
		b.QW, b.QB = linear(d, d)
		b.KW, b.KB = linear(d, d)
		b.VW, b.VB = linear(d, d)
		b.ProjW, b.ProjB = linear(d, d)
		b.Norm2W, b.Norm2B = fill(d, 1), NewParam[T](d)
		b.FC1W, b.FC1B = linear(cfg.MLP, d)
		b.FC2W, b.FC2B = linear(d, cfg.MLP)
	}
	m.NormW, m.NormB = fill(d, 1), NewParam[T](d)
	m.HeadW, m.HeadB = linear(cfg.Classes, d)
	return m, nil
}

// Config returns the model's shape.
func (m *CaiT[T]) Config() Config { return m.Cfg }

// PosEmbs returns the model's one positional embedding.
func (m *CaiT[T]) PosEmbs() []PosEmb[T] { return []PosEmb[T]{m.PE} }

// Params returns every tensor with its timm state-dict name: cls_token
// (only with CaitCLS "learned"), the PE's tensors (pos_embed for the
// learnable PE, N rows of which row 0 is the authors' cls_token),
// patch_embed, blocks.*, blocks_token_only.*, norm, head.
func (m *CaiT[T]) Params() []NamedParam[T] {
	var ps []NamedParam[T]
	add := func(name string, t *Tensor[T], noDecay bool) {
		ps = append(ps, NamedParam[T]{Name: name, T: t, NoDecay: noDecay})
	}
	if m.CLS != nil {
		add("cls_token", m.CLS, true)
	}
	ps = append(ps, m.PE.Params()...)
	add("patch_embed.proj.weight", m.PatchW, false)
	add("patch_embed.proj.bias", m.PatchB, true)
	for i := range m.Blocks {
		b, pre := &m.Blocks[i], fmt.Sprintf("blocks.%d.", i)
		add(pre+"gamma_1", b.Gamma1, true)
		add(pre+"gamma_2", b.Gamma2, true)
		add(pre+"norm1.weight", b.Norm1W, true)
		add(pre+"norm1.bias", b.Norm1B, true)
		add(pre+"attn.qkv.weight", b.QKVW, false)
		add(pre+"attn.qkv.bias", b.QKVB, true)
		add(pre+"attn.proj.weight", b.ProjW, false)
		add(pre+"attn.proj.bias", b.ProjB, true)
		add(pre+"attn.proj_l.weight", b.ProjLW, false)
		add(pre+"attn.proj_l.bias", b.ProjLB, true)
		add(pre+"attn.proj_w.weight", b.ProjWW, false)
		add(pre+"attn.proj_w.bias", b.ProjWB, true)
		add(pre+"norm2.weight", b.Norm2W, true)
		add(pre+"norm2.bias", b.Norm2B, true)
		add(pre+"mlp.fc1.weight", b.FC1W, false)
		add(pre+"mlp.fc1.bias", b.FC1B, true)
		add(pre+"mlp.fc2.weight", b.FC2W, false)
		add(pre+"mlp.fc2.bias", b.FC2B, true)
	}
	for i := range m.TokenBlocks {
		b, pre := &m.TokenBlocks[i], fmt.Sprintf("blocks_token_only.%d.", i)
		add(pre+"gamma_1", b.Gamma1, true)
		add(pre+"gamma_2", b.Gamma2, true)
		add(pre+"norm1.weight", b.Norm1W, true)
		add(pre+"norm1.bias", b.Norm1B, true)
		add(pre+"attn.q.weight", b.QW, false)
		add(pre+"attn.q.bias", b.QB, true)
		add(pre+"attn.k.weight", b.KW, false)
		add(pre+"attn.k.bias", b.KB, true)
		add(pre+"attn.v.weight", b.VW, false)
		add(pre+"attn.v.bias", b.VB, true)
		add(pre+"attn.proj.weight", b.ProjW, false)
		add(pre+"attn.proj.bias", b.ProjB, true)
		add(pre+"norm2.weight", b.Norm2W, true)
		add(pre+"norm2.bias", b.Norm2B, true)
		add(pre+"mlp.fc1.weight", b.FC1W, false)
		add(pre+"mlp.fc1.bias", b.FC1B, true)
		add(pre+"mlp.fc2.weight", b.FC2W, false)
		add(pre+"mlp.fc2.bias", b.FC2B, true)
	}
	add("norm.weight", m.NormW, true)
	add("norm.bias", m.NormB, true)
	add("head.weight", m.HeadW, false)
	add("head.bias", m.HeadB, true)
	return ps
}

// Forward maps images img (B, C, H, W) to logits (B, K) on tp: timm's
// Cait.forward (forward_features, then the head on the CLS token).
func (m *CaiT[T]) Forward(tp *Tape[T], img *Tensor[T]) *Tensor[T] {
	cfg := m.Cfg
	if len(img.Shape) != 4 || img.Shape[1] != cfg.Channels || img.Shape[2] != cfg.Image || img.Shape[3] != cfg.Image {
		panic(fmt.Sprintf("loope: CaiT.Forward: image shape %v, want (B, %d, %d, %d)", img.Shape, cfg.Channels, cfg.Image, cfg.Image))
	}
	b, d, n := img.Shape[0], cfg.Dim, cfg.Tokens()
	// patch_embed: conv k = s = P, flatten(2).transpose(1, 2) → (B, N−1, D).
	x := tp.Conv2d(img, m.PatchW, m.PatchB, cfg.Patch, 0, 1)
	x = tp.Transpose(tp.Reshape(x, b, d, n-1), 1, 2)
	// x + pos_embed on the patches; the PE's row 0 (added to a zero row) is the CLS.
	u := tp.Concat(1, tp.newTensor(false, []int{b, 1, d}), x) // (B, N, D)
	u = m.PE.AddInput(tp, u, img)
	x = tp.Slice(u, 1, 1, n) // (B, N−1, D)
	cls := tp.Slice(u, 1, 0, 1)
	if m.CLS != nil { // timm: cls_token.expand(B, −1, −1)
		cls = tp.Add(tp.newTensor(false, []int{b, 1, d}), m.CLS)
	}
	for i := range m.Blocks {
		blk := &m.Blocks[i]
		y := tp.LayerNorm(x, blk.Norm1W, blk.Norm1B, cfg.Eps)
		a := m.talkingHeads(tp, i, tp.Linear(y, blk.QKVW, blk.QKVB)) // (B, N−1, D)
		x = tp.LayerScale(x, tp.Linear(a, blk.ProjW, blk.ProjB), blk.Gamma1)
		y = tp.LayerNorm(x, blk.Norm2W, blk.Norm2B, cfg.Eps)
		y = tp.Linear(tp.GELU(tp.Linear(y, blk.FC1W, blk.FC1B)), blk.FC2W, blk.FC2B)
		x = tp.LayerScale(x, y, blk.Gamma2)
		if m.afterPE { // cpvt's PEG sees the patches behind a placeholder CLS row
			x = tp.Slice(m.PE.AfterBlock(tp, i, tp.Concat(1, tp.newTensor(false, []int{b, 1, d}), x)), 1, 1, n)
		}
	}
	for i := range m.TokenBlocks {
		cls = m.classBlock(tp, &m.TokenBlocks[i], x, cls) // (B, 1, D)
	}
	// timm: norm(cat(cls, x)), then x[:, 0]; LayerNorm is per token, so
	// normalising only the CLS token is the same result.
	y := tp.LayerNorm(tp.Reshape(cls, b, d), m.NormW, m.NormB, cfg.Eps)
	return tp.Linear(y, m.HeadW, m.HeadB) // (B, K)
}

// talkingHeads is timm's TalkingHeadAttn before proj for the fused
// projection qkv (B, M, 3D) of the M = N−1 patch tokens of block layer:
// S = (q·scale)·kᵀ (+ the PE's bias), proj_l over the heads, softmax,
// proj_w, times v; heads merged: (B, M, D).
func (m *CaiT[T]) talkingHeads(tp *Tape[T], layer int, qkv *Tensor[T]) *Tensor[T] {
	cfg, blk := m.Cfg, &m.Blocks[layer]
	scale := 1 / math.Sqrt(float64(cfg.Dim/cfg.Heads))
	q, k, v := tp.QKVHeads(qkv, cfg.Heads) // (B, H, M, Dh) each
	var bias *Tensor[T]
	if m.attnPE {
		q, k, bias = m.patchPE(tp, layer, q, k)
	}
	s := tp.BatchMatMul(tp.Scale(q, scale), k, false, true) // (B, H, M, M)
	if bias != nil {
		s = tp.Add(s, bias)
	}
	s = tp.HeadMix(s, blk.ProjLW, blk.ProjLB)
	p := tp.HeadMix(tp.Softmax(s), blk.ProjWW, blk.ProjWB)
	return tp.MergeHeads(tp.BatchMatMul(p, v, false, false)) // (B, M, D)
}

// patchPE applies an attention-side PE to the patch tokens' q and k
// (B, H, M, Dh): its hooks see the ViT's N = M+1 tokens with a zero CLS
// row in front, which is cut off again, from the rotated q and k and from
// the logit bias (H or B·H, N, N) → (…, M, M).
func (m *CaiT[T]) patchPE(tp *Tape[T], layer int, q, k *Tensor[T]) (*Tensor[T], *Tensor[T], *Tensor[T]) {
	b, h, n, dh := q.Shape[0], q.Shape[1], q.Shape[2]+1, q.Shape[3]
	zero := tp.newTensor(false, []int{b, h, 1, dh})
	q, k = m.PE.RotateQK(tp, layer, tp.Concat(2, zero, q), tp.Concat(2, zero, k))
	bias := m.PE.AttnBias(tp, layer, q)
	q, k = tp.Slice(q, 2, 1, n), tp.Slice(k, 2, 1, n)
	if bias != nil {
		r := len(bias.Shape)
		bias = tp.Slice(tp.Slice(bias, r-2, 1, n), r-1, 1, n)
	}
	return q, k, bias
}

// classBlock is timm's LayerScaleBlockClassAttn: u = cat(cls, x);
// cls + γ₁·proj(ClassAttn(norm1(u))), then cls + γ₂·mlp(norm2(cls)).
// x (B, N−1, D), cls (B, 1, D) → (B, 1, D).
func (m *CaiT[T]) classBlock(tp *Tape[T], blk *ClassAttnBlock[T], x, cls *Tensor[T]) *Tensor[T] {
	cfg := m.Cfg
	b, n, d, h := x.Shape[0], x.Shape[1]+1, cfg.Dim, cfg.Heads
	dh := d / h
	u := tp.LayerNorm(tp.Concat(1, cls, x), blk.Norm1W, blk.Norm1B, cfg.Eps) // (B, N, D)
	heads := func(t *Tensor[T], rows int) *Tensor[T] {                       // (B, rows, D) → (B, H, rows, Dh)
		return tp.Permute(tp.Reshape(t, b, rows, h, dh), 0, 2, 1, 3)
	}
	q := heads(tp.Linear(tp.Slice(u, 1, 0, 1), blk.QW, blk.QB), 1)
	k := heads(tp.Linear(u, blk.KW, blk.KB), n)
	v := heads(tp.Linear(u, blk.VW, blk.VB), n)
	a := tp.MergeHeads(tp.ClassAttention(q, k, v, 1/math.Sqrt(float64(dh)))) // (B, 1, D)
	cls = tp.LayerScale(cls, tp.Linear(a, blk.ProjW, blk.ProjB), blk.Gamma1)
	y := tp.LayerNorm(cls, blk.Norm2W, blk.Norm2B, cfg.Eps)
	y = tp.Linear(tp.GELU(tp.Linear(y, blk.FC1W, blk.FC1B)), blk.FC2W, blk.FC2B)
	return tp.LayerScale(cls, y, blk.Gamma2)
}
