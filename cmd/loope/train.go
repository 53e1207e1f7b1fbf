package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/loope-go/loope"
)

func init() {
	commands["train"] = command{"train a ViT on MNIST, CIFAR-10/100 or an image folder", runTrain}
}

// trainResults are the files a training run writes into -out.
var trainResults = []string{"last.safetensors", "best.safetensors", "metrics.jsonl", "curve.png", "result.json"}

// trainFlags are the flags of loope train.
type trainFlags struct {
	data, preset, arch, pe, out, resume, initFrom, stem, caitCLS *string
	peOpts                                                       *peOptions
	*optimFlags
	peLR, smoothing, clip, valFrac *float64
	threads, replicas, ckptEvery   *int
	heads, image                   *int
	budget                         *time.Duration
	augment, force, noAA           *bool
	seed                           *uint64
}

// newTrainFlags defines train's flags on fs.
func newTrainFlags(fs *flag.FlagSet) *trainFlags {
	return &trainFlags{
		data:    fs.String("data", "mnist", "mnist[:DIR] | cifar10:DIR | cifar100:DIR | folder:DIR"),
		preset:  presetFlag(fs, "small"),
		arch:    archFlag(fs),
		stem:    cnnStemFlag(fs),
		caitCLS: caitCLSFlag(fs),
		pe:      peFlag(fs, "learnable"),
		peOpts:  addPEFlags(fs),
		optimFlags: addOptimFlags(fs, recipe{steps: 0, batch: 64, warmup: 100, epochs: 1,
			epochOf: "the training split (with -steps 0)"}),
		budget:    fs.Duration("time", 0, "wall-time budget for the whole run, e.g. 10m: the step count is set from a short timing of this model on this machine (overrides -steps and -epochs; the count is printed and saved in result.json)"),
		peLR:      floatFlag(fs, "pe-lr-scale", 1, "learning-rate factor for the PE's parameters (a learnable table starts at N(0, 0.02²) and moves at most about lr per step)"),
		smoothing: floatFlag(fs, "smoothing", 0, "label smoothing"),
		clip:      floatFlag(fs, "clip", 1, "global gradient-norm clip (0: off)"),
		valFrac:   floatFlag(fs, "val-frac", 0.1, "fraction of the training data held out for validation"),
		augment:   fs.Bool("augment", false, "random crop with zero padding of image/8 px and horizontal flip (not for digits)"),
		seed:      fs.Uint64("seed", 1, "seed for weights, split, shuffling and augmentation"),
		threads:   threadsFlag(fs),
		replicas:  fs.Int("replicas", 0, "data-parallel replicas, each on one thread with a fixed part of the batch (0: the thread count if the PE keeps no batch statistics, else 1; 1: one model, kernels split over threads)"),
		out:       fs.String("out", "out/train", "output folder: last/best checkpoints, metrics.jsonl, result.json"),
		resume:    fs.String("resume", "", "continue from DIR/last.safetensors of an earlier run, writing into DIR (same flags; only -steps, -time and -threads may change)"),
		ckptEvery: fs.Int("ckpt-every", 200, "write DIR/last.safetensors every this many steps"),
		initFrom:  fs.String("init-from", "", "start from a pretrained timm model (safetensors state dict): a ViT (e.g. vit_tiny_patch16_224; width, depth, MLP from the file; image and patch from -preset if given, else the file's), or with -arch cait|crossvit one of the -preset's size (e.g. cait_s24_224 with -preset cait-s24); PE from -pe; a new head"),
		heads:     fs.Int("heads", 0, "attention heads (0: the preset's; with -init-from, from the width: 192→3, 384→6, 768→12)"),
		image:     fs.Int("image", 0, "input side in pixels (0: the preset's; with -init-from and no -preset, the checkpoint's)"),
		force:     fs.Bool("force", false, "start a new run in -out even if it holds an earlier run's checkpoints and results (they are deleted)"),
		noAA:      fs.Bool("no-antialias", false, "with -init-from: resample pos_embed and patch embedding by plain bicubic (timm < 0.9) instead of timm's antialiased default"),
	}
}

// runTrain implements `loope train -data D [-arch A] -preset P -pe NAME ...`.
func runTrain(args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	f := newTrainFlags(fs)
	if done, err := parseFlags(fs, args); done {
		return err
	}
	cfg, pretrained, err := f.check(fs)
	if err != nil || validateOnly {
		return err
	}
	lock, err := openOutDir(*f.out, *f.resume != "", *f.force, os.Stderr, trainResults...)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	loope.SetThreads(*f.threads)
	t0 := time.Now()
	d, train, err := f.loadData(&cfg, t0)
	if err != nil {
		return err
	}
	m, err := f.model(cfg, pretrained)
	if err != nil {
		return err
	}
	reps, err := f.replicaCount(fs, m)
	if err != nil {
		return err
	}
	n, deadline, err := f.plan(cfg, d, reps, t0)
	if err != nil {
		return err
	}
	metrics, err := os.OpenFile(filepath.Join(*f.out, "metrics.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer metrics.Close()
	var curve bytes.Buffer // the run's metrics (all of them, across resumes), for the curve PNG
	tc := loope.TrainConfig{Steps: n, Batch: *f.batch, LR: *f.lr, MinLR: *f.minLR, Warmup: min(f.warmupOf(n), n/2),
		WeightDecay: *f.wd, PELRScale: *f.peLR, ClipNorm: *f.clip, Loss: "ce", Smoothing: *f.smoothing, Seed: *f.seed,
		EvalEvery: max(n/10, 1), LogEvery: max(n/50, 10), CheckpointDir: *f.out, CheckpointEvery: *f.ckptEvery,
		Replicas: reps, Deadline: deadline, FitDeadline: *f.budget > 0, Log: os.Stderr, Metrics: io.MultiWriter(metrics, &curve),
		Settings: map[string]string{"data": *f.data, "val_frac": fmt.Sprint(*f.valFrac), "augment": fmt.Sprint(*f.augment), "warmup": fmt.Sprint(*f.warmup),
			"init_from": *f.initFrom, "no_antialias": fmt.Sprint(*f.noAA)}}
	if *f.resume != "" {
		tc.Resume = filepath.Join(*f.resume, "last.safetensors")
		tc.OnResume = func(step int) error {
			kept, err := cutMetrics(metrics, step)
			curve.Write(kept)
			return err
		}
	}
	name := *f.preset
	if pretrained != nil {
		name = filepath.Base(*f.initFrom)
	}
	fmt.Fprintf(os.Stderr, "model %s (%s) pe %s: %d parameters; %d steps of batch %d on %d threads, %d replicas\n",
		name, *f.arch, *f.pe, loope.NumParams(m), n, *f.batch, loope.Threads(), reps)
	last, err := loope.Train(m, train, d.Val, tc)
	if err != nil {
		return err
	}
	return f.finish(cfg, d, name, n, reps, tc, last, curve.Bytes(), t0)
}

// check validates the flags and returns the model config they give, with
// the pretrained checkpoint of -init-from (or nil). Classes is set from
// the data later.
func (f *trainFlags) check(fs *flag.FlagSet) (loope.Config, *loope.SafeFile, error) {
	bad := func(format string, a ...any) error { return badUsage(fs, format, a...) }
	fail := func(err error) (loope.Config, *loope.SafeFile, error) { return loope.Config{}, nil, err }
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *f.resume != "" {
		if set["out"] && !samePath(*f.out, *f.resume) {
			return fail(bad("-resume %s writes into %s: drop -out %s (or give the same folder)", *f.resume, *f.resume, *f.out))
		}
		*f.out = *f.resume
	}
	if err := f.optimFlags.validate(set); err != nil {
		return fail(bad("%v", err))
	}
	switch {
	case *f.steps > loope.MaxSteps:
		return fail(bad("-steps %d: need ≤ %d", *f.steps, loope.MaxSteps))
	case *f.steps < 0 || *f.threads < 0 || *f.ckptEvery < 0 || *f.heads < 0 || *f.image < 0 || *f.replicas < 0:
		return fail(bad("-steps, -threads, -replicas, -ckpt-every, -heads and -image must be >= 0"))
	case *f.replicas > *f.batch:
		return fail(bad("-replicas %d: need ≤ -batch %d", *f.replicas, *f.batch))
	case *f.budget < 0 || *f.budget > 1000*time.Hour:
		return fail(bad("-time %v: want a duration in [0, 1000h]", *f.budget))
	case *f.force && *f.resume != "":
		return fail(bad("-force with -resume: -force starts a new run, -resume continues one"))
	case *f.threads > maxThreads:
		return fail(bad("-threads %d: need ≤ %d", *f.threads, maxThreads))
	case !(*f.valFrac > 0 && *f.valFrac < 1):
		return fail(bad("-val-frac must be in (0, 1), got %g", *f.valFrac))
	}
	if kind, dir, _ := strings.Cut(*f.data, ":"); kind != "mnist" && (dir == "" || !slices.Contains([]string{"cifar10", "cifar100", "folder"}, kind)) {
		return fail(bad("-data %q: want mnist[:DIR], cifar10:DIR, cifar100:DIR or folder:DIR", *f.data))
	}
	if slices.Contains(loope.ReferenceModels(), *f.arch) {
		cfg, err := f.cnnConfig(set)
		if err != nil {
			return fail(bad("%v", err))
		}
		return cfg, nil, f.checkRun(fs, cfg)
	}
	if *f.stem != "" {
		return fail(bad("-cnn-stem is for a CNN -arch (%s), not %s", strings.Join(loope.ReferenceModels(), ", "), *f.arch))
	}
	cfg, name, err := archPreset(*f.arch, *f.preset, set["preset"], *f.caitCLS)
	if err != nil {
		return fail(bad("%v", err))
	}
	*f.preset = name
	var pretrained *loope.SafeFile
	if *f.initFrom != "" && *f.arch != "vit" { // cait, crossvit: the preset's size, nothing resampled
		if pretrained, err = loope.ReadSafeFile(*f.initFrom); err != nil {
			return fail(err)
		}
		trial := cfg // a trial load, so a checkpoint of another size is refused before the data is read
		trial.PE.Name, trial.Classes = "none", 1
		if _, _, err := loope.LoadTimmBackbone[float32](pretrained, trial, 0); err != nil {
			return fail(fmt.Errorf("%s: %w", *f.initFrom, err))
		}
	} else if *f.initFrom != "" {
		if pretrained, cfg, err = pretrainedConfig(*f.initFrom, cfg, set["preset"], *f.heads); err != nil {
			return fail(err)
		}
	} else if *f.heads > 0 {
		cfg.Heads = *f.heads
	}
	if *f.image > 0 {
		cfg.Image = *f.image
	}
	cfg.PE.Name = *f.pe
	if err := f.peOpts.apply(fs, &cfg.PE); err != nil {
		return fail(bad("%v", err))
	}
	return cfg, pretrained, f.checkRun(fs, cfg)
}

// checkRun checks the model config cfg (its classes come from the data
// later), the batch and the training settings.
func (f *trainFlags) checkRun(fs *flag.FlagSet, cfg loope.Config) error {
	cfg.Classes = max(cfg.Classes, 1) // set from the data below (a checkpoint may have no head)
	if err := checkModel(cfg); err != nil {
		return badUsage(fs, "%v", err)
	}
	if err := checkBatch(*f.batch, cfg.Channels, cfg.Image); err != nil {
		return badUsage(fs, "%v", err)
	}
	// Steps and Warmup are stand-ins here: the step count comes from the data.
	tc0 := loope.TrainConfig{Steps: 1, Batch: *f.batch, LR: *f.lr, MinLR: *f.minLR, Warmup: f.warmupOf(1), WeightDecay: *f.wd, PELRScale: *f.peLR,
		ClipNorm: *f.clip, Loss: "ce", Smoothing: *f.smoothing, CheckpointEvery: *f.ckptEvery}
	if err := tc0.Validate(); err != nil {
		return badUsage(fs, "%v", err)
	}
	return nil
}

// cnnConfig is the model config of a CNN -arch (docs/cnn.md): the input
// size and channels of -preset (or -image), the stem of -cnn-stem; its
// classes come from the data. The ViT's options are refused, and the PE
// is recorded as none.
func (f *trainFlags) cnnConfig(set map[string]bool) (loope.Config, error) {
	if err := refuseViTOptions(set, *f.arch, "heads", "init-from", "pe-lr-scale", "no-antialias"); err != nil {
		return loope.Config{}, err
	}
	p, err := loope.Preset(*f.preset)
	if err != nil {
		return loope.Config{}, fmt.Errorf("-preset: %w", err)
	}
	*f.pe = "none"
	return loope.Config{Arch: *f.arch, Image: cmp.Or(*f.image, p.Image), Channels: p.Channels, Classes: 1, Stem: *f.stem}, nil
}

// loadData loads and splits -data for cfg (setting cfg.Classes), wraps the
// training split in the augmentation if asked, and checks that the run
// fits in memory. It returns the splits and the training Dataset.
func (f *trainFlags) loadData(cfg *loope.Config, t0 time.Time) (*loope.TrainData, loope.Dataset, error) {
	d, err := loope.LoadTrainData(*f.data, cfg.Channels, cfg.Image, *f.valFrac, *f.seed, os.Stderr)
	if err != nil {
		return nil, nil, err
	}
	cfg.Classes = d.Classes
	var train loope.Dataset = d.Train
	if *f.augment {
		train = &loope.Augment{Set: d.Train, Pad: max(cfg.Image/8, 1), Flip: true, Seed: *f.seed}
	}
	fmt.Fprintf(os.Stderr, "data %s: %d train, %d val, %d test, %d classes, %dx%dx%d (%.1fs)\n",
		*f.data, d.Train.Len(), d.Val.Len(), d.Test.Len(), d.Classes, cfg.Channels, cfg.Image, cfg.Image, time.Since(t0).Seconds())
	if err := checkMemory(os.Stderr, *cfg, *f.batch, *f.replicas, int64(len(d.Train.Pix)+len(d.Val.Pix)+len(d.Test.Pix))); err != nil {
		return nil, nil, err
	}
	return d, train, nil
}

// model builds the model: fresh (seeded), or a ViT from -init-from.
func (f *trainFlags) model(cfg loope.Config, pretrained *loope.SafeFile) (loope.Model[float32], error) {
	if pretrained == nil {
		return loope.NewModel[float32](cfg, *f.seed)
	}
	if cmp.Or(cfg.Arch, "vit") != "vit" {
		m, fresh, err := loope.LoadTimmBackbone[float32](pretrained, cfg, *f.seed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", *f.initFrom, err)
		}
		fmt.Fprintf(os.Stderr, "init from %s: %s %s; new: %s\n", *f.initFrom, cfg.Arch, *f.preset, strings.Join(fresh, " "))
		return m, nil
	}
	m, fresh, err := loope.LoadTimmViT[float32](pretrained, cfg, loope.TimmOptions{Seed: *f.seed, NoAntialias: *f.noAA})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", *f.initFrom, err)
	}
	fmt.Fprintf(os.Stderr, "init from %s: %dx%d image, patch %d, dim %d, depth %d, heads %d; new: %s\n",
		*f.initFrom, cfg.Image, cfg.Image, cfg.Patch, cfg.Dim, cfg.Depth, cfg.Heads, strings.Join(fresh, " "))
	return m, nil
}

// replicaCount returns the data-parallel replicas: -replicas, or by
// default the thread count when the PE keeps no batch statistics.
func (f *trainFlags) replicaCount(fs *flag.FlagSet, m loope.Model[float32]) (int, error) {
	reps := *f.replicas
	if reps == 0 {
		reps = 1
		if !loope.HasBatchStats[float32](m) {
			reps = min(loope.Threads(), *f.batch)
		}
	} else if reps > 1 && loope.HasBatchStats[float32](m) {
		return 0, badUsage(fs, "-replicas %d: PE %s keeps batch statistics (BatchNorm), which replicas cannot share; use -replicas 1", reps, *f.pe)
	}
	return reps, nil
}

// plan returns the step count (from -steps, -epochs, or the -time budget,
// after the checkpoint's step on resume) and the deadline of a budget.
func (f *trainFlags) plan(cfg loope.Config, d *loope.TrainData, reps int, t0 time.Time) (int, time.Time, error) {
	var err error
	n := *f.steps
	if n == 0 {
		n = max(int(*f.epochs*float64(d.Train.Len())/float64(*f.batch)+0.5), 1)
	}
	var deadline time.Time
	if *f.budget > 0 {
		if n, deadline, err = loope.PlanSteps(cfg, *f.batch, reps, t0.Add(*f.budget), d.Val.Len(), d.Test.Len(), os.Stderr); err != nil {
			return 0, time.Time{}, fmt.Errorf("-time %v: %w", *f.budget, err)
		}
		if *f.resume != "" { // extend the run: the budget's steps come after the checkpoint's
			done, err := loope.CheckpointStep(filepath.Join(*f.resume, "last.safetensors"))
			if err != nil {
				return 0, time.Time{}, err
			}
			n = min(done+n, loope.MaxSteps)
			fmt.Fprintf(os.Stderr, "time budget: resuming after step %d, the run now ends at step %d\n", done, n)
		}
	}
	return n, deadline, nil
}

// finish draws the curve, tests the best-validation checkpoint and writes
// result.json.
func (f *trainFlags) finish(cfg loope.Config, d *loope.TrainData, name string, n, reps int, tc loope.TrainConfig, last loope.EvalResult, curve []byte, t0 time.Time) error {
	if err := plotCurve(filepath.Join(*f.out, "curve.png"), fmt.Sprintf("%s %s pe %s", *f.data, name, *f.pe), curve); err != nil {
		return err
	}
	// Test with the best validation checkpoint, as the paper (docs/paper.md §6.2).
	best, _, err := loope.LoadModel[float32](filepath.Join(*f.out, "best.safetensors"))
	if err != nil {
		return err
	}
	res := loope.Evaluate(best, d.Test, "ce", *f.batch)
	if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
		return fmt.Errorf("non-finite test loss %v: check the test data", res.Loss)
	}
	wall := time.Since(t0)
	fmt.Printf("test accuracy %.4f loss %.4f (%d images; best-val checkpoint; %s wall)\n", res.Acc, res.Loss, res.Examples, wall.Round(time.Second))
	summary, _ := json.MarshalIndent(map[string]any{
		"data": *f.data, "arch": *f.arch, "preset": *f.preset, "init_from": *f.initFrom, "image": cfg.Image, "pe": *f.pe, "steps": n, "steps_done": last.Steps, "batch": *f.batch, "seed": *f.seed,
		"test_acc": res.Acc, "test_loss": res.Loss, "wall_s": wall.Seconds(), "threads": loope.Threads(), "replicas": reps, "time_budget_s": f.budget.Seconds(),
		"lr": *f.lr, "pe_lr_scale": *f.peLR, "min_lr": *f.minLR, "warmup": tc.Warmup, "wd": *f.wd, "clip": *f.clip, "smoothing": *f.smoothing, "augment": *f.augment, "val_frac": *f.valFrac,
	}, "", "  ")
	return loope.WriteFileAtomic(filepath.Join(*f.out, "result.json"), func(w io.Writer) error {
		_, err := w.Write(append(summary, '\n'))
		return err
	})
}

// checkMemory refuses a run whose estimated peak memory
// (loope.EstimateTrainMemory; replicas 0 counts one per thread) exceeds
// the memory available, naming both and the flags that change it; a run
// that fits gets the estimate on log.
func checkMemory(log io.Writer, cfg loope.Config, batch, replicas int, data int64) error {
	if replicas == 0 {
		replicas = min(loope.Threads(), batch)
	}
	return fitsMemory(log, loope.EstimateTrainMemory(cfg, batch, replicas, data),
		fmt.Sprintf("lower -batch %d (activations grow with it), -image %d (tokens grow with its square), or use a smaller -preset", batch, cfg.Image))
}

// fitsMemory refuses an estimate est that exceeds the memory available,
// naming both and what to change (hint); one that fits is printed on log.
func fitsMemory(log io.Writer, est loope.MemEstimate, hint string) error {
	avail, source, ok := loope.AvailableMemory()
	if !ok || est.Total() <= avail {
		fmt.Fprintf(log, "memory: estimated peak %s\n", est)
		return nil
	}
	return fmt.Errorf("this run needs an estimated %s, but %s is available (%s): %s", est, loope.GB(avail), source, hint)
}

// cutMetrics cuts the metrics file f (JSON lines of loope.Metric, in step
// order) back to the records of steps ≤ step, the checkpoint a run
// resumes from, so that the steps it trains again are not recorded twice;
// a torn last line (a killed write) goes too. It returns the records kept.
func cutMetrics(f *os.File, step int) ([]byte, error) {
	raw, err := os.ReadFile(f.Name())
	if err != nil {
		return nil, err
	}
	keep := 0
	for keep < len(raw) {
		end := bytes.IndexByte(raw[keep:], '\n')
		if end < 0 {
			break
		}
		var m loope.Metric
		if json.Unmarshal(raw[keep:keep+end], &m) != nil || m.Step > step {
			break
		}
		keep += end + 1
	}
	if keep < len(raw) {
		if err := f.Truncate(int64(keep)); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "%s: cut back to the records up to step %d\n", f.Name(), step)
	}
	return raw[:keep], nil
}

// plotCurve draws the training curve (loss and accuracy, train and
// validation) from the JSON lines Train wrote.
func plotCurve(path, title string, jsonl []byte) error {
	var ms []loope.Metric
	dec := json.NewDecoder(bytes.NewReader(jsonl))
	for dec.More() {
		var m loope.Metric
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("reading metrics: %w", err)
		}
		ms = append(ms, m)
	}
	return loope.PlotTrainingCurves(path, title, ms)
}

// pretrainedConfig reads the timm ViT checkpoint at path and returns it with
// the model config it fixes (loope.TimmConfig: channels, width, depth, MLP;
// heads from -heads, else from the width). With an explicit -preset, the
// image size and patch come from the preset (a different patch resamples
// the patch embedding as timm's resample_patch_embed), and so do the heads
// if the widths agree; otherwise the checkpoint's image and patch are kept.
func pretrainedConfig(path string, preset loope.Config, explicit bool, heads int) (*loope.SafeFile, loope.Config, error) {
	f, err := loope.ReadSafeFile(path)
	if err != nil {
		return nil, preset, err
	}
	if pw := f.Tensors["patch_embed.proj.weight"].Shape; explicit && heads == 0 && len(pw) > 0 && pw[0] == preset.Dim {
		heads = preset.Heads
	}
	cfg, err := loope.TimmConfig(f, heads)
	if err != nil {
		return nil, preset, fmt.Errorf("%s: %w", path, err)
	}
	if explicit {
		cfg.Image, cfg.Patch = preset.Image, preset.Patch
	}
	return f, cfg, nil
}

// samePath reports whether a and b name the same folder: equal once
// cleaned and made absolute, or the same existing file.
func samePath(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err1 == nil && err2 == nil && aa == bb {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
