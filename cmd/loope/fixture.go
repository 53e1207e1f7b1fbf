package main

import (
	"cmp"
	"flag"
	"fmt"
	"os"

	"github.com/loope-go/loope"
)

func init() {
	commands["fixture"] = command{"write a golden fixture (weights, input, logits, loss, grads) for porters", runFixture}
}

// runFixture implements `loope fixture [-arch vit|cait|crossvit] -preset P -pe NAME -seed S -batch B [-f64] [-classes K] -out F.safetensors`,
// and for a CNN `loope fixture -arch A -image S [-channels C] [-cnn-stem small|imagenet] ...`.
func runFixture(args []string) error {
	fs := flag.NewFlagSet("fixture", flag.ContinueOnError)
	preset := presetFlag(fs, "small")
	arch := archFlag(fs)
	caitCLS := caitCLSFlag(fs)
	pe := peFlag(fs, "learnable")
	seed := fs.Uint64("seed", 1, "seed for weights, input and targets")
	batch := fs.Int("batch", 2, "images in the input batch")
	f64 := fs.Bool("f64", false, "float64 instead of float32")
	classes := fs.Int("classes", 0, "K > 0: K-class cross-entropy targets; 0: the 6-bit BCE targets of Three-Cell")
	smoothing := floatFlag(fs, "smoothing", 0, "label smoothing (with -classes)")
	out := fs.String("out", "", "output .safetensors file (required)")
	sizes := addSizeFlags(fs)
	peOpts := addPEFlags(fs)
	image := fs.Int("image", 0, "input side in pixels (0: the preset's)")
	channels := fs.Int("channels", 0, "input channels (0: the preset's)")
	stem := cnnStemFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: loope fixture [-arch vit|cait|crossvit] -preset P -pe NAME -seed S -batch B [-f64] [-classes K] [-dim D -depth L -heads H -mlp M] [-dim1 -heads1 -mlp1 -depth0 -depth1 (crossvit)] [PE options] -out F.safetensors")
		fmt.Fprintln(fs.Output(), "       loope fixture -arch resnet50|inception3 -image S [-channels C] [-cnn-stem small|imagenet] -seed S -batch B [-f64] [-classes K] -out F.safetensors")
		fs.PrintDefaults()
	}
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if *out == "" {
		return badUsage(fs, "-out is required")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *image < 0 || *channels < 0 {
		return badUsage(fs, "-image and -channels must be >= 0")
	}
	var cfg loope.Config
	var err error
	if *arch != "" && !archHasPresets(*arch) { // a CNN (or an unknown name, which checkModel reports)
		if cfg, err = loope.Preset(*preset); err != nil {
			return badUsage(fs, "%v", err)
		}
		if err := refuseViTOptions(set, *arch, sizeFlagNames...); err != nil {
			return badUsage(fs, "%v", err)
		}
		cfg = loope.Config{Arch: *arch, Image: cmp.Or(*image, cfg.Image), Channels: cmp.Or(*channels, cfg.Channels), Classes: cfg.Classes, Stem: *stem}
		return writeFixture(fs, cfg, *seed, *batch, *f64, *classes, *smoothing, *out)
	}
	if cfg, _, err = archPreset(cmp.Or(*arch, "vit"), *preset, set["preset"], *caitCLS); err != nil {
		return badUsage(fs, "%v", err)
	}
	cfg.Image, cfg.Channels = cmp.Or(*image, cfg.Image), cmp.Or(*channels, cfg.Channels)
	if *stem != "" {
		return badUsage(fs, "-cnn-stem is for a CNN -arch, not the ViT")
	}
	cfg.PE.Name = *pe
	if err := peOpts.apply(fs, &cfg.PE); err != nil {
		return badUsage(fs, "%v", err)
	}
	if err := sizes.apply(&cfg, set); err != nil {
		return badUsage(fs, "%v", err)
	}
	return writeFixture(fs, cfg, *seed, *batch, *f64, *classes, *smoothing, *out)
}

// sizeFlagNames are the flags of sizeFlags, in order.
var sizeFlagNames = []string{"dim", "depth", "heads", "mlp", "dim1", "heads1", "mlp1", "depth0", "depth1"}

// sizeFlags are fixture's overrides of a preset's sizes (0 keeps the
// preset's), in the order of sizeFlagNames; the last five are CrossViT's.
type sizeFlags [9]*int

// addSizeFlags defines the size overrides on fs.
func addSizeFlags(fs *flag.FlagSet) *sizeFlags {
	usage := []string{"width D", "depth", "heads", "MLP width",
		"branch 1's width (crossvit; -dim, -heads, -mlp are branch 0's, -depth counts multi-scale blocks)",
		"branch 1's heads (crossvit)", "branch 1's MLP width (crossvit)",
		"branch 0's blocks per multi-scale block (crossvit)", "branch 1's blocks per multi-scale block (crossvit)"}
	var s sizeFlags
	for i, name := range sizeFlagNames {
		s[i] = fs.Int(name, 0, "override the preset's "+usage[i]+" (0 keeps it)")
	}
	return &s
}

// apply sets the sizes of cfg given (> 0) by the flags; set holds the
// names of the flags given. The CrossViT sizes need cfg.Arch crossvit.
func (s *sizeFlags) apply(cfg *loope.Config, set map[string]bool) error {
	dst := [9]*int{&cfg.Dim, &cfg.Depth, &cfg.Heads, &cfg.MLP, &cfg.Dim1, &cfg.Heads1, &cfg.MLP1, &cfg.Depth0, &cfg.Depth1}
	for i, name := range sizeFlagNames {
		switch v := *s[i]; {
		case v < 0:
			return fmt.Errorf("-%s %d: need ≥ 0", name, v)
		case i >= 4 && set[name] && cfg.Arch != "crossvit":
			return fmt.Errorf("-%s is a crossvit option (-arch crossvit)", name)
		case v > 0:
			*dst[i] = v
		}
	}
	return nil
}

// writeFixture checks the model config cfg and the loss options, builds
// the fixture and writes it to out.
func writeFixture(fs *flag.FlagSet, cfg loope.Config, seed uint64, batch int, f64 bool, classes int, smoothing float64, out string) error {
	fc := loope.FixtureConfig{Model: cfg, Seed: seed, Batch: batch, Loss: "bce", Smoothing: smoothing}
	if classes < 0 {
		return badUsage(fs, "-classes must be >= 0, got %d", classes)
	}
	if classes > 0 {
		fc.Model.Classes, fc.Loss = classes, "ce"
	} else if smoothing != 0 {
		return badUsage(fs, "-smoothing needs -classes (label smoothing of the cross-entropy)")
	}
	if !(smoothing >= 0 && smoothing < 1) {
		return badUsage(fs, "-smoothing %g: need 0 ≤ smoothing < 1", smoothing)
	}
	if err := checkModel(fc.Model); err != nil {
		return badUsage(fs, "%v", err)
	}
	if err := checkBatch(batch, fc.Model.Channels, fc.Model.Image); err != nil {
		return badUsage(fs, "%v", err)
	}
	if validateOnly {
		return nil
	}
	var f *loope.SafeFile
	var err error
	if f64 {
		f, err = loope.Fixture[float64](fc)
	} else {
		f, err = loope.Fixture[float32](fc)
	}
	if err != nil {
		return err
	}
	if err := f.WriteFile(out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%d tensors)\n", out, len(f.Names))
	return nil
}
