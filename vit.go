// This file holds the Vision Transformer: its Config and presets, timm's
// initialisation, and the forward pass in timm's exact op order
// (docs/pe-zoo.md §1, timm models/vision_transformer.py).

package loope

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// Config describes a ViT. The zero value is invalid; start from a preset.
type Config struct {
	// Arch names the architecture (ArchNames); "" and "vit" are the ViT.
	Arch     string   `json:"arch,omitempty"`
	Image    int      `json:"image"`    // input side in pixels (square images)
	Channels int      `json:"channels"` // input channels C
	Patch    int      `json:"patch"`    // patch side P; Image % Patch == 0
	Dim      int      `json:"dim"`      // token width D
	Depth    int      `json:"depth"`    // number of blocks
	Heads    int      `json:"heads"`    // attention heads H; Dim % Heads == 0
	MLP      int      `json:"mlp"`      // MLP hidden width
	Classes  int      `json:"classes"`  // outputs K (classes, or 6 label bits)
	Eps      float64  `json:"eps"`      // LayerNorm epsilon (timm: 1e-6)
	PE       PEConfig `json:"pe"`       // positional embedding
	// Stem is the stem of a CNN reference model (docs/cnn.md): "small"
	// (a 3×3 stride-1 conv, no max-pool), "imagenet" (torchvision's 7×7
	// stride-2 conv and 3×3 stride-2 max-pool), or "" for the default,
	// small for images under 64 px. Other architectures leave it "".
	Stem string `json:"stem,omitempty"`

	// CaiT (cait.go); zero for other architectures.
	ClassDepth int     `json:"class_depth,omitempty"` // class-attention blocks (timm depth_token_only)
	InitValues float64 `json:"init_values,omitempty"` // LayerScale init of gamma_1, gamma_2 (timm init_values)
	CaitCLS    string  `json:"cait_cls,omitempty"`    // "": CLS = the PE's row 0 (the authors' wrapper); "learned": timm's cls_token

	// CrossViT (crossvit.go); zero for other architectures. Image, Patch,
	// Dim, Heads and MLP are branch 0's, Depth counts multi-scale blocks.
	Image1 int `json:"image_1,omitempty"` // branch-1 input side: the image resized (bicubic) to it
	Patch1 int `json:"patch_1,omitempty"` // branch-1 patch side
	Dim1   int `json:"dim_1,omitempty"`   // branch-1 width
	Heads1 int `json:"heads_1,omitempty"` // branch-1 heads
	MLP1   int `json:"mlp_1,omitempty"`   // branch-1 MLP hidden width
	Depth0 int `json:"depth_0,omitempty"` // branch-0 ViT blocks per multi-scale block
	Depth1 int `json:"depth_1,omitempty"` // branch-1 ViT blocks per multi-scale block
}

// presets are the named model shapes (issue 3); Classes defaults to the 6
// Three-Cell bits and PE to learnable.
var presets = map[string]Config{
	"tiny":  {Image: 14, Channels: 3, Patch: 2, Dim: 64, Depth: 4, Heads: 4, MLP: 256},
	"small": {Image: 28, Channels: 3, Patch: 2, Dim: 64, Depth: 4, Heads: 4, MLP: 256},
	"ti16":  {Image: 224, Channels: 3, Patch: 16, Dim: 192, Depth: 12, Heads: 3, MLP: 768},
	"s16":   {Image: 224, Channels: 3, Patch: 16, Dim: 384, Depth: 12, Heads: 6, MLP: 1536},
	"b16":   {Image: 224, Channels: 3, Patch: 16, Dim: 768, Depth: 12, Heads: 12, MLP: 3072},
}

// PresetNames returns the preset names, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Preset returns the named model config with 6 outputs, LayerNorm eps 1e-6
// and the learnable PE.
func Preset(name string) (Config, error) {
	c, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("loope: unknown preset %q (valid: %s)", name, strings.Join(PresetNames(), ", "))
	}
	c.Classes, c.Eps, c.PE = 6, 1e-6, PEConfig{Name: "learnable"}
	return c, nil
}

// Upper bounds of Config.Validate. They keep every model NewViT builds
// and every single-image Forward within memory a machine can have, so a
// hostile checkpoint's config cannot make the program allocate without
// bound; the paper's largest model (b16 at 224 px, grid 14) is far inside.
const (
	MaxImage    = 4096    // input side in pixels
	MaxChannels = 1024    // input channels
	MaxGrid     = 64      // patch-grid side G (tokens ≤ 64² + 1; rpe/irpe index tables are N²)
	MaxDim      = 8192    // token width D
	MaxDepth    = 1000    // blocks
	MaxMLP      = 65536   // MLP hidden width
	MaxClasses  = 1 << 20 // outputs K
	// MaxParams bounds the scalars of the backbone plus an (N+1)·D table
	// and LOOPE's patch conv: 2³⁰, 4 GB in float32 (b16 has 86M).
	MaxParams = 1 << 30
	// MaxAttention bounds depth·heads·N², the attention probabilities one
	// image keeps for the backward pass (also an upper bound of the
	// per-layer relative-position tables): 2³⁰.
	MaxAttention = 1 << 30
)

// Validate reports every inconsistency in c, and sizes beyond the Max*
// bounds: the fields every architecture reads here, the rest in the
// architecture's own check (validateViT for the ViT).
func (c Config) Validate() error {
	var errs []error
	pos := func(name string, v, most int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be > 0, got %d", name, v))
		} else if v > most {
			errs = append(errs, fmt.Errorf("%s %d exceeds the limit %d", name, v, most))
		}
	}
	pos("image", c.Image, MaxImage)
	pos("channels", c.Channels, MaxChannels)
	pos("classes", c.Classes, MaxClasses)
	if s, err := lookupArch(c.Arch); err != nil {
		errs = append(errs, err)
	} else if len(errs) == 0 {
		errs = append(errs, s.validate(c))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("loope: invalid config: %w", err)
	}
	return nil
}

// validateViT checks the ViT fields of c (image, channels and classes are
// in range): patch, width, depth, heads, MLP, the derived sizes, eps and
// the PE.
func validateViT(c Config) error {
	var errs []error
	pos := func(name string, v, most int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be > 0, got %d", name, v))
		} else if v > most {
			errs = append(errs, fmt.Errorf("%s %d exceeds the limit %d", name, v, most))
		}
	}
	pos("patch", c.Patch, MaxImage)
	pos("dim", c.Dim, MaxDim)
	pos("depth", c.Depth, MaxDepth)
	pos("heads", c.Heads, MaxDim)
	pos("mlp", c.MLP, MaxMLP)
	if len(errs) == 0 && c.Image%c.Patch == 0 {
		// Every field is in range, so these products fit in int64.
		g, d := int64(c.Grid()), int64(c.Dim)
		n := g*g + 1
		params := c.backboneParams() + n*d + 32*int64(c.Channels+2)*int64(c.Patch)*int64(c.Patch) + n*n
		switch {
		case g > MaxGrid:
			errs = append(errs, fmt.Errorf("grid %d (image %d / patch %d) exceeds the limit %d", g, c.Image, c.Patch, MaxGrid))
		case params > MaxParams:
			errs = append(errs, fmt.Errorf("about %d parameters exceed the limit %d", params, MaxParams))
		case int64(c.Depth)*int64(c.Heads)*n*n > MaxAttention:
			errs = append(errs, fmt.Errorf("depth %d · heads %d · tokens² %d exceeds the attention limit %d", c.Depth, c.Heads, n*n, MaxAttention))
		}
	}
	if c.Patch > 0 && c.Image%c.Patch != 0 {
		errs = append(errs, fmt.Errorf("image %d is not divisible by patch %d", c.Image, c.Patch))
	}
	if c.Dim > 0 && c.Heads > 0 && c.Dim%c.Heads != 0 {
		errs = append(errs, fmt.Errorf("dim %d is not divisible by heads %d", c.Dim, c.Heads))
	}
	if !(c.Eps > 0) || math.IsInf(c.Eps, 0) {
		errs = append(errs, fmt.Errorf("eps must be a positive finite number, got %g", c.Eps))
	}
	if _, ok := peRegistry[c.PE.Name]; !ok {
		errs = append(errs, fmt.Errorf("unknown positional embedding %q (valid: %s)", c.PE.Name, strings.Join(PENames(), ", ")))
	}
	return errors.Join(errs...)
}

// backboneParams returns the number of scalars of the ViT without its PE
// (patch conv, CLS, blocks, final norm, head): what every checkpoint of c
// stores at least. c's sizes must be within the Max* bounds.
func (c Config) backboneParams() int64 {
	d, m, k := int64(c.Dim), int64(c.MLP), int64(c.Classes)
	patch := d*int64(c.Channels)*int64(c.Patch)*int64(c.Patch) + d
	block := 4*d + 3*d*d + 3*d + d*d + d + m*d + m + d*m + d
	return patch + d + int64(c.Depth)*block + 2*d + k*d + k
}

// Grid returns the patch-grid side G = Image / Patch.
func (c Config) Grid() int { return c.Image / c.Patch }

// Tokens returns N = G² + 1 (patches plus CLS).
func (c Config) Tokens() int { return c.Grid()*c.Grid() + 1 }

// Block is one pre-norm transformer block (timm Block).
type Block[T Float] struct {
	Norm1W, Norm1B *Tensor[T] // (D), (D)
	QKVW, QKVB     *Tensor[T] // (3D, D), (3D): rows [0,D) Q, [D,2D) K, [2D,3D) V
	ProjW, ProjB   *Tensor[T] // (D, D), (D)
	Norm2W, Norm2B *Tensor[T] // (D), (D)
	FC1W, FC1B     *Tensor[T] // (MLP, D), (MLP)
	FC2W, FC2B     *Tensor[T] // (D, MLP), (D)
}

// ViT is a timm VisionTransformer with class token, final norm, a linear
// head on the CLS token, and a pluggable positional embedding.
type ViT[T Float] struct {
	Cfg            Config
	PatchW, PatchB *Tensor[T] // (D, C, P, P), (D)
	CLS            *Tensor[T] // (1, 1, D)
	PE             PosEmb[T]
	Blocks         []Block[T]
	NormW, NormB   *Tensor[T] // (D), (D)
	HeadW, HeadB   *Tensor[T] // (K, D), (K)
}

func init() {
	registerArch("vit", archSpec{
		summary:   "timm VisionTransformer: patch conv, CLS token, pre-norm blocks, head on CLS",
		validate:  validateViT,
		minParams: Config.backboneParams,
		f32:       func(c Config, seed uint64) (Model[float32], error) { return asModel(NewViT[float32](c, seed)) },
		f64:       func(c Config, seed uint64) (Model[float64], error) { return asModel(NewViT[float64](c, seed)) },
	})
}

// NewViT builds a ViT with timm's initialisation (docs/pe-zoo.md §1), drawing
// every random value from a PCG stream seeded with seed.
func NewViT[T Float](cfg Config, seed uint64) (*ViT[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if a := archName(cfg.Arch); a != "vit" {
		return nil, fmt.Errorf("loope: NewViT: config is of architecture %q; use NewModel", a)
	}
	rng := rand.New(rand.NewPCG(seed, 0x10013e))
	d, c, p := cfg.Dim, cfg.Channels, cfg.Patch
	m := &ViT[T]{Cfg: cfg}
	// Patch conv: PyTorch default kaiming_uniform(a=√5), i.e. U(±1/√fan_in) for weight and bias.
	bound := 1 / math.Sqrt(float64(c*p*p))
	m.PatchW = NewParam[T](d, c, p, p).FillUniform(rng, -bound, bound)
	m.PatchB = NewParam[T](d).FillUniform(rng, -bound, bound)
	m.CLS = NewParam[T](1, 1, d).FillNormal(rng, 0, 1e-6) // current timm: normal_(std=1e-6)
	pe, err := newPosEmb[T](cfg, rng)
	if err != nil {
		return nil, err
	}
	m.PE = pe
	linear := func(out, in int) (*Tensor[T], *Tensor[T]) {
		w := NewParam[T](out, in)
		truncNormal(w.Data, rng, 0.02)
		return w, NewParam[T](out)
	}
	ones := func() *Tensor[T] {
		t := NewParam[T](d)
		for i := range t.Data {
			t.Data[i] = 1
		}
		return t
	}
	m.Blocks = make([]Block[T], cfg.Depth)
	for i := range m.Blocks {
		b := &m.Blocks[i]
		b.Norm1W, b.Norm1B = ones(), NewParam[T](d)
		b.QKVW, b.QKVB = linear(3*d, d)
		b.ProjW, b.ProjB = linear(d, d)
		b.Norm2W, b.Norm2B = ones(), NewParam[T](d)
		b.FC1W, b.FC1B = linear(cfg.MLP, d)
		b.FC2W, b.FC2B = linear(d, cfg.MLP)
	}
	m.NormW, m.NormB = ones(), NewParam[T](d)
	m.HeadW, m.HeadB = linear(cfg.Classes, d)
	return m, nil
}

// truncNormal fills x with N(0, std²) truncated to [-2, 2] absolute, as
// timm's trunc_normal_(std=std) (a = −2, b = 2 are absolute bounds).
func truncNormal[T Float](x []T, rng *rand.Rand, std float64) {
	for i := range x {
		v := std * rng.NormFloat64()
		for v < -2 || v > 2 {
			v = std * rng.NormFloat64()
		}
		x[i] = T(v)
	}
}

// Params returns every tensor of the model with its timm checkpoint name,
// in a fixed order: backbone first, PE tensors in place of pos_embed.
func (m *ViT[T]) Params() []NamedParam[T] {
	ps := []NamedParam[T]{
		{Name: "patch_embed.proj.weight", T: m.PatchW},
		{Name: "patch_embed.proj.bias", T: m.PatchB, NoDecay: true},
		{Name: "cls_token", T: m.CLS, NoDecay: true},
	}
	ps = append(ps, m.PE.Params()...)
	for i := range m.Blocks {
		b := &m.Blocks[i]
		pre := fmt.Sprintf("blocks.%d.", i)
		ps = append(ps,
			NamedParam[T]{Name: pre + "norm1.weight", T: b.Norm1W, NoDecay: true},
			NamedParam[T]{Name: pre + "norm1.bias", T: b.Norm1B, NoDecay: true},
			NamedParam[T]{Name: pre + "attn.qkv.weight", T: b.QKVW},
			NamedParam[T]{Name: pre + "attn.qkv.bias", T: b.QKVB, NoDecay: true},
			NamedParam[T]{Name: pre + "attn.proj.weight", T: b.ProjW},
			NamedParam[T]{Name: pre + "attn.proj.bias", T: b.ProjB, NoDecay: true},
			NamedParam[T]{Name: pre + "norm2.weight", T: b.Norm2W, NoDecay: true},
			NamedParam[T]{Name: pre + "norm2.bias", T: b.Norm2B, NoDecay: true},
			NamedParam[T]{Name: pre + "mlp.fc1.weight", T: b.FC1W},
			NamedParam[T]{Name: pre + "mlp.fc1.bias", T: b.FC1B, NoDecay: true},
			NamedParam[T]{Name: pre + "mlp.fc2.weight", T: b.FC2W},
			NamedParam[T]{Name: pre + "mlp.fc2.bias", T: b.FC2B, NoDecay: true},
		)
	}
	return append(ps,
		NamedParam[T]{Name: "norm.weight", T: m.NormW, NoDecay: true},
		NamedParam[T]{Name: "norm.bias", T: m.NormB, NoDecay: true},
		NamedParam[T]{Name: "head.weight", T: m.HeadW},
		NamedParam[T]{Name: "head.bias", T: m.HeadB, NoDecay: true},
	)
}

// Trainable returns the tensors the optimiser updates (Params without buffers).
func (m *ViT[T]) Trainable() []*Tensor[T] { return trainable[T](m) }

// NumParams returns the number of trainable scalars.
func (m *ViT[T]) NumParams() int { return NumParams[T](m) }

// Config returns the model's shape.
func (m *ViT[T]) Config() Config { return m.Cfg }

// PosEmbs returns the model's one positional embedding.
func (m *ViT[T]) PosEmbs() []PosEmb[T] { return []PosEmb[T]{m.PE} }

// Forward maps images img (B, C, H, W) to logits (B, K) on tp: timm's
// VisionTransformer.forward, op for op. Where a fused op computes the same
// bits faster, ops (ops_fused.go) runs it in place of the composition.
func (m *ViT[T]) Forward(tp *Tape[T], img *Tensor[T]) *Tensor[T] {
	cfg := m.Cfg
	if len(img.Shape) != 4 || img.Shape[1] != cfg.Channels || img.Shape[2] != cfg.Image || img.Shape[3] != cfg.Image {
		panic(fmt.Sprintf("loope: ViT.Forward: image shape %v, want (B, %d, %d, %d)", img.Shape, cfg.Channels, cfg.Image, cfg.Image))
	}
	b, d, n := img.Shape[0], cfg.Dim, cfg.Tokens()
	ops := newFusedOps(tp, m.PE)
	// patch_embed: conv k = s = P, then flatten(2).transpose(1, 2) → (B, N−1, D).
	x := tp.Conv2d(img, m.PatchW, m.PatchB, cfg.Patch, 0, 1)
	x = tp.Transpose(tp.Reshape(x, b, d, n-1), 1, 2)
	// _pos_embed: CLS first (expanded (1, 1, D) → (B, 1, D)), then the PE.
	cls := tp.Add(tp.newTensor(false, []int{b, 1, d}), m.CLS)
	x = tp.Concat(1, cls, x)      // (B, N, D)
	x = m.PE.AddInput(tp, x, img) // (B, N, D)
	for i := range m.Blocks {
		blk := &m.Blocks[i]
		// x = x + proj(attention(qkv(norm1(x))))
		y := tp.LayerNorm(x, blk.Norm1W, blk.Norm1B, cfg.Eps)
		if ai, ok := m.PE.(attnInputPE[T]); ok { // PaPE reads the attention input
			ai.attnInput(tp, i, y)
		}
		qkv := tp.Linear(y, blk.QKVW, blk.QKVB)      // (B, N, 3D)
		a := m.attention(tp, ops, i, qkv)            // (B, N, D)
		x = ops.residual(x, a, blk.ProjW, blk.ProjB) // x + proj(a)
		// x = x + fc2(GELU(fc1(norm2(x))))
		y = tp.LayerNorm(x, blk.Norm2W, blk.Norm2B, cfg.Eps)
		h := ops.gelu(y, blk.FC1W, blk.FC1B)       // (B, N, MLP)
		x = ops.residual(x, h, blk.FC2W, blk.FC2B) // x + fc2(h)
		x = m.PE.AfterBlock(tp, i, x)
	}
	// timm: norm over all tokens, then pool = x[:, 0]. LayerNorm acts on
	// each token alone, so normalising only the CLS token is the same
	// result with 1/N of the work (and no gradient rows of zeros).
	x = tp.Reshape(tp.Slice(x, 1, 0, 1), b, d) // (B, D)
	x = tp.LayerNorm(x, m.NormW, m.NormB, cfg.Eps)
	return tp.Linear(x, m.HeadW, m.HeadB) // (B, K)
}

// attention returns softmax((q·scale)·kᵀ + bias)·v per head for the fused
// projection qkv (B, N, 3D) of block layer, with the PE's q/k rotation and
// logit bias, the heads merged: (B, N, D); scale = 1/√Dh.
func (m *ViT[T]) attention(tp *Tape[T], ops fusedOps[T], layer int, qkv *Tensor[T]) *Tensor[T] {
	h := m.Cfg.Heads
	scale := 1 / math.Sqrt(float64(m.Cfg.Dim/h))
	if ops.attentionQKV { // the PE leaves q and k alone: no head copies
		return tp.attentionQKV(qkv, m.PE.AttnBias(tp, layer, nil), h, scale)
	}
	q, k, v := tp.QKVHeads(qkv, h) // (B, H, N, Dh) each
	q, k = m.PE.RotateQK(tp, layer, q, k)
	return tp.MergeHeads(tp.Attention(q, k, v, m.PE.AttnBias(tp, layer, q), scale))
}
