// This file holds the positional-embedding seam of the ViT: the PosEmb
// interface with its four hooks, the registry of PE names, and the two
// simplest PEs, none and learnable.

package loope

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// PosEmb is a positional embedding plugged into the ViT. The model calls
// each hook at one fixed place; a PE that does not use a hook returns its
// input unchanged (embed NoHooks to get those defaults).
type PosEmb[T Float] interface {
	// Name returns the PE's registry name (the -pe flag value).
	Name() string
	// Params returns the PE's learnable tensors and buffers with their
	// checkpoint names (all under "pos_embed").
	Params() []NamedParam[T]
	// AddInput is called once, after the CLS concat: x (B, N, D) tokens with
	// CLS at row 0, img (B, C, H, W) the model input. It returns x + PE.
	AddInput(tp *Tape[T], x, img *Tensor[T]) *Tensor[T]
	// AttnBias returns an additive attention-logit bias for layer, (H, N, N)
	// or (B, H, N, N), or nil. q (B, H, N, Dh) is the unscaled query.
	AttnBias(tp *Tape[T], layer int, q *Tensor[T]) *Tensor[T]
	// RotateQK rotates q and k (B, H, N, Dh) of layer before the q·kᵀ.
	RotateQK(tp *Tape[T], layer int, q, k *Tensor[T]) (*Tensor[T], *Tensor[T])
	// AfterBlock is called with the tokens x (B, N, D) after block i.
	AfterBlock(tp *Tape[T], i int, x *Tensor[T]) *Tensor[T]
}

// plainQK reports whether pe leaves queries and keys alone: its RotateQK
// returns q and k unchanged and its AttnBias does not read q. The ViT then
// runs attention straight on the fused qkv projection (attentionQKV)
// without forming q, k and v. It names the package's PEs that qualify
// (TestPlainQK checks each against its hooks); any other PosEmb, e.g. one
// defined outside the package, takes the general path.
func plainQK[T Float](pe PosEmb[T]) bool {
	switch p := pe.(type) {
	case noPE[T], *learnablePE[T], *fixedPE[T], *loopePE[T], *fourierPE[T], *cpvtPE[T], *rpePE[T], *papePE[T]:
		return true
	case *irpePE[T]:
		return !p.ctx // the contextual mode dots q with its tables
	}
	return false
}

// NamedParam is a model tensor with its checkpoint (timm) name. Buffer
// marks tensors that are saved but not trained (e.g. BatchNorm running
// statistics); NoDecay marks parameters AdamW must not decay.
type NamedParam[T Float] struct {
	Name    string
	T       *Tensor[T]
	Buffer  bool
	NoDecay bool
}

// NoHooks gives a PosEmb the identity for every hook; embed it and
// override what the PE uses.
type NoHooks[T Float] struct{}

// AddInput returns x unchanged.
func (NoHooks[T]) AddInput(tp *Tape[T], x, img *Tensor[T]) *Tensor[T] { return x }

// AttnBias returns nil: no attention bias.
func (NoHooks[T]) AttnBias(tp *Tape[T], layer int, q *Tensor[T]) *Tensor[T] { return nil }

// RotateQK returns q and k unchanged.
func (NoHooks[T]) RotateQK(tp *Tape[T], layer int, q, k *Tensor[T]) (*Tensor[T], *Tensor[T]) {
	return q, k
}

// AfterBlock returns x unchanged.
func (NoHooks[T]) AfterBlock(tp *Tape[T], i int, x *Tensor[T]) *Tensor[T] { return x }

// PEConfig selects a positional embedding and its options. It is saved in
// checkpoint metadata, so every option a PE reads must be a field here.
type PEConfig struct {
	Name string `json:"name"` // registry name, e.g. "learnable", "loope"

	// additive PEs (pe1): posemb_sinusoid.go, loope.go, fourier.go.
	// Empty or zero values select the documented default.
	Freqs         string `json:"freqs,omitempty"`          // frequency set of every sinusoidal PE: "" or "vaswani", "f1".."f4" (FreqSet)
	LoopeSquash   string `json:"loope_squash,omitempty"`   // loope X_C squashing: "sigmoid" (2σ−1, default) or "tanh"
	LoopeAct      string `json:"loope_act,omitempty"`      // loope conv activation: "gelu" (default) or "relu"
	LoopeBias     bool   `json:"loope_bias,omitempty"`     // loope Linear(N, N) with a bias (default false, as the authors' code)
	FourierDim    int    `json:"fourier_dim,omitempty"`    // fourier feature width F (even; 0 = 768, the authors' value)
	FourierHidden int    `json:"fourier_hidden,omitempty"` // fourier MLP hidden width (0 = 32, the authors' value)

	// rotation PEs (comrope.go, rope_dinov3.go, string.go). Zero selects the documented default.
	ComRoPEBlock int     `json:"comrope_block,omitempty"` // ComRoPE block size b (0 = 2, the authors' default); must divide the head dim
	DinoShift    float64 `json:"dino_shift,omitempty"`    // rope-dinov3 training shift s of the coordinates (0 = off, the authors' default)
	DinoJitter   float64 `json:"dino_jitter,omitempty"`   // rope-dinov3 training jitter J ≥ 1 (0 = off, the authors' default)
	DinoRescale  float64 `json:"dino_rescale,omitempty"`  // rope-dinov3 training rescale R ≥ 1 (0 = 2, the authors' default; 1 = off)
	StringBasis  string  `json:"string_basis,omitempty"`  // string: "" or "cayley" (default), or "circulant"
}

// trainStepper is implemented by PEs that differ while training
// (rope-dinov3's coordinate augmentation). Train calls trainStep before the
// forward of every step and evalMode after its backward, so evaluation and
// any other forward see the inference PE. Draws depend only on (seed,
// step): runs are bit-reproducible and a resumed run draws what the
// uninterrupted one would have.
type trainStepper interface {
	trainStep(seed uint64, step int)
	evalMode()
}

// peTrainMode puts the PEs of models into training mode for step (on) or
// back into inference mode.
func peTrainMode[T Float](models []Model[T], on bool, seed uint64, step int) {
	for _, m := range models {
		for _, pe := range m.PosEmbs() {
			if ts, ok := pe.(trainStepper); ok {
				if on {
					ts.trainStep(seed, step)
				} else {
					ts.evalMode()
				}
			}
		}
	}
}

// peRegistry maps PE names to constructors for float32 and float64; it is
// the one list of PE names (flag help and errors read it).
var peRegistry = map[string]struct {
	summary string
	f32     func(cfg Config, rng *rand.Rand) (PosEmb[float32], error)
	f64     func(cfg Config, rng *rand.Rand) (PosEmb[float64], error)
}{}

// registerPE adds a PE to the registry for both precisions.
func registerPE(name, summary string,
	f32 func(cfg Config, rng *rand.Rand) (PosEmb[float32], error),
	f64 func(cfg Config, rng *rand.Rand) (PosEmb[float64], error)) {
	peRegistry[name] = struct {
		summary string
		f32     func(cfg Config, rng *rand.Rand) (PosEmb[float32], error)
		f64     func(cfg Config, rng *rand.Rand) (PosEmb[float64], error)
	}{summary, f32, f64}
}

// PENames returns the registered PE names, sorted.
func PENames() []string {
	names := make([]string, 0, len(peRegistry))
	for n := range peRegistry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PESummary returns the one-line description of a registered PE.
func PESummary(name string) string { return peRegistry[name].summary }

// newPosEmb builds the PE cfg.PE.Name for precision T.
func newPosEmb[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	e, ok := peRegistry[cfg.PE.Name]
	if !ok {
		return nil, fmt.Errorf("loope: unknown positional embedding %q (valid: %s)", cfg.PE.Name, strings.Join(PENames(), ", "))
	}
	var pe any
	var err error
	switch any(T(0)).(type) {
	case float32:
		pe, err = e.f32(cfg, rng)
	default:
		pe, err = e.f64(cfg, rng)
	}
	if err != nil {
		return nil, err
	}
	return pe.(PosEmb[T]), nil
}

func init() {
	registerPE("none", "no positional embedding (patches are permutation-equivariant)", newNoPE[float32], newNoPE[float64])
	registerPE("learnable", "timm learnable absolute PE, (N+1)×D incl. the CLS row, N(0, 0.02²)", newLearnablePE[float32], newLearnablePE[float64])
}

// noPE is the "none" PE: it adds nothing.
type noPE[T Float] struct{ NoHooks[T] }

func newNoPE[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) { return noPE[T]{}, nil }

func (noPE[T]) Name() string            { return "none" }
func (noPE[T]) Params() []NamedParam[T] { return nil }

// learnablePE is timm's pos_embed: one learnable row per token, CLS
// included, added after the CLS concat (docs/pe-zoo.md §4).
type learnablePE[T Float] struct {
	NoHooks[T]
	E *Tensor[T] // (1, N, D), row 0 for CLS
}

func newLearnablePE[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	e := NewParam[T](1, cfg.Tokens(), cfg.Dim)
	truncNormal(e.Data, rng, 0.02)
	return &learnablePE[T]{E: e}, nil
}

func (p *learnablePE[T]) Name() string { return "learnable" }

func (p *learnablePE[T]) Params() []NamedParam[T] {
	return []NamedParam[T]{{Name: "pos_embed", T: p.E, NoDecay: true}}
}

func (p *learnablePE[T]) AddInput(tp *Tape[T], x, img *Tensor[T]) *Tensor[T] {
	return tp.Add(x, p.E)
}
