// This file plugs the fixed sinusoidal tables of sinusoid.go into the ViT:
// one registry entry per name of FixedPENames (the 1-D sinusoid over the
// raster, Gilbert/"Hilbert", snake, zigzag, Morton, Peano and classic
// Hilbert orders, the MAE 2-D sin-cos and the LOOPE repo's summed 2-D
// variant), each with the frequency set PEConfig.Freqs.
//
// A fixed PE has no parameters and saves nothing in checkpoints: its table
// is a pure function of the config (name, Dim, grid, Freqs), which the
// checkpoint metadata records, so it is rebuilt on load. Like the LOOPE
// repo's frozen buffers it is added after the CLS concat, row 0 to CLS.

package loope

import (
	"fmt"
	"math/rand/v2"
)

// fixedPESummaries describes each fixed PE for the flag help.
var fixedPESummaries = map[string]string{
	"sin1d":           "fixed 1-D Vaswani sinusoid, interleaved, CLS at 0, patches 1…N in raster order",
	"hilbert":         "fixed sinusoid at the 1-based Gilbert (generalized Hilbert) positions, CLS at 0 (paper's \"Hilbert\")",
	"snake":           "fixed sinusoid along the snake (boustrophedon) order, CLS at 0",
	"zigzag":          "fixed sinusoid along the JPEG zigzag order, CLS at 0",
	"morton":          "fixed sinusoid along the Morton (Z) order, CLS at 0",
	"peano":           "fixed sinusoid along the Peano order, CLS at 0",
	"hilbert-classic": "fixed sinusoid along the classic 2^k Hilbert curve restricted to the grid (ranked), CLS at 0",
	"hilbert-crop":    "fixed sinusoid at the unranked classic Hilbert index + 1 (docs/paper.md §5.5), CLS at 0",
	"sincos2d":        "fixed MAE 2-D sin-cos [sin c·ω | cos c·ω | sin r·ω | cos r·ω], D/4 frequencies, CLS row zero",
	"sincos2d-sum":    "fixed LOOPE-repo 2-D sinusoid, per-axis sinusoids on [−1, 1] coordinates summed, CLS row zero",
}

func init() {
	for _, name := range FixedPENames {
		s, ok := fixedPESummaries[name]
		if !ok {
			panic("loope: fixed PE " + name + " has no summary")
		}
		registerPE(name, s, newFixedPE[float32], newFixedPE[float64])
	}
}

// fixedPE adds a constant (N+1, D) table to the tokens.
type fixedPE[T Float] struct {
	NoHooks[T]
	name string
	E    *Tensor[T] // (1, N+1, D), row 0 for CLS; no gradient
}

// newFixedPE builds the table FixedPE(cfg.PE.Name, D, G, G, cfg.PE.Freqs),
// computed in float64 and rounded once to T. rng is not used.
func newFixedPE[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	g := cfg.Grid()
	tab, err := FixedPE(cfg.PE.Name, cfg.Dim, g, g, cfg.PE.Freqs)
	if err != nil {
		return nil, err
	}
	e := New[T](1, g*g+1, cfg.Dim)
	for i, v := range tab {
		e.Data[i] = T(v)
	}
	return &fixedPE[T]{name: cfg.PE.Name, E: e}, nil
}

func (p *fixedPE[T]) Name() string { return p.name }

// Params returns nil: the table is rebuilt from the config.
func (p *fixedPE[T]) Params() []NamedParam[T] { return nil }

// AddInput returns x + E: x (B, N+1, D).
func (p *fixedPE[T]) AddInput(tp *Tape[T], x, img *Tensor[T]) *Tensor[T] {
	return tp.Add(x, p.E)
}

// freqsFor returns the frequency set cfg.PE.Freqs for width dim with the
// PE's name in errors.
func freqsFor(pe PEConfig, dim int) ([]float64, error) {
	f, err := FreqSet(pe.Freqs, dim)
	if err != nil {
		return nil, fmt.Errorf("loope: PE %s: %w", pe.Name, err)
	}
	return f, nil
}
