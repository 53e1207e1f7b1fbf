package main

import (
	"cmp"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/loope-go/loope"
)

func init() {
	commands["bench"] = command{"time full training steps (images/s) for a preset and PE", runBench}
}

// runBench implements `loope bench [-arch A] [-preset P -pe NAME -batch B | -fixture F] -steps S`.
// One step is what a training loop does (loope.TimeTrainSteps): zero grads,
// forward, mean BCE over the 6 bits, backward, AdamW update. With -fixture the weights, input and
// targets come from a `loope fixture` file, as bench/torch_ref.py reads them.
func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	preset := presetFlag(fs, "small")
	arch := archFlag(fs)
	caitCLS := caitCLSFlag(fs)
	pe := peFlag(fs, "learnable")
	batch := fs.Int("batch", 64, "images per step")
	steps := fs.Int("steps", 20, "timed steps")
	untimed := fs.Int("untimed", 2, "untimed steps first (warm-up of the pools and caches)")
	threads := threadsFlag(fs)
	fixture := fs.String("fixture", "", "take weights, input and targets from this `loope fixture` file")
	peOpts := addPEFlags(fs)
	if done, err := parseFlags(fs, args); done {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *steps <= 0 || *untimed < 0 || *steps > 1<<20 || *untimed > 1<<20:
		return badUsage(fs, "-steps must be in [1, 2²⁰], -untimed in [0, 2²⁰]")
	case *threads < 0 || *threads > maxThreads:
		return badUsage(fs, "-threads %d: need 0 ≤ threads ≤ %d", *threads, maxThreads)
	}
	var cfg loope.Config
	if *fixture != "" {
		for _, name := range slices.Sorted(maps.Keys(set)) {
			if _, peOption := peFlagUsers[name]; peOption || name == "preset" || name == "arch" || name == "cait-cls" || name == "pe" || name == "batch" {
				return badUsage(fs, "-fixture gives the model and batch; drop -%s", name)
			}
		}
	} else {
		var err error
		if cfg, _, err = archPreset(*arch, *preset, set["preset"], *caitCLS); err != nil {
			return badUsage(fs, "%v", err)
		}
		cfg.PE.Name = *pe
		if err := peOpts.apply(fs, &cfg.PE); err != nil {
			return badUsage(fs, "%v", err)
		}
		if err := checkModel(cfg); err != nil {
			return badUsage(fs, "%v", err)
		}
		if err := checkBatch(*batch, cfg.Channels, cfg.Image); err != nil {
			return badUsage(fs, "%v", err)
		}
	}
	if validateOnly {
		return nil
	}
	loope.SetThreads(*threads)
	m, x, y, err := benchModel(cfg, *fixture, *batch)
	if err != nil {
		return err
	}
	dt, err := loope.TimeTrainSteps(m, x, y, *untimed, *steps)
	if err != nil {
		return err
	}
	b := x.Shape[0]
	fmt.Printf("go images/s %.1f steps %d batch %d threads %d arch %s pe %s (%.1f ms/step)\n",
		float64(*steps*b)/dt.Seconds(), *steps, b, loope.Threads(), cmp.Or(m.Config().Arch, "vit"), m.Config().PE.Name, dt.Seconds()*1000/float64(*steps))
	return nil
}

// benchModel returns the model and the batch bench times: from the loope
// fixture file (weights, input, 6-bit targets), or, without one, a model
// of cfg (seed 1) on batch images of N(0, 1) with random 0/1 targets.
func benchModel(cfg loope.Config, fixture string, batch int) (m loope.Model[float32], x, y *loope.Tensor[float32], err error) {
	if fixture == "" {
		if m, err = loope.NewModel[float32](cfg, 1); err != nil {
			return nil, nil, nil, err
		}
		rng := rand.New(rand.NewPCG(1, 2))
		x = loope.New[float32](batch, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rng, 0, 1)
		y = loope.New[float32](batch, cfg.Classes)
		for i := range y.Data {
			y.Data[i] = float32(rng.IntN(2))
		}
		return m, x, y, nil
	}
	fail := func(err error) (loope.Model[float32], *loope.Tensor[float32], *loope.Tensor[float32], error) {
		return nil, nil, nil, fmt.Errorf("%s: %w", fixture, err)
	}
	f, err := loope.ReadSafeFile(fixture)
	if err != nil {
		return nil, nil, nil, err
	}
	if cfg, err = loope.ConfigFromSafe(f); err != nil {
		return fail(err)
	}
	if m, err = loope.NewModel[float32](cfg, 0); err != nil {
		return fail(err)
	}
	if err := loope.LoadParams(m, f, "input", "targets", "logits", "loss", "grad.", "after."); err != nil {
		return fail(err)
	}
	if x, err = loope.GetTensor[float32](f, "input"); err != nil {
		return fail(err)
	}
	if y, err = loope.GetTensor[float32](f, "targets"); err != nil {
		return fail(fmt.Errorf("%w (bench needs a BCE fixture, made without -classes)", err))
	}
	if len(x.Shape) != 4 || x.Shape[0] < 1 || x.Shape[1] != cfg.Channels || x.Shape[2] != cfg.Image || x.Shape[3] != cfg.Image {
		return fail(fmt.Errorf("input has shape %v, the model wants (B, %d, %d, %d)", x.Shape, cfg.Channels, cfg.Image, cfg.Image))
	}
	if len(y.Shape) != 2 || y.Shape[0] != x.Shape[0] || y.Shape[1] != cfg.Classes {
		return fail(fmt.Errorf("targets have shape %v, want (%d, %d) (bench needs a BCE fixture, made without -classes)", y.Shape, x.Shape[0], cfg.Classes))
	}
	return m, x, y, nil
}
