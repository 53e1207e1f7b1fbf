// This file holds the learnable Fourier-feature PE ("Fourier" / "Learn.
// Freq." of the LOOPE tables, after Li et al., NeurIPS 2021) exactly as the
// LOOPE authors' code (docs/pe-zoo.md §9; models/vit_fourier.py
// FourierPositionalEncoding with groups G = 1):
//
//	p_t = (x_c, y_r) ∈ [−1, 1]²    x = linspace(−1, 1, w)[column], y = linspace(−1, 1, h)[row]
//	                               (numpy meshgrid(x, y), flattened: token t = r·w + c)
//	proj = p · W_rᵀ                (N, F/2), W_r (F/2, 2) ~ N(0, 1)
//	F_t  = interleaved [sin(proj), cos(proj)]  (N, F), no 1/√F factor
//	Y    = fc2(GELU(fc1(F)))       fc1 Linear(F→Hd), fc2 Linear(Hd→D), PyTorch default init U(±1/√fan_in)
//	PE   = [cls_embed; Y]          (N+1, D), cls_embed (1, D) learnable, zero-init; added after the CLS concat
//
// F = PEConfig.FourierDim (0: 768) and Hd = PEConfig.FourierHidden (0: 32),
// the authors' values; F does not depend on D. The PE does not depend on
// the image: it is one (N+1, D) table, recomputed from its parameters in
// every forward.
//
// Parameters (checkpoint names, shapes):
//
//	pos_embed.Wr          (F/2, 2)    NoDecay (a frequency matrix, like pos_embed)
//	pos_embed.fc1.weight  (Hd, F)
//	pos_embed.fc1.bias    (Hd)        NoDecay
//	pos_embed.fc2.weight  (D, Hd)
//	pos_embed.fc2.bias    (D)         NoDecay
//	pos_embed.cls_embed   (1, D)      NoDecay
//
// For ViT-Ti/16 (D = 192, F = 768, Hd = 32): 768 + 24,608 + 6,336 + 192
// = 31,904 parameters (docs/pe-zoo.md §15).

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
)

func init() {
	registerPE("fourier", "learnable Fourier features (LOOPE repo): MLP(sin|cos of [−1,1]² grid · W_rᵀ), learnable CLS row",
		newFourierPE[float32], newFourierPE[float64])
}

// Defaults of the authors' FourierPositionalEncoding.
const (
	fourierDefaultDim    = 768
	fourierDefaultHidden = 32
)

// fourierPE is the learnable Fourier-feature PE (see the file comment).
type fourierPE[T Float] struct {
	NoHooks[T]
	Wr         *Tensor[T] // (F/2, 2)
	FC1W, FC1B *Tensor[T] // (Hd, F), (Hd)
	FC2W, FC2B *Tensor[T] // (D, Hd), (D)
	CLS        *Tensor[T] // (1, D)
	pos        *Tensor[T] // (N, 2) grid coordinates (x = column, y = row)
}

func newFourierPE[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	pc := cfg.PE
	f, hd := pc.FourierDim, pc.FourierHidden
	if f == 0 {
		f = fourierDefaultDim
	}
	if hd == 0 {
		hd = fourierDefaultHidden
	}
	if f < 2 || f%2 != 0 || hd < 1 || f > MaxDim || hd > MaxDim {
		return nil, fmt.Errorf("loope: PE fourier: feature width %d must be even and in [2, %d], hidden width %d in [1, %d]", f, MaxDim, hd, MaxDim)
	}
	if pc.Freqs != "" {
		return nil, fmt.Errorf("loope: PE fourier learns its frequencies; frequency set %q does not apply", pc.Freqs)
	}
	g, d := cfg.Grid(), cfg.Dim
	p := &fourierPE[T]{}
	p.Wr = NewParam[T](f/2, 2).FillNormal(rng, 0, 1)
	b1 := 1 / math.Sqrt(float64(f))
	p.FC1W = NewParam[T](hd, f).FillUniform(rng, -b1, b1)
	p.FC1B = NewParam[T](hd).FillUniform(rng, -b1, b1)
	b2 := 1 / math.Sqrt(float64(hd))
	p.FC2W = NewParam[T](d, hd).FillUniform(rng, -b2, b2)
	p.FC2B = NewParam[T](d).FillUniform(rng, -b2, b2)
	p.CLS = NewParam[T](1, d)
	p.pos = New[T](g*g, 2)
	lin := linspace(-1, 1, g)
	for r := range g {
		for c := range g {
			p.pos.Data[2*(r*g+c)], p.pos.Data[2*(r*g+c)+1] = T(lin[c]), T(lin[r])
		}
	}
	return p, nil
}

func (p *fourierPE[T]) Name() string { return "fourier" }

func (p *fourierPE[T]) Params() []NamedParam[T] {
	return []NamedParam[T]{
		{Name: "pos_embed.Wr", T: p.Wr, NoDecay: true},
		{Name: "pos_embed.fc1.weight", T: p.FC1W},
		{Name: "pos_embed.fc1.bias", T: p.FC1B, NoDecay: true},
		{Name: "pos_embed.fc2.weight", T: p.FC2W},
		{Name: "pos_embed.fc2.bias", T: p.FC2B, NoDecay: true},
		{Name: "pos_embed.cls_embed", T: p.CLS, NoDecay: true},
	}
}

// AddInput returns x + PE: x (B, N+1, D), PE (N+1, D) broadcast over B.
func (p *fourierPE[T]) AddInput(tp *Tape[T], x, img *Tensor[T]) *Tensor[T] {
	return tp.Add(x, p.embed(tp))
}

// embed returns the (N+1, D) table.
func (p *fourierPE[T]) embed(tp *Tape[T]) *Tensor[T] {
	feat := tp.SinCos(tp.Linear(p.pos, p.Wr, nil)) // (N, F)
	y := tp.Linear(tp.GELU(tp.Linear(feat, p.FC1W, p.FC1B)), p.FC2W, p.FC2B)
	return tp.Concat(0, p.CLS, y)
}
