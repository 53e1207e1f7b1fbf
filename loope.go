// This file holds LOOPE (arXiv 2504.14386), the learnable, image-dependent
// sinusoidal PE, exactly as the authors' ArtPE (docs/paper.md §2.3, the
// authors' code, and §2.4; models/positional_encodings/art_pe.py):
//
//	I_c = [R, G, B, rowmap, colmap]            (B, C+2, H, W), maps = meshgrid(linspace(−1, 1, H), linspace(−1, 1, W), 'ij')
//	Conv(C+2→32, k=P, s=P) → act               (B, 32, h, w)
//	Conv(32→16, 5, 1, 2) → act → Conv(16→8) → act → Conv(8→4) → act → Conv(4→1) → act
//	BatchNorm2d(1) → flatten                   (B, N)
//	Linear(N, N, no bias) → 2σ − 1 = X_C       (B, N), X_C ∈ (−1, 1)
//	X = X_G + X_C                              X_G = 1-based Gilbert index of each raster token
//	E = interleaved sin/cos of X·ω             (B, N, D), ω = Vaswani (or PEConfig.Freqs)
//	PE = [cls_token; E]                        (B, N+1, D), added to the tokens after the CLS concat
//
// act is GELU (PEConfig.LoopeAct "relu": ReLU), the squashing 2σ − 1
// (PEConfig.LoopeSquash "tanh": tanh, the v1 paper's Eq. 10), the Linear has
// no bias unless PEConfig.LoopeBias. Every layer has PyTorch's default init:
// conv and linear weights and biases U(±1/√fan_in), BatchNorm γ = 1, β = 0,
// running mean 0, running variance 1 (momentum 0.1, eps 1e-5); the CLS
// vector starts at zero.
//
// Parameters (checkpoint names, shapes for C input channels, patch P, grid
// h×w, N = h·w, width D):
//
//	pos_embed.art_conv.0.weight           (32, C+2, P, P)
//	pos_embed.art_conv.0.bias             (32)
//	pos_embed.art_conv.2.weight, .bias    (16, 32, 5, 5), (16)
//	pos_embed.art_conv.4.weight, .bias    (8, 16, 5, 5), (8)
//	pos_embed.art_conv.6.weight, .bias    (4, 8, 5, 5), (4)
//	pos_embed.art_conv.8.weight, .bias    (1, 4, 5, 5), (1)
//	pos_embed.art_conv.10.weight, .bias   (1), (1)          BatchNorm γ, β
//	pos_embed.art_conv.10.running_mean    (1)               buffer
//	pos_embed.art_conv.10.running_var     (1)               buffer
//	pos_embed.art_conv.12.weight          (N, N)
//	pos_embed.art_conv.12.bias            (N)               only with LoopeBias
//	pos_embed.cls_token                   (1, D)
//
// The indices are those of the authors' nn.Sequential (odd indices are the
// activations, 11 the Flatten, 13 the Sigmoid), so the state-dict names of
// ArtPE under "pos_embed." match. Weights decay; biases, BatchNorm and the
// CLS vector are NoDecay.
//
// Training vs inference: BatchNorm uses batch statistics (and updates the
// running ones) on a recording tape and the running statistics when
// tp.NoGrad is set. A no-grad tape is this package's inference mode
// (Evaluate uses one), so PyTorch's model.train()/model.eval() switch is
// the tape's NoGrad flag; no extra model state is needed.

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
)

func init() {
	registerPE("loope", "LOOPE (ArtPE): sinusoid at Gilbert position + learned image-dependent offset X_C ∈ (−1, 1), learnable CLS row",
		newLoopePE[float32], newLoopePE[float64])
}

// LOOPE layer constants of the authors' ArtPE.
const (
	loopeBNMomentum = 0.1
	loopeBNEps      = 1e-5
	loopeKernel     = 5 // kernel of convs 2–5 (padding 2, stride 1)
)

// loopeWidths are the output channels of the five convolutions.
var loopeWidths = [5]int{32, 16, 8, 4, 1}

// loopePE is LOOPE's PE module (see the file comment).
type loopePE[T Float] struct {
	NoHooks[T]
	ConvW, ConvB           [5]*Tensor[T] // art_conv.{0,2,4,6,8}: (32, C+2, P, P) (32), (16, 32, 5, 5) (16), …, (1, 4, 5, 5) (1)
	BNW, BNB               *Tensor[T]    // art_conv.10 γ, β (1)
	BNMean, BNVar          *Tensor[T]    // art_conv.10 running statistics (1), buffers
	LinW, LinB             *Tensor[T]    // art_conv.12: (N, N), (N) or nil
	CLS                    *Tensor[T]    // cls_token (1, D)
	coords                 []T           // (2, H, W): row map, column map
	xg                     *Tensor[T]    // (N) 1-based Gilbert positions of the raster tokens
	freqs                  *Tensor[T]    // (D/2) ω
	tanh, relu             bool          // variants
	channels, image, patch int
	grid, dim              int
}

func newLoopePE[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	pc := cfg.PE
	p := &loopePE[T]{channels: cfg.Channels, image: cfg.Image, patch: cfg.Patch, grid: cfg.Grid(), dim: cfg.Dim}
	switch pc.LoopeSquash {
	case "", "sigmoid":
	case "tanh":
		p.tanh = true
	default:
		return nil, fmt.Errorf("loope: PE loope: unknown squash %q (valid: sigmoid, tanh)", pc.LoopeSquash)
	}
	switch pc.LoopeAct {
	case "", "gelu":
	case "relu":
		p.relu = true
	default:
		return nil, fmt.Errorf("loope: PE loope: unknown activation %q (valid: gelu, relu)", pc.LoopeAct)
	}
	if cfg.Dim%2 != 0 {
		return nil, fmt.Errorf("loope: PE loope: dim %d must be even", cfg.Dim)
	}
	if p.grid < 2 {
		// A 1×1 map gives a batch of one image one value per BatchNorm
		// channel, which training cannot normalise (PyTorch refuses too).
		return nil, fmt.Errorf("loope: PE loope: grid %d: needs at least 2×2 patches", p.grid)
	}
	freqs, err := freqsFor(pc, cfg.Dim)
	if err != nil {
		return nil, err
	}
	g, n := p.grid, p.grid*p.grid
	// PyTorch default init, drawn layer by layer, weight before bias.
	in := cfg.Channels + 2
	for i, out := range loopeWidths {
		k := loopeKernel
		if i == 0 {
			k = cfg.Patch
		}
		bound := 1 / math.Sqrt(float64(in*k*k))
		p.ConvW[i] = NewParam[T](out, in, k, k).FillUniform(rng, -bound, bound)
		p.ConvB[i] = NewParam[T](out).FillUniform(rng, -bound, bound)
		in = out
	}
	p.BNW, p.BNB = NewParam[T](1), NewParam[T](1)
	p.BNW.Data[0] = 1
	p.BNMean, p.BNVar = New[T](1), New[T](1)
	p.BNVar.Data[0] = 1
	bound := 1 / math.Sqrt(float64(n))
	p.LinW = NewParam[T](n, n).FillUniform(rng, -bound, bound)
	if pc.LoopeBias {
		p.LinB = NewParam[T](n).FillUniform(rng, -bound, bound)
	}
	p.CLS = NewParam[T](1, cfg.Dim)

	// Constants: coordinate maps, X_G, ω.
	hw := cfg.Image * cfg.Image
	p.coords = make([]T, 2*hw)
	lin := linspace(-1, 1, cfg.Image)
	for r := range cfg.Image {
		for c := range cfg.Image {
			p.coords[r*cfg.Image+c] = T(lin[r])    // channel 0 varies with the row (i)
			p.coords[hw+r*cfg.Image+c] = T(lin[c]) // channel 1 with the column (j)
		}
	}
	p.xg = New[T](n)
	for t, v := range OrderPositions(Gilbert(g, g))[1:] {
		p.xg.Data[t] = T(v)
	}
	p.freqs = New[T](cfg.Dim / 2)
	for i, w := range freqs {
		p.freqs.Data[i] = T(w)
	}
	return p, nil
}

func (p *loopePE[T]) Name() string { return "loope" }

func (p *loopePE[T]) Params() []NamedParam[T] {
	var ps []NamedParam[T]
	for i := range p.ConvW {
		pre := fmt.Sprintf("pos_embed.art_conv.%d.", 2*i)
		ps = append(ps,
			NamedParam[T]{Name: pre + "weight", T: p.ConvW[i]},
			NamedParam[T]{Name: pre + "bias", T: p.ConvB[i], NoDecay: true})
	}
	ps = append(ps,
		NamedParam[T]{Name: "pos_embed.art_conv.10.weight", T: p.BNW, NoDecay: true},
		NamedParam[T]{Name: "pos_embed.art_conv.10.bias", T: p.BNB, NoDecay: true},
		NamedParam[T]{Name: "pos_embed.art_conv.10.running_mean", T: p.BNMean, Buffer: true, NoDecay: true},
		NamedParam[T]{Name: "pos_embed.art_conv.10.running_var", T: p.BNVar, Buffer: true, NoDecay: true},
		NamedParam[T]{Name: "pos_embed.art_conv.12.weight", T: p.LinW})
	if p.LinB != nil {
		ps = append(ps, NamedParam[T]{Name: "pos_embed.art_conv.12.bias", T: p.LinB, NoDecay: true})
	}
	return append(ps, NamedParam[T]{Name: "pos_embed.cls_token", T: p.CLS, NoDecay: true})
}

// AddInput returns x + PE(img): x (B, N+1, D), img (B, C, H, W).
func (p *loopePE[T]) AddInput(tp *Tape[T], x, img *Tensor[T]) *Tensor[T] {
	return tp.Add(x, p.embed(tp, img))
}

// context returns X_C (B, N) of the images img (B, C, H, W): the output of
// art_conv, squashed into (−1, 1).
func (p *loopePE[T]) context(tp *Tape[T], img *Tensor[T]) *Tensor[T] {
	b, n := img.Shape[0], p.grid*p.grid
	h := p.convs(tp, img)
	h = tp.BatchNorm2d(h, p.BNW, p.BNB, p.BNMean, p.BNVar, loopeBNMomentum, loopeBNEps, !tp.NoGrad)
	h = tp.Linear(tp.Reshape(h, b, n), p.LinW, p.LinB) // (B, N)
	if p.tanh {
		return tp.Tanh(h)
	}
	return tp.AddScalar(tp.Scale(tp.Sigmoid(h), 2), -1)
}

// convs returns the five activated convolutions of [img, rowmap, colmap]:
// img (B, C, H, W) → (B, 1, h, w), the BatchNorm input.
func (p *loopePE[T]) convs(tp *Tape[T], img *Tensor[T]) *Tensor[T] {
	if len(img.Shape) != 4 || img.Shape[1] != p.channels || img.Shape[2] != p.image || img.Shape[3] != p.image {
		panic(fmt.Sprintf("loope: LOOPE: image shape %v, want (B, %d, %d, %d)", img.Shape, p.channels, p.image, p.image))
	}
	b, hw := img.Shape[0], p.image*p.image
	maps := tp.newTensor(false, []int{b, 2, p.image, p.image})
	for i := range b {
		copy(maps.Data[i*2*hw:(i+1)*2*hw], p.coords)
	}
	h := tp.Concat(1, img, maps) // (B, C+2, H, W)
	for i := range p.ConvW {
		stride, pad := 1, loopeKernel/2
		if i == 0 {
			stride, pad = p.patch, 0
		}
		h = tp.Conv2d(h, p.ConvW[i], p.ConvB[i], stride, pad, 1)
		if p.relu {
			h = tp.ReLU(h)
		} else {
			h = tp.GELU(h)
		}
	}
	return h
}

// embed returns the PE (B, N+1, D) of img (B, C, H, W).
func (p *loopePE[T]) embed(tp *Tape[T], img *Tensor[T]) *Tensor[T] {
	b, n, d := img.Shape[0], p.grid*p.grid, p.dim
	x := tp.Add(p.context(tp, img), p.xg)                     // X = X_C + X_G (B, N)
	e := tp.SinCos(tp.Mul(tp.Reshape(x, b, n, 1), p.freqs))   // (B, N, D)
	cls := tp.Add(tp.newTensor(false, []int{b, 1, d}), p.CLS) // expand (1, D) → (B, 1, D)
	return tp.Concat(1, cls, e)
}

// LoopePositions returns the LOOPE positions X = X_G + X_C (B, N) of the
// images img (B, C, H, W), in raster token order, for a model whose PE is
// "loope"; X_G alone is OrderPositions(Gilbert(G, G))[1:]. A tape with
// NoGrad set gives the inference-mode values (BatchNorm on running
// statistics). Useful for PESI of the image-dependent order
// (docs/paper.md §10 #21) and for `loope pe`.
func LoopePositions[T Float](m *ViT[T], tp *Tape[T], img *Tensor[T]) (*Tensor[T], error) {
	p, ok := m.PE.(*loopePE[T])
	if !ok {
		return nil, fmt.Errorf("loope: LoopePositions: the model's PE is %q, not loope", m.PE.Name())
	}
	return tp.Add(p.context(tp, img), p.xg), nil
}
