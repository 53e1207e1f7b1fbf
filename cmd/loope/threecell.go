// Subcommand threecell runs the Three-Cell benchmark (LOOPE arXiv
// 2504.14386 Table 4, docs/paper.md §4): one ViT per positional
// embedding and seed, trained on the same synthetic images, scored on the
// fixed test split by Distance, Orientation, Area, Vector Sum and Average:
//
//	loope threecell -pe none,learnable,sin1d,hilbert,loope -seeds 1 -out out/threecell
//
// prints a Markdown table (mean ± std over seeds, the best constant
// predictor, the paper's values) and writes results.md, .csv, .json,
// training curves and PE similarity maps into -out. The defaults (preset
// tiny: 14 px images, a 7×7 grid of 2 px cells, D 64, depth 4; 1500 steps of
// 32 fresh images, AdamW lr 1e-3) were tuned on this project's 2-core
// machine so that the five default PEs finish within 10 minutes and show the
// paper's effect (README "Three-Cell benchmark" has the measured run).
// -preset small is the paper's 14×14 grid at 28 px; -preset ti16 the paper's
// 224 px scale.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/loope-go/loope"
)

func init() {
	commands["threecell"] = command{summary: "Three-Cell benchmark: train a ViT per PE and seed, Table-4 accuracies", run: runThreeCell}
}

// maxThreeCellTrain bounds -train-size: Train keeps a permutation of it.
const maxThreeCellTrain = 1 << 24

// The default benchmark: the five PEs of the paper's Table 1, three seeds,
// and the step count and batch that fit 10 minutes on 2 cores (README
// "Three-Cell benchmark" has the measurement).
const (
	defaultThreeCellPEs   = "none,learnable,sin1d,hilbert,loope"
	defaultThreeCellSeeds = "3"
	defaultThreeCellSteps = 1500
	defaultThreeCellBatch = 32
)

func runThreeCell(args []string) error { return threecellMain(args, os.Stdout, os.Stderr) }

// threecellMain is runThreeCell with the output streams as parameters.
func threecellMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("threecell", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pes := fs.String("pe", defaultThreeCellPEs, "comma list of PEs, or all (registered: "+strings.Join(loope.PENames(), ", ")+")")
	cnnStem := cnnStemFlag(fs)
	refs := fs.String("ref", "", "comma list of reference models trained on the same data, reported under the PEs (available: "+strings.Join(loope.ReferenceModels(), ", ")+")")
	seeds := fs.String("seeds", defaultThreeCellSeeds, "N (seeds 0…N−1) or a comma list of seeds (one explicit seed: \"7,\")")
	preset := fs.String("preset", "tiny", "model preset: "+strings.Join(loope.PresetNames(), ", ")+" (cell = patch, grid = image/patch)")
	arch := archFlag(fs)
	caitCLS := caitCLSFlag(fs)
	// The default steps fit 10 min for the 5 default PEs × 3 seeds on 2 cores.
	opt := addOptimFlags(fs, recipe{steps: defaultThreeCellSteps, batch: defaultThreeCellBatch, warmup: -1,
		epochOf: "-train-size images"})
	trainSize := fs.Int("train-size", loope.ThreeCellTrainN, "training images (per epoch with -stream)")
	valSize := fs.Int("val-size", 256, "validation images (fixed split)")
	testSize := fs.Int("test-size", 0, "test images (0: the whole fixed test split of 1,000, as the paper)")
	stream := fs.Bool("stream", true, "fresh training images every epoch (false: the fixed 8,000-image split)")
	dataSeed := fs.Uint64("data-seed", 0, "Three-Cell dataset seed, shared by every run")
	evalEvery := fs.Int("eval-every", 0, "validate every this many steps (0: 4 times per run)")
	logEvery := fs.Int("log-every", 0, "progress line every this many steps (0: 10 per run)")
	opts := addPEFlags(fs) // -freqs (here a comma list), -loope-*, -fourier-*: applied to the PEs that read them
	out := fs.String("out", "out/threecell", "output folder (results.md/.csv/.json, PNG figures, runs/ with one file per run)")
	threads := threadsFlag(fs)
	jobs := fs.Int("jobs", 0, "runs trained side by side, one kernel thread each (0: one per core, or 1 with -threads > 1); the numbers do not depend on it")
	initFrom := fs.String("init-from", "", "the paper's protocol: every PE run starts from this timm-named ViT state dict (safetensors, e.g. a loope train checkpoint; width, depth, MLP must match -preset); fresh PE (learnable keeps the file's pos_embed, resampled), new head")
	force := fs.Bool("force", false, "write into -out even if it holds another sweep's results (they are deleted)")
	list := fs.Bool("list", false, "print the sweep's runs (index, PE, seed, freqs) and exit")
	shardS := fs.String("shard", "", "run only the runs whose index ≡ i (mod n), given as i/n (default: from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID, else all)")
	shards := fs.Int("shards", 0, "shard count n where the engine gives only an index (Kubernetes: the Job's completions)")
	merge := fs.Bool("merge", false, "build -out's report from the run files of the folders given as arguments (loope threecell -merge -out DIR SRC…)")
	if done, err := parseFlagsArgs(fs, args); done {
		return err
	}
	bad := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "loope threecell: "+format+"\n(loope threecell -h lists the flags)\n", a...)
		return errUsage
	}
	if *merge {
		return threeCellMerge(fs, *out, stdout, stderr, bad)
	}
	if fs.NArg() > 0 {
		return bad("unexpected arguments %q (only -merge takes folders)", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	model, presetName, err := archPreset(*arch, *preset, set["preset"], *caitCLS)
	if err != nil {
		return bad("%v", err)
	}
	cfg := loope.ThreeCellBenchConfig{Preset: presetName, Model: model, DataSeed: *dataSeed, Stream: *stream,
		TrainSize: *trainSize, ValSize: *valSize, TestSize: *testSize, Steps: *opt.steps, Batch: *opt.batch, LR: *opt.lr,
		MinLR: *opt.minLR, WeightDecay: *opt.wd, EvalEvery: *evalEvery, LogEvery: *logEvery, Out: *out, Threads: *threads,
		Jobs: *jobs, Refs: splitList(*refs), InitFrom: *initFrom, CNNStem: *cnnStem}
	if err := threeCellPEs(&cfg, *pes, set, opts); err != nil {
		return bad("%v", err)
	}
	if cfg.Seeds, err = parseSeeds(*seeds); err != nil {
		return bad("-seeds: %v", err)
	}
	if err := threeCellSchedule(&cfg, set, opt); err != nil {
		return bad("%v", err)
	}
	if cfg.Shard, err = threeCellShard(*shardS, *shards, set, stderr); err != nil {
		return bad("%v", err)
	}
	if err := checkThreeCell(&cfg, *force); err != nil {
		return bad("%v", err)
	}
	if *list {
		return listThreeCell(stdout, cfg)
	}
	if validateOnly {
		return nil
	}
	return runThreeCellSweep(cfg, *force, stdout, stderr)
}

// checkThreeCell checks the whole sweep before anything is written: the
// config (with every problem on its own line), the -init-from backbone (its
// digest is set in cfg), and the limits of the command line.
func checkThreeCell(cfg *loope.ThreeCellBenchConfig, force bool) error {
	if err := cfg.Validate(); err != nil {
		return errors.New(strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	if err := cfg.CheckInitFrom(); err != nil {
		return err
	}
	switch err := checkBatch(cfg.Batch, cfg.Model.Channels, cfg.Model.Image); {
	case err != nil:
		return err
	case cfg.Threads > maxThreads || cfg.Jobs > maxThreads:
		return fmt.Errorf("-threads %d, -jobs %d: need ≤ %d", cfg.Threads, cfg.Jobs, maxThreads)
	case cfg.TrainSize > maxThreeCellTrain:
		return fmt.Errorf("-train-size %d: need ≤ %d (the shuffled order is held in memory)", cfg.TrainSize, maxThreeCellTrain)
	case force && cfg.Shard.N > 1:
		return errors.New("-force with -shard: a shard must not delete the other shards' runs; clear -out before starting the shards")
	}
	return nil
}

// runThreeCellSweep checks memory, claims -out (resuming this sweep's runs
// there, refusing another sweep's results unless force) and runs cfg.
func runThreeCellSweep(cfg loope.ThreeCellBenchConfig, force bool, stdout, stderr io.Writer) error {
	if err := fitsMemory(stderr, cfg.EstimateMemory(), fmt.Sprintf("lower -batch %d or -jobs (each run in flight holds its own model), or drop the largest -ref", cfg.Batch)); err != nil {
		return err
	}
	if cfg.Out != "" {
		why := cfg.ForeignResults()
		if why != "" && !force {
			return fmt.Errorf("%s holds results of another sweep (%s): give -force to replace them, or another -out", cfg.Out, why)
		}
		var lock *loope.DirLock
		var err error
		if cfg.Shard.N > 1 { // shards share -out; each takes a lock of its own and writes only runs/
			lock, err = loope.LockDirAs(cfg.Out, fmt.Sprintf("%s.shard-%d-of-%d", loope.LockName, cfg.Shard.I, cfg.Shard.N), stderr)
		} else {
			lock, err = openOutDir(cfg.Out, why == "", force, stderr, loope.ThreeCellOutputs...)
		}
		if err != nil {
			return err
		}
		defer lock.Unlock()
	}
	rep, err := loope.RunThreeCellBench(cfg, stderr)
	if err != nil {
		return err
	}
	switch {
	case cfg.Shard.N > 1:
		fmt.Fprintf(stderr, "%s finished: its runs are in %s/%s; when every shard is done: loope threecell -merge -out DIR %s\n",
			cfg.Shard, cfg.Out, loope.RunsDir, cfg.Out)
	default:
		fmt.Fprint(stdout, rep.Markdown())
		if cfg.Out != "" {
			fmt.Fprintf(stderr, "wrote %s/results.md, results.csv, results.json, figures and %s/\n", cfg.Out, loope.RunsDir)
		}
	}
	return nil
}

// threeCellShard returns the shard from -shard, else from the batch
// engine's variables (with -shards), and says which it is and where it
// came from.
func threeCellShard(shard string, shards int, set map[string]bool, log io.Writer) (loope.Shard, error) {
	if shard != "" {
		if set["shards"] {
			return loope.Shard{}, fmt.Errorf("-shard %s and -shards do not go together (-shard i/n names the count)", shard)
		}
		s, err := loope.ParseShard(shard)
		if err != nil {
			return s, fmt.Errorf("-shard %v", err)
		}
		return s, nil
	}
	if set["shards"] && shards < 1 {
		return loope.Shard{}, fmt.Errorf("-shards %d: need ≥ 1", shards)
	}
	s, from, err := loope.ShardFromEnv(os.Getenv, shards)
	if err == nil && from != "" {
		fmt.Fprintf(log, "%s (from %s)\n", s, from)
	}
	return s, err
}

// listThreeCell prints the runs of cfg's sweep (the owned ones when
// sharded), one per line: index, PE (or reference model), seed, freqs.
func listThreeCell(w io.Writer, cfg loope.ThreeCellBenchConfig) error {
	runs := cfg.Runs()
	fmt.Fprintf(w, "# %d runs; %s; config hash %s\n# index\tpe\tseed\tfreqs\n", len(runs), cfg.Shard, cfg.Hash()[:12])
	for _, r := range runs {
		if !cfg.Shard.Owns(r.Index) {
			continue
		}
		pe, f := r.PE, r.Freqs
		if r.Ref {
			pe += " (reference)"
		}
		if f == "" {
			f = "-"
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%s\n", r.Index, pe, r.Seed, f)
	}
	return nil
}

// threeCellMerge builds out's report from the run files of the folders
// given as arguments (or of out itself when none is given).
func threeCellMerge(fs *flag.FlagSet, out string, stdout, stderr io.Writer, bad func(string, ...any) error) error {
	var other []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "merge" && f.Name != "out" && f.Name != "threads" {
			other = append(other, "-"+f.Name)
		}
	})
	srcs := fs.Args()
	switch {
	case len(other) > 0:
		return bad("-merge takes only -out and the source folders; %s belong to the sweep's runs, whose files hold them", strings.Join(other, ", "))
	case out == "":
		return bad("-merge needs -out")
	case len(srcs) == 0:
		srcs = []string{out}
	}
	if validateOnly {
		return nil
	}
	rep, err := loope.MergeThreeCell(out, srcs, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Markdown())
	fmt.Fprintf(stderr, "merged %d runs from %s into %s/results.md, results.csv, results.json and figures\n",
		len(rep.Runs), strings.Join(srcs, ", "), out)
	return nil
}

// threeCellPEs sets cfg's PEs from the -pe list (or all) and each PE's
// options from the PE option flags; an option flag that none of the PEs
// reads is an error. set holds the flags given.
func threeCellPEs(cfg *loope.ThreeCellBenchConfig, pes string, set map[string]bool, opts *peOptions) error {
	cfg.PEs = splitList(pes)
	if pes == "all" {
		cfg.PEs = loope.PENames()
	}
	for _, name := range slices.Sorted(maps.Keys(set)) {
		if users, ok := peFlagUsers[name]; ok && !slices.ContainsFunc(cfg.PEs, func(pe string) bool { return slices.Contains(users, pe) }) {
			return fmt.Errorf("-%s applies to none of -pe %s (it is read by: %s)", name, strings.Join(cfg.PEs, ","), strings.Join(users, ", "))
		}
	}
	for _, pe := range cfg.PEs {
		pc := loope.PEConfig{Name: pe}
		if err := opts.apply(flag.NewFlagSet("", flag.ContinueOnError), &pc); err != nil {
			return err
		}
		pc.Freqs = "" // the sweep's frequency sets, one run each
		cfg.PEOptions = append(cfg.PEOptions, pc)
	}
	if set["freqs"] {
		cfg.FreqSets = splitList(*opts.freqs)
	}
	return nil
}

// threeCellSchedule sets the step count from -epochs (if given, instead of
// -steps), the warm-up (−1: 5 % of the steps) and the default evaluation
// (4 per run) and log (10 per run) intervals.
func threeCellSchedule(cfg *loope.ThreeCellBenchConfig, set map[string]bool, opt *optimFlags) error {
	if err := opt.validate(set); err != nil {
		return err
	}
	if set["epochs"] {
		if cfg.Batch <= 0 {
			return fmt.Errorf("-epochs needs -batch > 0")
		}
		cfg.Epochs = *opt.epochs
		cfg.Steps = int(math.Ceil(cfg.Epochs * float64(cfg.TrainSize) / float64(cfg.Batch)))
	}
	cfg.Warmup = opt.warmupOf(cfg.Steps)
	if cfg.EvalEvery == 0 {
		cfg.EvalEvery = max(1, cfg.Steps/4)
	}
	if cfg.LogEvery == 0 {
		cfg.LogEvery = max(1, cfg.Steps/10)
	}
	return nil
}

// splitList splits a comma list, dropping empty items and spaces.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseSeeds reads "N" (seeds 0…N−1) or a comma list of seeds.
func parseSeeds(s string) ([]uint64, error) {
	if !strings.Contains(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1000 {
			return nil, fmt.Errorf("%q: want a count 1…1000 or a comma list of seeds", s)
		}
		seeds := make([]uint64, n)
		for i := range seeds {
			seeds[i] = uint64(i)
		}
		return seeds, nil
	}
	var seeds []uint64
	for _, f := range splitList(s) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: seed %q is not a non-negative integer", s, f)
		}
		seeds = append(seeds, v)
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("%q: no seed", s)
	}
	return seeds, nil
}
