// This file holds CrossViT (Chen et al. 2021) as timm's
// models/crossvit.py: the architecture "crossvit" of the registry, its
// presets, timm's initialisation and the forward pass in timm's op order,
// for two branches and multi-scale blocks of timm depth [[d0, d1, 0]] × L
// (every timm preset: one cross-attention block per branch, no MLP; the
// mlp_ratio's third entry is unused there). The ops it adds (the bicubic
// branch resize and CrossAttention) are in ops_crossvit.go;
// docs/architectures.md §2 describes the model and its presets.
//
// Config: Image, Patch, Dim, Heads and MLP are branch 0's (the small
// patches on the full image); Image1, Patch1, Dim1, Heads1 and MLP1 branch
// 1's, whose input is the image resized to Image1 by
// F.interpolate(mode='bicubic', align_corners=False) as timm's scale_image;
// Depth is the number of multi-scale blocks L, Depth0 and Depth1 the ViT
// blocks of each branch in each.
//
// How a positional embedding enters (the LOOPE authors' models/crossvit.py):
// pos_embed_0 and pos_embed_1 are each replaced by a PE built for that
// branch's tokens (grid² + 1, CLS row included) and width; timm's learned
// cls_token_0 and cls_token_1 stay. Here each branch has its own PosEmb,
// built from the branch's ViT-shaped config (Depth = L·d_i blocks), and
// runs in the branch's blocks exactly as in the ViT: LOOPE reads the
// branch's input (the resized image on branch 1), attention-side PEs act in
// the branch self-attention; the cross-attention gets none. The PE's
// tensors are named pos_embed_0… and pos_embed_1… (pos_embed renamed).

package loope

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

func init() {
	presets["crossvit-b240"] = Config{Arch: "crossvit", Image: 240, Channels: 3, Patch: 12, Dim: 384, Heads: 12, MLP: 1536,
		Image1: 224, Patch1: 16, Dim1: 768, Heads1: 12, MLP1: 3072, Depth: 3, Depth0: 1, Depth1: 4}
	// The ViT preset tiny's image, patch and width on branch 0; branch 1
	// as in b240: twice the width, larger patches on a slightly smaller
	// image (12 px: 3×3 patches of 4).
	presets["crossvit-tiny"] = Config{Arch: "crossvit", Image: 14, Channels: 3, Patch: 2, Dim: 64, Heads: 4, MLP: 256,
		Image1: 12, Patch1: 4, Dim1: 128, Heads1: 4, MLP1: 512, Depth: 3, Depth0: 1, Depth1: 4}
	registerArch("crossvit", archSpec{
		summary:   "timm CrossVit: two ViT branches (small patches on the image, large on it resized) fused by CLS cross-attention; mean of two heads",
		validate:  validateCrossViT,
		minParams: crossViTParams,
		f32:       func(c Config, seed uint64) (Model[float32], error) { return asModel(NewCrossViT[float32](c, seed)) },
		f64:       func(c Config, seed uint64) (Model[float64], error) { return asModel(NewCrossViT[float64](c, seed)) },
	})
}

// crossBranch returns the ViT-shaped config of branch i of a CrossViT c:
// its image, patch, width, heads, MLP, its blocks over all multi-scale
// blocks as Depth, and c's channels, classes, eps and PE.
func (c Config) crossBranch(i int) Config {
	b := Config{Image: c.Image, Channels: c.Channels, Patch: c.Patch, Dim: c.Dim, Depth: c.Depth * c.Depth0,
		Heads: c.Heads, MLP: c.MLP, Classes: c.Classes, Eps: c.Eps, PE: c.PE}
	if i == 1 {
		b.Image, b.Patch, b.Dim, b.Depth, b.Heads, b.MLP = c.Image1, c.Patch1, c.Dim1, c.Depth*c.Depth1, c.Heads1, c.MLP1
	}
	return b
}

// validateCrossViT checks the CrossViT fields of c: the depths, then each
// branch as a ViT (validateViT), naming the branch.
func validateCrossViT(c Config) error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"depth (multi-scale blocks)", c.Depth}, {"depth_0", c.Depth0}, {"depth_1", c.Depth1}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be > 0, got %d", f.name, f.v))
		} else if f.v > MaxDepth {
			errs = append(errs, fmt.Errorf("%s %d exceeds the limit %d", f.name, f.v, MaxDepth))
		}
	}
	if c.Image1 <= 0 || c.Image1 > MaxImage {
		errs = append(errs, fmt.Errorf("image_1 must be in [1, %d], got %d", MaxImage, c.Image1))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for i := range 2 {
		if err := validateViT(c.crossBranch(i)); err != nil {
			errs = append(errs, fmt.Errorf("branch %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// crossViTParams returns the number of scalars of a CrossViT of c without
// its PEs: what every checkpoint of c stores at least. c's sizes must be
// within the Max* bounds.
func crossViTParams(c Config) int64 {
	var n int64
	for i := range 2 {
		b, o := c.crossBranch(i), c.crossBranch(1-i)
		d, m, k, od := int64(b.Dim), int64(b.MLP), int64(c.Classes), int64(o.Dim)
		n += d*int64(c.Channels)*int64(b.Patch)*int64(b.Patch) + d + d // patch conv, cls_token
		n += int64(b.Depth) * (4*d + 3*d*d + 3*d + d*d + d + m*d + m + d*m + d)
		// per multi-scale block: projs i (LN d, Linear d → od), fusion i
		// (LN od, wq/wk/wv/proj od × od), revert_projs i (LN od, Linear od → d).
		n += int64(c.Depth) * (2*d + od*d + od + 2*od + 4*(od*od+od) + 2*od + d*od + d)
		n += 2*d + k*d + k // norm, head
	}
	return n
}

// CrossBlock is one fusion direction of a timm MultiScaleBlock: the
// projection of one branch's CLS to the other's width (projs), the
// CrossAttentionBlock on the other branch's patches (fusion) and the
// reverse projection (revert_projs).
type CrossBlock[T Float] struct {
	ProjNormW, ProjNormB     *Tensor[T] // (D), (D): projs.i.0
	ProjW, ProjB             *Tensor[T] // (D', D), (D'): projs.i.2
	Norm1W, Norm1B           *Tensor[T] // (D'), (D'): fusion.i.norm1
	WQ, BQ, WK, BK, WV, BV   *Tensor[T] // (D', D'), (D') each: fusion.i.attn.wq, wk, wv
	AttnProjW, AttnProjB     *Tensor[T] // (D', D'), (D'): fusion.i.attn.proj
	RevertNormW, RevertNormB *Tensor[T] // (D'), (D'): revert_projs.i.0
	RevertW, RevertB         *Tensor[T] // (D, D'), (D): revert_projs.i.2
}

// CrossViTBranch is the per-branch part of a CrossViT.
type CrossViTBranch[T Float] struct {
	Cfg            Config     // the branch's ViT-shaped config (crossBranch)
	PatchW, PatchB *Tensor[T] // (D, C, P, P), (D)
	CLS            *Tensor[T] // (1, 1, D)
	PE             PosEmb[T]
	Blocks         []Block[T]      // L·d_i ViT blocks: multi-scale block s holds [s·d_i, (s+1)·d_i)
	Cross          []CrossBlock[T] // one per multi-scale block: this branch's CLS into the other branch
	NormW, NormB   *Tensor[T]      // (D), (D)
	HeadW, HeadB   *Tensor[T]      // (K, D), (K)
}

// CrossViT is timm's CrossVit (global pool "token", two branches, no
// multi_conv, no crop_scale) with a pluggable PE per branch.
type CrossViT[T Float] struct {
	Cfg    Config
	Branch [2]CrossViTBranch[T]
}

// NewCrossViT builds a CrossViT with timm's initialisation (Linear
// trunc_normal(0.02) and zero bias, LayerNorm 1 and 0, cls tokens
// trunc_normal(0.02), patch convs PyTorch's default), drawing every random
// value from a PCG stream seeded with seed.
func NewCrossViT[T Float](cfg Config, seed uint64) (*CrossViT[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if a := archName(cfg.Arch); a != "crossvit" {
		return nil, fmt.Errorf("loope: NewCrossViT: config is of architecture %q; use NewModel", a)
	}
	rng := rand.New(rand.NewPCG(seed, 0xc055))
	linear := func(out, in int) (*Tensor[T], *Tensor[T]) {
		w := NewParam[T](out, in)
		truncNormal(w.Data, rng, 0.02)
		return w, NewParam[T](out)
	}
	norm := func(d int) (*Tensor[T], *Tensor[T]) {
		w := NewParam[T](d)
		for i := range w.Data {
			w.Data[i] = 1
		}
		return w, NewParam[T](d)
	}
	m := &CrossViT[T]{Cfg: cfg}
	for i := range 2 {
		br := &m.Branch[i]
		bc := cfg.crossBranch(i)
		d, od, p := bc.Dim, cfg.crossBranch(1-i).Dim, bc.Patch
		br.Cfg = bc
		bound := 1 / math.Sqrt(float64(cfg.Channels*p*p))
		br.PatchW = NewParam[T](d, cfg.Channels, p, p).FillUniform(rng, -bound, bound)
		br.PatchB = NewParam[T](d).FillUniform(rng, -bound, bound)
		br.CLS = NewParam[T](1, 1, d)
		truncNormal(br.CLS.Data, rng, 0.02)
		pe, err := newPosEmb[T](bc, rng)
		if err != nil {
			return nil, fmt.Errorf("loope: CrossViT branch %d: %w", i, err)
		}
		br.PE = pe
		br.Blocks = make([]Block[T], bc.Depth)
		for j := range br.Blocks {
			b := &br.Blocks[j]
			b.Norm1W, b.Norm1B = norm(d)
			b.QKVW, b.QKVB = linear(3*d, d)
			b.ProjW, b.ProjB = linear(d, d)
			b.Norm2W, b.Norm2B = norm(d)
			b.FC1W, b.FC1B = linear(bc.MLP, d)
			b.FC2W, b.FC2B = linear(d, bc.MLP)
		}
		br.Cross = make([]CrossBlock[T], cfg.Depth)
		for j := range br.Cross {
			x := &br.Cross[j]
			x.ProjNormW, x.ProjNormB = norm(d)
			x.ProjW, x.ProjB = linear(od, d)
			x.Norm1W, x.Norm1B = norm(od)
			x.WQ, x.BQ = linear(od, od)
			x.WK, x.BK = linear(od, od)
			x.WV, x.BV = linear(od, od)
			x.AttnProjW, x.AttnProjB = linear(od, od)
			x.RevertNormW, x.RevertNormB = norm(od)
			x.RevertW, x.RevertB = linear(d, od)
		}
		br.NormW, br.NormB = norm(d)
		br.HeadW, br.HeadB = linear(cfg.Classes, d)
	}
	return m, nil
}

// Config returns the model's shape.
func (m *CrossViT[T]) Config() Config { return m.Cfg }

// PosEmbs returns the PEs of branch 0 and branch 1.
func (m *CrossViT[T]) PosEmbs() []PosEmb[T] { return []PosEmb[T]{m.Branch[0].PE, m.Branch[1].PE} }

// Params returns every tensor with its timm state-dict name (pos_embed_i,
// cls_token_i, patch_embed.i, blocks.s.blocks.i.k, blocks.s.projs.i,
// blocks.s.fusion.i, blocks.s.revert_projs.i, norm.i, head.i), the PE's
// tensors under pos_embed_i.
func (m *CrossViT[T]) Params() []NamedParam[T] {
	var ps []NamedParam[T]
	add := func(name string, t *Tensor[T], noDecay bool) {
		ps = append(ps, NamedParam[T]{Name: name, T: t, NoDecay: noDecay})
	}
	for i := range 2 {
		br := &m.Branch[i]
		for _, p := range br.PE.Params() {
			p.Name = fmt.Sprintf("pos_embed_%d", i) + strings.TrimPrefix(p.Name, "pos_embed")
			ps = append(ps, p)
		}
		add(fmt.Sprintf("cls_token_%d", i), br.CLS, true)
	}
	for i := range 2 {
		br := &m.Branch[i]
		add(fmt.Sprintf("patch_embed.%d.proj.weight", i), br.PatchW, false)
		add(fmt.Sprintf("patch_embed.%d.proj.bias", i), br.PatchB, true)
	}
	for s := range m.Cfg.Depth {
		for i := range 2 {
			br, per := &m.Branch[i], m.Cfg.Depth0
			if i == 1 {
				per = m.Cfg.Depth1
			}
			for k := range per {
				b, pre := &br.Blocks[s*per+k], fmt.Sprintf("blocks.%d.blocks.%d.%d.", s, i, k)
				add(pre+"norm1.weight", b.Norm1W, true)
				add(pre+"norm1.bias", b.Norm1B, true)
				add(pre+"attn.qkv.weight", b.QKVW, false)
				add(pre+"attn.qkv.bias", b.QKVB, true)
				add(pre+"attn.proj.weight", b.ProjW, false)
				add(pre+"attn.proj.bias", b.ProjB, true)
				add(pre+"norm2.weight", b.Norm2W, true)
				add(pre+"norm2.bias", b.Norm2B, true)
				add(pre+"mlp.fc1.weight", b.FC1W, false)
				add(pre+"mlp.fc1.bias", b.FC1B, true)
				add(pre+"mlp.fc2.weight", b.FC2W, false)
				add(pre+"mlp.fc2.bias", b.FC2B, true)
			}
		}
		for i := range 2 {
			x, pre := &m.Branch[i].Cross[s], fmt.Sprintf("blocks.%d.", s)
			add(pre+fmt.Sprintf("projs.%d.0.weight", i), x.ProjNormW, true)
			add(pre+fmt.Sprintf("projs.%d.0.bias", i), x.ProjNormB, true)
			add(pre+fmt.Sprintf("projs.%d.2.weight", i), x.ProjW, false)
			add(pre+fmt.Sprintf("projs.%d.2.bias", i), x.ProjB, true)
			f := pre + fmt.Sprintf("fusion.%d.", i)
			add(f+"norm1.weight", x.Norm1W, true)
			add(f+"norm1.bias", x.Norm1B, true)
			add(f+"attn.wq.weight", x.WQ, false)
			add(f+"attn.wq.bias", x.BQ, true)
			add(f+"attn.wk.weight", x.WK, false)
			add(f+"attn.wk.bias", x.BK, true)
			add(f+"attn.wv.weight", x.WV, false)
			add(f+"attn.wv.bias", x.BV, true)
			add(f+"attn.proj.weight", x.AttnProjW, false)
			add(f+"attn.proj.bias", x.AttnProjB, true)
			add(pre+fmt.Sprintf("revert_projs.%d.0.weight", i), x.RevertNormW, true)
			add(pre+fmt.Sprintf("revert_projs.%d.0.bias", i), x.RevertNormB, true)
			add(pre+fmt.Sprintf("revert_projs.%d.2.weight", i), x.RevertW, false)
			add(pre+fmt.Sprintf("revert_projs.%d.2.bias", i), x.RevertB, true)
		}
	}
	for i := range 2 {
		br := &m.Branch[i]
		add(fmt.Sprintf("norm.%d.weight", i), br.NormW, true)
		add(fmt.Sprintf("norm.%d.bias", i), br.NormB, true)
	}
	for i := range 2 {
		br := &m.Branch[i]
		add(fmt.Sprintf("head.%d.weight", i), br.HeadW, false)
		add(fmt.Sprintf("head.%d.bias", i), br.HeadB, true)
	}
	return ps
}

// Forward maps images img (B, C, H, W) to logits (B, K) on tp: timm's
// CrossVit.forward, the mean of the two branch heads' logits.
func (m *CrossViT[T]) Forward(tp *Tape[T], img *Tensor[T]) *Tensor[T] {
	cfg := m.Cfg
	if len(img.Shape) != 4 || img.Shape[1] != cfg.Channels || img.Shape[2] != cfg.Image || img.Shape[3] != cfg.Image {
		panic(fmt.Sprintf("loope: CrossViT.Forward: image shape %v, want (B, %d, %d, %d)", img.Shape, cfg.Channels, cfg.Image, cfg.Image))
	}
	b := img.Shape[0]
	var xs [2]*Tensor[T]
	for i := range 2 {
		br := &m.Branch[i]
		bc := br.Cfg
		in := img
		if bc.Image != cfg.Image { // timm scale_image
			in = tp.ResizeBicubic(img, bc.Image, bc.Image)
		}
		x := tp.Conv2d(in, br.PatchW, br.PatchB, bc.Patch, 0, 1)
		x = tp.Transpose(tp.Reshape(x, b, bc.Dim, bc.Tokens()-1), 1, 2) // (B, N_i − 1, D_i)
		cls := tp.Add(tp.newTensor(false, []int{b, 1, bc.Dim}), br.CLS)
		xs[i] = br.PE.AddInput(tp, tp.Concat(1, cls, x), in) // (B, N_i, D_i)
	}
	for s := range cfg.Depth {
		xs = m.multiScale(tp, s, xs)
	}
	var logits *Tensor[T]
	for i := range 2 {
		br := &m.Branch[i]
		// norm over all tokens, then x[:, 0]: LayerNorm is per token.
		y := tp.LayerNorm(tp.Reshape(tp.Slice(xs[i], 1, 0, 1), b, br.Cfg.Dim), br.NormW, br.NormB, cfg.Eps)
		l := tp.Linear(y, br.HeadW, br.HeadB) // (B, K)
		if logits == nil {
			logits = l
		} else {
			logits = tp.Add(logits, l)
		}
	}
	return tp.Scale(logits, 0.5) // torch.mean(torch.stack(heads), dim=0)
}

// multiScale is timm's MultiScaleBlock s with depth [d0, d1, 0]: each
// branch's ViT blocks, then for each branch i its CLS projected to the
// other branch j's width, one CrossAttentionBlock over [that CLS, j's
// patches], projected back and put before i's own patches.
func (m *CrossViT[T]) multiScale(tp *Tape[T], s int, xs [2]*Tensor[T]) [2]*Tensor[T] {
	var outs [2]*Tensor[T]
	for i := range 2 {
		br := &m.Branch[i]
		per := br.Cfg.Depth / m.Cfg.Depth
		x := xs[i]
		for k := s * per; k < (s+1)*per; k++ {
			x = m.vitBlock(tp, br, k, x)
		}
		outs[i] = x
	}
	var res [2]*Tensor[T]
	for i := range 2 {
		j := 1 - i
		x, blk := outs[i], &m.Branch[i].Cross[s]
		eps := m.Cfg.Eps
		cls := tp.Slice(x, 1, 0, 1)                                                                          // (B, 1, D_i)
		cls = tp.Linear(tp.GELU(tp.LayerNorm(cls, blk.ProjNormW, blk.ProjNormB, eps)), blk.ProjW, blk.ProjB) // (B, 1, D_j)
		nj := outs[j].Shape[1]
		u := tp.Concat(1, cls, tp.Slice(outs[j], 1, 1, nj)) // (B, N_j, D_j)
		// CrossAttentionBlock: u[:, 0:1] + CrossAttention(norm1(u)).
		cls = tp.Add(cls, m.crossAttention(tp, blk, m.Branch[j].Cfg.Heads, tp.LayerNorm(u, blk.Norm1W, blk.Norm1B, eps)))
		cls = tp.Linear(tp.GELU(tp.LayerNorm(cls, blk.RevertNormW, blk.RevertNormB, eps)), blk.RevertW, blk.RevertB) // (B, 1, D_i)
		res[i] = tp.Concat(1, cls, tp.Slice(x, 1, 1, x.Shape[1]))
	}
	return res
}

// crossAttention is timm's crossvit CrossAttention on u (B, N, D) with h
// heads: q from u's CLS row, k and v from all rows → proj: (B, 1, D).
func (m *CrossViT[T]) crossAttention(tp *Tape[T], blk *CrossBlock[T], h int, u *Tensor[T]) *Tensor[T] {
	b, n, d := u.Shape[0], u.Shape[1], u.Shape[2]
	dh := d / h
	heads := func(t *Tensor[T], rows int) *Tensor[T] { // (B, rows, D) → (B, H, rows, Dh)
		return tp.Permute(tp.Reshape(t, b, rows, h, dh), 0, 2, 1, 3)
	}
	q := heads(tp.Linear(tp.Slice(u, 1, 0, 1), blk.WQ, blk.BQ), 1)
	k := heads(tp.Linear(u, blk.WK, blk.BK), n)
	v := heads(tp.Linear(u, blk.WV, blk.BV), n)
	a := tp.MergeHeads(tp.CrossAttention(q, k, v, 1/math.Sqrt(float64(dh)))) // (B, 1, D)
	return tp.Linear(a, blk.AttnProjW, blk.AttnProjB)
}

// vitBlock is timm's vision_transformer Block k of branch br on x
// (B, N, D), with the branch PE's hooks at the ViT's places (layer k).
func (m *CrossViT[T]) vitBlock(tp *Tape[T], br *CrossViTBranch[T], k int, x *Tensor[T]) *Tensor[T] {
	blk, cfg, pe := &br.Blocks[k], br.Cfg, br.PE
	ops := newFusedOps(tp, pe)
	y := tp.LayerNorm(x, blk.Norm1W, blk.Norm1B, cfg.Eps)
	if ai, ok := pe.(attnInputPE[T]); ok {
		ai.attnInput(tp, k, y)
	}
	qkv := tp.Linear(y, blk.QKVW, blk.QKVB) // (B, N, 3D)
	scale := 1 / math.Sqrt(float64(cfg.Dim/cfg.Heads))
	var a *Tensor[T]
	if ops.attentionQKV {
		a = tp.attentionQKV(qkv, pe.AttnBias(tp, k, nil), cfg.Heads, scale)
	} else {
		q, kk, v := tp.QKVHeads(qkv, cfg.Heads)
		q, kk = pe.RotateQK(tp, k, q, kk)
		a = tp.MergeHeads(tp.Attention(q, kk, v, pe.AttnBias(tp, k, q), scale))
	}
	x = ops.residual(x, a, blk.ProjW, blk.ProjB)
	y = tp.LayerNorm(x, blk.Norm2W, blk.Norm2B, cfg.Eps)
	x = ops.residual(x, ops.gelu(y, blk.FC1W, blk.FC1B), blk.FC2W, blk.FC2B)
	return pe.AfterBlock(tp, k, x)
}
