package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/loope-go/loope"
)

func init() {
	commands["bench"] = command{"time full training steps (images/s) for a preset and PE", runBench}
}

// runBench implements `loope bench [-preset P -pe NAME -batch B | -fixture F] -steps S`.
// One step is what a training loop does: zero grads, forward, mean BCE over
// the 6 bits, backward, AdamW update. With -fixture the weights, input and
// targets come from a `loope fixture` file, as bench/torch_ref.py reads them.
func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	preset := fs.String("preset", "small", "model preset: "+strings.Join(loope.PresetNames(), ", "))
	pe := fs.String("pe", "learnable", "positional embedding: "+strings.Join(loope.PENames(), ", "))
	batch := fs.Int("batch", 64, "images per step")
	steps := fs.Int("steps", 20, "timed steps")
	untimed := fs.Int("untimed", 2, "untimed steps first (warm-up of the pools and caches)")
	threads := fs.Int("threads", 0, "goroutines for kernels (0: GOMAXPROCS)")
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
		for _, name := range []string{"preset", "pe", "batch", "freqs", "loope-squash", "loope-act", "loope-bias", "fourier-dim", "fourier-hidden"} {
			if set[name] {
				return badUsage(fs, "-fixture gives the model and batch; drop -%s", name)
			}
		}
	} else {
		var err error
		if cfg, err = loope.Preset(*preset); err != nil {
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
	var m *loope.ViT[float32]
	var x, y *loope.Tensor[float32]
	if *fixture != "" {
		f, err := loope.ReadSafeFile(*fixture)
		if err != nil {
			return err
		}
		if cfg, err = loope.ConfigFromSafe(f); err != nil {
			return fmt.Errorf("%s: %w", *fixture, err)
		}
		if m, err = loope.NewViT[float32](cfg, 0); err != nil {
			return fmt.Errorf("%s: %w", *fixture, err)
		}
		if err := loope.LoadParams(m, f, "input", "targets", "logits", "loss", "grad.", "after."); err != nil {
			return fmt.Errorf("%s: %w", *fixture, err)
		}
		if x, err = loope.GetTensor[float32](f, "input"); err != nil {
			return fmt.Errorf("%s: %w", *fixture, err)
		}
		if y, err = loope.GetTensor[float32](f, "targets"); err != nil {
			return fmt.Errorf("%s: %w (bench needs a BCE fixture, made without -classes)", *fixture, err)
		}
		if len(x.Shape) != 4 || x.Shape[0] < 1 || x.Shape[1] != cfg.Channels || x.Shape[2] != cfg.Image || x.Shape[3] != cfg.Image {
			return fmt.Errorf("%s: input has shape %v, the model wants (B, %d, %d, %d)", *fixture, x.Shape, cfg.Channels, cfg.Image, cfg.Image)
		}
		if len(y.Shape) != 2 || y.Shape[0] != x.Shape[0] || y.Shape[1] != cfg.Classes {
			return fmt.Errorf("%s: targets have shape %v, want (%d, %d) (bench needs a BCE fixture, made without -classes)", *fixture, y.Shape, x.Shape[0], cfg.Classes)
		}
	} else {
		var err error
		if m, err = loope.NewViT[float32](cfg, 1); err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(1, 2))
		x = loope.New[float32](*batch, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rng, 0, 1)
		y = loope.New[float32](*batch, cfg.Classes)
		for i := range y.Data {
			y.Data[i] = float32(rng.IntN(2))
		}
	}
	opt := loope.NewAdamW(m.Params(), 0.05)
	trainable := m.Trainable()
	var tp loope.Tape[float32]
	var start time.Time
	for i := range *untimed + *steps {
		if i == *untimed {
			start = time.Now()
		}
		tp.Reset()
		loope.ZeroGrad(trainable)
		loss := tp.BCEWithLogits(m.Forward(&tp, x), y)
		if l := float64(loss.Data[0]); math.IsNaN(l) || math.IsInf(l, 0) {
			return fmt.Errorf("non-finite loss %v at step %d: the timing would be of NaN arithmetic", l, i+1)
		}
		tp.Backward(loss)
		opt.Update(1e-3)
	}
	dt := time.Since(start)
	b := x.Shape[0]
	fmt.Printf("go images/s %.1f steps %d batch %d threads %d pe %s (%.1f ms/step)\n",
		float64(*steps*b)/dt.Seconds(), *steps, b, loope.Threads(), m.Cfg.PE.Name, dt.Seconds()*1000/float64(*steps))
	return nil
}
