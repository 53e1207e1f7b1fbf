package main

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"strings"

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
	pe := peFlag(fs, "learnable")
	seed := fs.Uint64("seed", 1, "seed for weights, input and targets")
	batch := fs.Int("batch", 2, "images in the input batch")
	f64 := fs.Bool("f64", false, "float64 instead of float32")
	classes := fs.Int("classes", 0, "K > 0: K-class cross-entropy targets; 0: the 6-bit BCE targets of Three-Cell")
	smoothing := floatFlag(fs, "smoothing", 0, "label smoothing (with -classes)")
	out := fs.String("out", "", "output .safetensors file (required)")
	dim := fs.Int("dim", 0, "override the preset's width D (0 keeps it)")
	depth := fs.Int("depth", 0, "override the preset's depth (0 keeps it)")
	heads := fs.Int("heads", 0, "override the preset's heads (0 keeps it)")
	mlp := fs.Int("mlp", 0, "override the preset's MLP width (0 keeps it)")
	dim1 := fs.Int("dim1", 0, "crossvit: override branch 1's width (0 keeps it; -dim, -heads, -mlp are branch 0's, -depth counts multi-scale blocks)")
	heads1 := fs.Int("heads1", 0, "crossvit: override branch 1's heads (0 keeps it)")
	mlp1 := fs.Int("mlp1", 0, "crossvit: override branch 1's MLP width (0 keeps it)")
	depth0 := fs.Int("depth0", 0, "crossvit: override branch 0's blocks per multi-scale block (0 keeps it)")
	depth1 := fs.Int("depth1", 0, "crossvit: override branch 1's blocks per multi-scale block (0 keeps it)")
	peOpts := addPEFlags(fs)
	arch := fs.String("arch", "vit", "architecture: "+strings.Join(loope.ArchNames(), ", ")+" (a CNN takes -image, -channels, -classes, -cnn-stem; its image and channels default to the preset's)")
	image := fs.Int("image", 0, "input side in pixels (0: the preset's)")
	channels := fs.Int("channels", 0, "input channels (0: the preset's)")
	stem := fs.String("cnn-stem", "", "stem of a CNN: small (3×3 stride-1 conv, no max-pool) or imagenet (torchvision's 7×7/2 conv and max-pool); empty: small under 64 px")
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
	if *arch != "" && !archHasPresets(*arch) { // a CNN (or an unknown name, which checkModel reports)
		cfg, err := loope.Preset(*preset)
		if err != nil {
			return badUsage(fs, "%v", err)
		}
		if *image > 0 {
			cfg.Image = *image
		}
		if *channels > 0 {
			cfg.Channels = *channels
		}
		for _, vitOnly := range []string{"pe", "dim", "depth", "heads", "mlp", "dim1", "heads1", "mlp1", "depth0", "depth1"} {
			if set[vitOnly] {
				return badUsage(fs, "-%s is a ViT option; -arch %s does not take it", vitOnly, *arch)
			}
		}
		cfg = loope.Config{Arch: *arch, Image: cfg.Image, Channels: cfg.Channels, Classes: cfg.Classes, Stem: *stem}
		return writeFixture(fs, cfg, *seed, *batch, *f64, *classes, *smoothing, *out)
	}
	cfg, _, err := archPreset(cmp.Or(*arch, "vit"), *preset, set["preset"])
	if err != nil {
		return badUsage(fs, "%v", err)
	}
	if *image > 0 {
		cfg.Image = *image
	}
	if *channels > 0 {
		cfg.Channels = *channels
	}
	if *stem != "" {
		return badUsage(fs, "-cnn-stem is for a CNN -arch, not the ViT")
	}
	cfg.PE.Name = *pe
	if err := peOpts.apply(fs, &cfg.PE); err != nil {
		return badUsage(fs, "%v", err)
	}
	for _, o := range []struct {
		dst *int
		v   int
	}{{&cfg.Dim, *dim}, {&cfg.Depth, *depth}, {&cfg.Heads, *heads}, {&cfg.MLP, *mlp},
		{&cfg.Dim1, *dim1}, {&cfg.Heads1, *heads1}, {&cfg.MLP1, *mlp1}, {&cfg.Depth0, *depth0}, {&cfg.Depth1, *depth1}} {
		if o.v < 0 {
			return badUsage(fs, "-dim, -depth, -heads, -mlp, -dim1, -heads1, -mlp1, -depth0 and -depth1 must be >= 0")
		}
		if o.v > 0 {
			*o.dst = o.v
		}
	}
	if *arch != "crossvit" {
		for _, n := range []string{"dim1", "heads1", "mlp1", "depth0", "depth1"} {
			if set[n] {
				return badUsage(fs, "-%s is a crossvit option (-arch crossvit)", n)
			}
		}
	}
	return writeFixture(fs, cfg, *seed, *batch, *f64, *classes, *smoothing, *out)
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
