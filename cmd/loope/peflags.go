// This file holds the flags of the PEs' options (PEConfig fields -freqs,
// -loope-*, -fourier-*, -comrope-block, -dino-*, -string-basis), shared by every command
// that takes -pe.

package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/loope-go/loope"
)

// peOptions holds the parsed PE option flags.
type peOptions struct {
	freqs, squash, act *string
	bias               *bool
	fourierDim, hidden *int
	comropeBlock       *int
	dinoShift          *float64
	dinoJitter         *float64
	dinoRescale        *float64
	stringBasis        *string
}

// addPEFlags registers the PE option flags on fs.
func addPEFlags(fs *flag.FlagSet) *peOptions {
	return &peOptions{
		freqs:      fs.String("freqs", "vaswani", "frequency set of the sinusoidal PEs: "+strings.Join(loope.FreqSetNames, ", ")),
		squash:     fs.String("loope-squash", "sigmoid", "loope: X_C squashing, sigmoid (2σ−1, authors' code) or tanh (v1 paper)"),
		act:        fs.String("loope-act", "gelu", "loope: conv activation, gelu (authors' code) or relu (revised supplement)"),
		bias:       fs.Bool("loope-bias", false, "loope: Linear(N, N) with a bias (paper) instead of without (authors' code)"),
		fourierDim: fs.Int("fourier-dim", 768, "fourier: feature width F (even)"),
		hidden:     fs.Int("fourier-hidden", 32, "fourier: MLP hidden width"),
		comropeBlock: fs.Int("comrope-block", loope.ComRoPEBlock,
			"comrope-ap, comrope-ld: block size b of the skew generators (divides the head dim; Dh/2 for comrope-ap)"),
		dinoShift:   floatFlag(fs, "dino-shift", 0, "rope-dinov3: training shift of the coordinates, U(−s, s) (0 = off, authors' default)"),
		dinoJitter:  floatFlag(fs, "dino-jitter", 0, "rope-dinov3: training per-axis jitter, log-uniform in [1/J, J] (0 = off, authors' default)"),
		dinoRescale: floatFlag(fs, "dino-rescale", loope.RopeDinov3Rescale, "rope-dinov3: training rescale, log-uniform in [1/R, R] (1 = off)"),
		stringBasis: fs.String("string-basis", "cayley", "string: the orthogonal basis, cayley (learnable P = Cayley(S)) or circulant (exp of circulant skew generators)"),
	}
}

// peFlagUsers maps each PE option flag to the PEs that read it; a flag
// given explicitly with any other -pe is an error. The fixed sinusoids of
// loope.FixedPENames are added to "freqs" in init.
var peFlagUsers = map[string][]string{
	"freqs":          nil, // filled in init from loope.PEReadsFreqs
	"loope-squash":   {"loope"},
	"loope-act":      {"loope"},
	"loope-bias":     {"loope"},
	"fourier-dim":    {"fourier"},
	"fourier-hidden": {"fourier"},
	"comrope-block":  {"comrope-ap", "comrope-ld"},
	"dino-shift":     {"rope-dinov3"},
	"dino-jitter":    {"rope-dinov3"},
	"dino-rescale":   {"rope-dinov3"},
	"string-basis":   {"string"},
}

func init() {
	for _, name := range loope.PENames() {
		if loope.PEReadsFreqs(name) {
			peFlagUsers["freqs"] = append(peFlagUsers["freqs"], name)
		}
	}
}

// apply writes the options that pe.Name reads into pe (options of other PEs
// keep their zero values, so checkpoint metadata records only what the PE
// reads) and rejects option flags set on fs that pe.Name does not read.
func (o *peOptions) apply(fs *flag.FlagSet, pe *loope.PEConfig) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		users, ok := peFlagUsers[f.Name]
		if ok && err == nil && !slices.Contains(users, pe.Name) {
			err = fmt.Errorf("-%s does not apply to -pe %s (it is read by: %s)", f.Name, pe.Name, strings.Join(users, ", "))
		}
	})
	if err != nil {
		return err
	}
	switch pe.Name {
	case "loope":
		pe.LoopeSquash, pe.LoopeAct, pe.LoopeBias = *o.squash, *o.act, *o.bias
	case "fourier":
		pe.FourierDim, pe.FourierHidden = *o.fourierDim, *o.hidden
	case "comrope-ap", "comrope-ld":
		pe.ComRoPEBlock = *o.comropeBlock
	case "rope-dinov3":
		pe.DinoShift, pe.DinoJitter, pe.DinoRescale = *o.dinoShift, *o.dinoJitter, *o.dinoRescale
	case "string":
		if *o.stringBasis != "cayley" {
			pe.StringBasis = *o.stringBasis
		}
	}
	if slices.Contains(peFlagUsers["freqs"], pe.Name) && *o.freqs != "vaswani" {
		pe.Freqs = *o.freqs
	}
	return nil
}
