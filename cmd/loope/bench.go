package main

import (
	"flag"
	"fmt"
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
	warmup := fs.Int("warmup", 2, "untimed steps first")
	threads := fs.Int("threads", 0, "goroutines for kernels (0: GOMAXPROCS)")
	fixture := fs.String("fixture", "", "take weights, input and targets from this `loope fixture` file")
	peOpts := addPEFlags(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 || *batch <= 0 || *steps <= 0 || *warmup < 0 || *threads < 0 {
		fmt.Fprintln(fs.Output(), "loope bench: -batch and -steps must be > 0, -warmup and -threads >= 0")
		fs.Usage()
		return errUsage
	}
	loope.SetThreads(*threads)
	var m *loope.ViT[float32]
	var x, y *loope.Tensor[float32]
	if *fixture != "" {
		f, err := loope.ReadSafeFile(*fixture)
		if err != nil {
			return err
		}
		cfg, err := loope.ConfigFromSafe(f)
		if err != nil {
			return err
		}
		if m, err = loope.NewViT[float32](cfg, 0); err != nil {
			return err
		}
		if err := loope.LoadParams(m, f, "input", "targets", "logits", "loss", "grad.", "after."); err != nil {
			return err
		}
		if x, err = loope.GetTensor[float32](f, "input"); err != nil {
			return err
		}
		if y, err = loope.GetTensor[float32](f, "targets"); err != nil {
			return fmt.Errorf("%s: %w (bench needs a BCE fixture, made without -classes)", *fixture, err)
		}
	} else {
		cfg, err := loope.Preset(*preset)
		if err != nil {
			return err
		}
		cfg.PE.Name = *pe
		if err := peOpts.apply(fs, &cfg.PE); err != nil {
			return err
		}
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
	for i := range *warmup + *steps {
		if i == *warmup {
			start = time.Now()
		}
		tp.Reset()
		loope.ZeroGrad(trainable)
		loss := tp.BCEWithLogits(m.Forward(&tp, x), y)
		tp.Backward(loss)
		opt.Update(1e-3)
	}
	dt := time.Since(start)
	b := x.Shape[0]
	fmt.Printf("go images/s %.1f steps %d batch %d threads %d pe %s (%.1f ms/step)\n",
		float64(*steps*b)/dt.Seconds(), *steps, b, loope.Threads(), m.Cfg.PE.Name, dt.Seconds()*1000/float64(*steps))
	return nil
}
