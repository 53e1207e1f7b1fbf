// This file holds the flag kit every subcommand uses: parsing with clear
// usage errors, float flags that reject NaN and ±Inf, the one grid syntax,
// and the shared checks of batch sizes. PE option flags are in peflags.go.

package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/loope-go/loope"
)

// parseFlags parses args into fs. It returns done = true when the command
// must stop: after -h (err nil, usage printed) or a bad flag (errUsage,
// the flag package printed why and the usage).
func parseFlags(fs *flag.FlagSet, args []string) (done bool, err error) {
	if done, err := parseFlagsArgs(fs, args); done {
		return done, err
	}
	if fs.NArg() > 0 { // only threecell -merge takes positional arguments
		return true, badUsage(fs, "unexpected arguments %q", fs.Args())
	}
	return false, nil
}

// parseFlagsArgs is parseFlags that leaves positional arguments in
// fs.Args() for the caller.
func parseFlagsArgs(fs *flag.FlagSet, args []string) (done bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return true, errUsage
	}
	return false, nil
}

// badUsage prints "loope <command>: message" and the usage of fs to fs's
// output and returns errUsage.
func badUsage(fs *flag.FlagSet, format string, a ...any) error {
	fmt.Fprintf(fs.Output(), "loope %s: %s\n", fs.Name(), fmt.Sprintf(format, a...))
	fs.Usage()
	return errUsage
}

// finiteFloat is a float64 flag value that accepts only finite numbers:
// NaN and ±Inf (and values beyond the float64 range) are parse errors.
type finiteFloat float64

func (f *finiteFloat) String() string { return strconv.FormatFloat(float64(*f), 'g', -1, 64) }

func (f *finiteFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%q is not a finite number", s)
	}
	*f = finiteFloat(v)
	return nil
}

// floatFlag defines a float64 flag on fs, like fs.Float64, that rejects
// NaN and ±Inf at parse time. Every float flag of loope uses it.
func floatFlag(fs *flag.FlagSet, name string, value float64, usage string) *float64 {
	p := new(float64)
	*p = value
	fs.Var((*finiteFloat)(p), name, usage)
	return p
}

// checkBatch rejects a batch outside [1, maxBatch] or whose input tensor,
// batch·channels·side², exceeds 2³¹ values.
func checkBatch(batch, channels, side int) error {
	if batch < 1 || batch > maxBatch {
		return fmt.Errorf("-batch %d: need 1 ≤ batch ≤ %d", batch, maxBatch)
	}
	if int64(batch)*int64(channels)*int64(side)*int64(side) > 1<<31 {
		return fmt.Errorf("-batch %d: the input batch (%d×%d×%d×%d) exceeds 2³¹ values", batch, batch, channels, side, side)
	}
	return nil
}

// parseGrid reads a grid "G" or "HxW" (x or X) of positive integers,
// each side at least minSide: the one grid syntax of every command.
func parseGrid(s string, minSide int) (h, w int, err error) {
	hs, ws, found := strings.Cut(strings.ToLower(s), "x")
	if !found {
		ws = hs
	}
	h, err1 := strconv.Atoi(hs)
	w, err2 := strconv.Atoi(ws)
	if err1 != nil || err2 != nil || h < 1 || w < 1 || strconv.Itoa(h) != hs || strconv.Itoa(w) != ws {
		return 0, 0, fmt.Errorf("-grid %q: want G or HxW with positive integers", s)
	}
	if h < minSide || w < minSide {
		return 0, 0, fmt.Errorf("-grid %q: want G or HxW with each side ≥ %d", s, minSide)
	}
	return h, w, nil
}

// presetFlag defines -preset, the model preset, with default def.
func presetFlag(fs *flag.FlagSet, def string) *string {
	return fs.String("preset", def, "model preset: "+strings.Join(loope.PresetNames(), ", "))
}

// peFlag defines -pe, one registered positional embedding, with default
// def.
func peFlag(fs *flag.FlagSet, def string) *string {
	return fs.String("pe", def, "positional embedding: "+strings.Join(loope.PENames(), ", "))
}

// optimFlags are the optimiser and schedule flags of train and threecell,
// each with one meaning in both. Their defaults are the command's recipe
// (a recipe): the learning rates and weight decay are the same in both.
type optimFlags struct {
	steps, batch, warmup  *int
	epochs, lr, minLR, wd *float64
}

// recipe holds a command's defaults for optimFlags, and what one epoch
// passes over.
type recipe struct {
	steps, batch, warmup int
	epochs               float64
	epochOf              string
}

// addOptimFlags defines the optimFlags on fs with the defaults of r.
func addOptimFlags(fs *flag.FlagSet, r recipe) *optimFlags {
	return &optimFlags{
		steps:  fs.Int("steps", r.steps, "optimiser steps (not with -epochs)"),
		epochs: floatFlag(fs, "epochs", r.epochs, "passes over "+r.epochOf+", instead of -steps"),
		batch:  fs.Int("batch", r.batch, "images per step"),
		lr:     floatFlag(fs, "lr", 1e-3, "peak learning rate (AdamW)"),
		minLR:  floatFlag(fs, "min-lr", 2.5e-5, "final learning rate of the cosine schedule"),
		warmup: fs.Int("warmup", r.warmup, "linear learning-rate warm-up steps (-1: 5% of the steps)"),
		wd:     floatFlag(fs, "wd", 0.05, "AdamW weight decay (weights only)"),
	}
}

// validate rejects -steps with -epochs (set holds the flags given), an
// -epochs outside (0, 10⁶] and a -warmup below -1.
func (o *optimFlags) validate(set map[string]bool) error {
	switch {
	case set["steps"] && set["epochs"]:
		return fmt.Errorf("-steps and -epochs do not go together")
	case set["epochs"] && !(*o.epochs > 0 && *o.epochs <= 1e6):
		return fmt.Errorf("-epochs %g: need 0 < epochs ≤ 10⁶", *o.epochs)
	case *o.warmup < -1:
		return fmt.Errorf("-warmup %d: need ≥ 0, or -1 for 5%% of the steps", *o.warmup)
	}
	return nil
}

// warmupOf returns the warm-up steps of a run of n steps: -warmup, or
// n/20 for -1.
func (o *optimFlags) warmupOf(n int) int {
	if *o.warmup == -1 {
		return n / 20
	}
	return *o.warmup
}

// threadsFlag defines -threads, the kernel goroutines (0: GOMAXPROCS).
func threadsFlag(fs *flag.FlagSet) *int {
	return fs.Int("threads", 0, "goroutines for kernels (0: GOMAXPROCS)")
}

// archFlag defines -arch, the model architecture (default vit).
func archFlag(fs *flag.FlagSet) *string {
	return fs.String("arch", "vit", "model architecture: "+strings.Join(loope.ArchNames(), ", ")+
		" (without -preset, a non-vit architecture takes its preset <arch>-tiny)")
}

// caitCLSFlag defines -cait-cls, CaiT's class token (Config.CaitCLS).
func caitCLSFlag(fs *flag.FlagSet) *string {
	return fs.String("cait-cls", "", "cait: the class token: empty for the PE's row 0 (the authors' wrapper), learned for timm's own cls_token")
}

// archPreset returns the config of preset for architecture arch, with
// CaiT's class token caitCLS (-cait-cls), and the preset's name. If
// -preset was not given (explicit false) and arch is not the ViT, the
// preset is arch's own "<arch>-tiny". A preset of another architecture,
// or -cait-cls for another architecture, is an error naming both.
func archPreset(arch, preset string, explicit bool, caitCLS string) (loope.Config, string, error) {
	if caitCLS != "" && arch != "cait" {
		return loope.Config{}, "", fmt.Errorf("-cait-cls is a cait option, and -arch is %s", arch)
	}
	if !slices.Contains(loope.ArchNames(), arch) {
		return loope.Config{}, "", fmt.Errorf("-arch: unknown architecture %q (valid: %s)", arch, strings.Join(loope.ArchNames(), ", "))
	}
	if !archHasPresets(arch) {
		return loope.Config{}, "", fmt.Errorf("-arch %s has no presets (a CNN reference model: see threecell -ref and fixture -arch %s)", arch, arch)
	}
	if !explicit && arch != "vit" {
		preset = arch + "-tiny"
	}
	cfg, err := loope.Preset(preset)
	if err != nil {
		return cfg, "", fmt.Errorf("-preset: %w", err)
	}
	if pa := cmp.Or(cfg.Arch, "vit"); pa != arch {
		return cfg, "", fmt.Errorf("-preset %s is a %s preset, not a %s one (-arch %s)", preset, pa, arch, arch)
	}
	cfg.CaitCLS = caitCLS
	return cfg, preset, nil
}

// cnnStemFlag defines -cnn-stem, the stem of a CNN model (docs/cnn.md).
func cnnStemFlag(fs *flag.FlagSet) *string {
	return fs.String("cnn-stem", "", "stem of a CNN model: small (3×3 stride-1 conv, no max-pool) or imagenet (torchvision's 7×7/2 conv and max-pool); empty: small under 64 px (docs/cnn.md)")
}

// refuseViTOptions returns an error naming the first flag given (set,
// in sorted order) that only the transformers take, for the CNN
// architecture arch: -pe, a PE option, -cait-cls, or one of also.
func refuseViTOptions(set map[string]bool, arch string, also ...string) error {
	for _, name := range slices.Sorted(maps.Keys(set)) {
		if _, peOption := peFlagUsers[name]; peOption || name == "pe" || name == "cait-cls" || slices.Contains(also, name) {
			return fmt.Errorf("-%s is a ViT option; -arch %s does not take it", name, arch)
		}
	}
	return nil
}

// archHasPresets reports whether architecture arch has presets (the
// transformers: vit, cait, crossvit); a CNN has none and takes its input
// size from flags.
func archHasPresets(arch string) bool {
	for _, n := range loope.PresetNames() {
		if c, _ := loope.Preset(n); cmp.Or(c.Arch, "vit") == arch {
			return true
		}
	}
	return false
}
