// This file holds the Three-Cell benchmark runner (arXiv 2504.14386,
// Table 4; docs/paper.md §4 and §7): its config, the loop that trains one
// ViT per PE and seed on the same data (threecell_data.go) and scores the
// test split with the group accuracies of docs/paper.md §4.5, and the
// probe of an additive PE's table for PESI and the cosine-similarity maps
// of supplement Fig. 2. Its progress lines are in threecell_progress.go,
// the report in threecell_report.go, the frequency sensitivity in
// sensitivity.go.

package loope

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// ThreeCellBenchConfig configures RunThreeCellBench. The JSON form is
// saved in results.json.
type ThreeCellBenchConfig struct {
	Preset    string   `json:"preset"`     // model preset name (informational)
	Model     Config   `json:"model"`      // model shape; PE is set per run (left zero in results.json)
	PEs       []string `json:"pes"`        // registered PE names, in table order
	Seeds     []uint64 `json:"seeds"`      // model-init and shuffling seeds, one run per PE and seed
	DataSeed  uint64   `json:"data_seed"`  // Three-Cell generator seed, shared by every run
	Stream    bool     `json:"stream"`     // fresh training images every epoch
	TrainSize int      `json:"train_size"` // training images (per epoch when streaming); ≤ 8000 if fixed
	ValSize   int      `json:"val_size"`   // validation images, from the fixed val split
	TestSize  int      `json:"test_size"`  // test images (0: the whole test split, as the paper)
	// FreqSets are the frequency sets (FreqSetNames) the PEs that read one
	// run with, one run each; empty: each PE's default.
	FreqSets []string `json:"freq_sets,omitempty"`
	// Refs are reference models (ReferenceModels, e.g. a CNN) trained on the
	// same data and recipe, reported under the PEs.
	Refs []string `json:"refs,omitempty"`
	// CNNStem is the stem of the CNN reference models (Config.Stem,
	// docs/cnn.md §2): "small", "imagenet", or "" for their default.
	CNNStem string `json:"cnn_stem,omitempty"`
	// PEOptions holds the full PEConfig of some PEs (matched by Name, e.g.
	// LOOPE's squashing); a PE without an entry uses PEConfig{Name}. The
	// run's frequency set is applied on top.
	PEOptions []PEConfig `json:"pe_options,omitempty"`
	// InitFrom, if set, is the paper's protocol: every PE run starts from
	// the backbone of this timm-named ViT state dict (safetensors, e.g. a
	// loope train checkpoint): patch embedding, blocks, norm and CLS load
	// as LoadTimmViT does; the PE is fresh, except that learnable keeps the
	// file's pos_embed resampled to the grid; the head is new. Reference
	// models still start from scratch.
	InitFrom string `json:"init_from,omitempty"`
	// InitFromSHA256 is InitFrom's digest (CheckInitFrom sets it); the
	// digest, not the path, is part of Hash.
	InitFromSHA256 string `json:"init_from_sha256,omitempty"`

	Steps       int     `json:"steps"`        // optimiser steps per run
	Epochs      float64 `json:"epochs"`       // what Steps was derived from (0: given as steps)
	Batch       int     `json:"batch"`        // images per step
	LR          float64 `json:"lr"`           // peak learning rate (AdamW)
	MinLR       float64 `json:"min_lr"`       // end of the cosine schedule
	Warmup      int     `json:"warmup"`       // linear warm-up steps
	WeightDecay float64 `json:"weight_decay"` // AdamW decoupled weight decay
	EvalEvery   int     `json:"eval_every"`   // validation every this many steps (0: at the end)
	LogEvery    int     `json:"log_every"`    // progress line every this many steps

	Out     string `json:"out"`     // output folder ("" writes nothing)
	Threads int    `json:"threads"` // kernel goroutines (0: GOMAXPROCS, or 1 with Jobs > 1)
	// Jobs is how many runs train side by side, each with one kernel
	// thread (0: GOMAXPROCS, or 1 when Threads > 1). The runs' numbers do
	// not depend on it: with Jobs > 1 they are those of Threads 1.
	Jobs int `json:"-"`
	// Shard is the part of Runs this process trains (zero: all). A shard
	// writes only its run files; MergeThreeCell builds the report.
	Shard Shard `json:"-"`
}

// ThreeCellPESIDirections is N of M_D in the reports (δ = 6°, Table 5).
const ThreeCellPESIDirections = 60

// ThreeCellPESIImages is how many test images the PESI of an
// image-dependent PE (e.g. LOOPE's X_C) is averaged over (docs/paper.md §10 #21).
const ThreeCellPESIImages = 8

// Validate reports every invalid setting, naming the flag it comes from.
func (c ThreeCellBenchConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	c.validateRuns(bad)
	if c.TrainSize <= 0 || (!c.Stream && c.TrainSize > ThreeCellTrainN) {
		bad("-train-size %d: need 0 < n ≤ %d (fixed split) or n > 0 (stream)", c.TrainSize, ThreeCellTrainN)
	}
	if c.ValSize < 0 || c.ValSize > ThreeCellValN {
		bad("-val-size %d: need 0 ≤ n ≤ %d", c.ValSize, ThreeCellValN)
	}
	if c.TestSize < 0 || c.TestSize > ThreeCellTestN {
		bad("-test-size %d: need 0 ≤ n ≤ %d (0: all)", c.TestSize, ThreeCellTestN)
	}
	for i, f := range c.FreqSets {
		if !slices.Contains(FreqSetNames, f) {
			bad("-freqs: unknown frequency set %q (valid: %s)", f, strings.Join(FreqSetNames, ", "))
		} else if slices.Contains(c.FreqSets[:i], f) {
			bad("-freqs: %q given twice", f)
		}
	}
	if len(c.FreqSets) > 0 && !slices.ContainsFunc(c.PEs, PEReadsFreqs) {
		bad("-freqs %s: none of the PEs reads a frequency set (those that do: loope, %s)", strings.Join(c.FreqSets, ","), strings.Join(FixedPENames, ", "))
	}
	if c.Shard.N > 1 && (c.Shard.I < 0 || c.Shard.I >= c.Shard.N) {
		bad("-shard %d/%d: need 0 ≤ i < n", c.Shard.I, c.Shard.N)
	}
	for _, o := range c.PEOptions {
		if !slices.Contains(c.PEs, o.Name) {
			bad("PE options for %q, which is not among the PEs", o.Name)
		}
	}
	if c.Steps <= 0 {
		bad("-steps %d: need > 0", c.Steps)
	}
	if c.Batch <= 0 {
		bad("-batch %d: need > 0", c.Batch)
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) || !(c.MinLR >= 0) || c.MinLR > c.LR {
		bad("-lr %g, -min-lr %g: need 0 ≤ min-lr ≤ lr, lr > 0 and finite", c.LR, c.MinLR)
	}
	if c.Warmup < 0 || c.Warmup >= c.Steps {
		bad("-warmup %d: need 0 ≤ warmup < steps (%d)", c.Warmup, c.Steps)
	}
	if !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0) {
		bad("-wd %g: need a finite value ≥ 0", c.WeightDecay)
	}
	if c.EvalEvery < 0 || c.LogEvery < 0 {
		bad("-eval-every %d, -log-every %d: need ≥ 0", c.EvalEvery, c.LogEvery)
	}
	if c.Threads < 0 || c.Jobs < 0 {
		bad("-threads %d, -jobs %d: need ≥ 0", c.Threads, c.Jobs)
	}
	if c.Jobs > 1 && c.Threads > 1 {
		bad("-jobs %d with -threads %d: runs side by side use one kernel thread each; give -jobs 1 or -threads 1", c.Jobs, c.Threads)
	}
	return errors.Join(errs...)
}

// validateRuns reports through bad what is wrong with the runs: the PEs
// (known, once each, their options buildable on the model), the seeds and
// the model shape.
func (c ThreeCellBenchConfig) validateRuns(bad func(format string, a ...any)) {
	if len(c.PEs) == 0 && len(c.Refs) == 0 {
		bad("-pe: no positional embedding given")
	}
	if len(c.Refs) > 0 && c.Batch == 1 {
		bad("-batch 1: the reference models' BatchNorm needs at least 2 images per step (Inception-V3's last maps are 1×1)")
	}
	if c.CNNStem != "" && len(c.Refs) == 0 {
		bad("-cnn-stem %s: no reference model (-ref) to apply it to", c.CNNStem)
	}
	for i, ref := range c.Refs {
		if !slices.Contains(ReferenceModels(), ref) {
			bad("-ref: unknown reference model %q (valid: %s)", ref, strings.Join(ReferenceModels(), ", "))
		} else if slices.Contains(c.Refs[:i], ref) {
			bad("-ref: %q given twice", ref)
		}
	}
	for i, pe := range c.PEs {
		if _, ok := peRegistry[pe]; !ok {
			bad("-pe: unknown positional embedding %q (valid: %s)", pe, strings.Join(PENames(), ", "))
		}
		if slices.Contains(c.PEs[:i], pe) {
			bad("-pe: %q given twice", pe)
		}
	}
	if len(c.Seeds) == 0 {
		bad("-seeds: no seed given")
	}
	for i, s := range c.Seeds {
		if slices.Contains(c.Seeds[:i], s) {
			bad("-seeds: seed %d given twice", s)
		}
	}
	m := c.Model
	m.PE = PEConfig{Name: "none"} // the shape alone; each PE is checked below
	if err := m.Validate(); err != nil {
		bad("%v", err)
	} else if _, err := NewThreeCellFor(m, c.DataSeed); err != nil {
		bad("-preset %s: %v", c.Preset, err)
	} else {
		for _, pe := range c.PEs {
			if _, ok := peRegistry[pe]; !ok {
				continue
			}
			m.PE = c.peConfig(pe, "") // build each PE once, so its option errors come before any training
			if _, err := newPosEmb[float32](m, rand.New(rand.NewPCG(0, 0))); err != nil {
				bad("-pe %s: %v", pe, err)
			}
		}
		for _, ref := range c.Refs {
			if !slices.Contains(ReferenceModels(), ref) {
				continue // reported above
			}
			rc, err := c.refConfig(ref)
			if err == nil {
				err = rc.Validate()
			}
			if err != nil {
				bad("-ref %s: %v", ref, err)
			}
		}
	}
}

// PEReadsFreqs reports whether the PE name reads PEConfig.Freqs: the fixed
// sinusoids and LOOPE. It is the one place that knows; cmd/loope's -freqs
// check reads it too.
func PEReadsFreqs(name string) bool { return name == "loope" || slices.Contains(FixedPENames, name) }

// peConfig returns the PEConfig of PE name with frequency set freqs ("":
// the PE's default or its option's).
func (c ThreeCellBenchConfig) peConfig(name, freqs string) PEConfig {
	pc := PEConfig{Name: name}
	for _, o := range c.PEOptions {
		if o.Name == name {
			pc = o
		}
	}
	if freqs != "" {
		pc.Freqs = freqs
	}
	return pc
}

// modelConfig returns the model config of run r: the preset's ViT with the
// run's PE, or the reference model at the same image size.
func (c ThreeCellBenchConfig) modelConfig(r SweepRun) (Config, error) {
	if r.Ref {
		return c.refConfig(r.PE)
	}
	mc := c.Model
	mc.PE = c.peConfig(r.PE, r.Freqs)
	return mc, nil
}

// refConfig returns the config of reference model name for the sweep's
// model: its image, channels and classes, and the sweep's CNN stem.
func (c ThreeCellBenchConfig) refConfig(name string) (Config, error) {
	rc, err := referenceConfig(name, c.Model)
	if err != nil {
		return rc, err
	}
	if c.CNNStem != "" {
		rc.Stem = c.CNNStem
		err = rc.Validate()
	}
	return rc, err
}

// MachineInfo records where a benchmark ran.
type MachineInfo struct {
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Threads    int    `json:"threads"` // kernel goroutines (Threads())
}

func machineInfo() MachineInfo {
	return MachineInfo{GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Threads: Threads()}
}

// ThreeCellRun is the outcome of one run of the sweep: a PE (or reference
// model) with one seed (and frequency set).
type ThreeCellRun struct {
	SweepRun
	Params   int          `json:"params"`    // trainable scalars
	Test     ThreeCellAcc `json:"test"`      // Table 4 columns on the test split, fractions
	TestBits [6]float64   `json:"test_bits"` // per-bit test accuracy
	TestLoss float64      `json:"test_loss"` // mean BCE on the test split
	ValLoss  float64      `json:"val_loss"`  // at the last step (NaN-free: 0 without validation)
	ValAcc   float64      `json:"val_acc"`   // mean bit accuracy at the last step
	Curve    []Metric     `json:"curve"`     // the metrics Train emitted
	PESI     *PESIScores  `json:"pesi,omitempty"`
	// PESource says which table PESI and the heat map used: "fixed" for a
	// table independent of the image, or "mean over test images …" for an
	// image-dependent PE; empty if the PE adds no table.
	PESource string `json:"pe_source,omitempty"`
	CurvePNG string `json:"curve_png,omitempty"`
	// Timing, kept in its own fields (a rerun changes nothing else).
	Started time.Time   `json:"started"`
	WallS   float64     `json:"wall_s"` // training + evaluation time
	Machine MachineInfo `json:"machine"`
}

// RunThreeCellBench trains the runs of cfg's sweep (Runs) that cfg.Shard
// owns, one model per run on the same Three-Cell data, and scores each on
// the test split (fixed indices [9000, 10000)).
//
// With cfg.Out set, each finished run is saved atomically as
// Out/runs/<FileName>; a run whose file is already there from the same
// sweep is skipped, and one whose file is corrupt is run again, so
// re-running a stopped benchmark resumes it. A whole-sweep process then
// rebuilds results.md, results.csv, results.json and the figures from the
// run files after every run; a shard writes only its run files
// (MergeThreeCell builds the report). Progress lines, with an ETA over the
// process's runs, go to log.
func RunThreeCellBench(cfg ThreeCellBenchConfig, log io.Writer) (*ThreeCellReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = io.Discard
	}
	if cfg.Threads > 0 {
		old := Threads()
		SetThreads(cfg.Threads)
		defer SetThreads(old)
	}
	if err := cfg.CheckInitFrom(); err != nil {
		return nil, err
	}
	cfg.Model.PE = PEConfig{}
	done, tables, err := cfg.finishedRuns(log)
	if err != nil {
		return nil, err
	}
	var todo []SweepRun
	for _, r := range cfg.Runs() {
		if _, ok := done[r.Index]; !ok && cfg.Shard.Owns(r.Index) {
			todo = append(todo, r)
		}
	}
	jobs := cfg.jobs(len(todo))
	if jobs > 1 {
		old := Threads()
		SetThreads(1) // runs side by side, one kernel thread each: the bits of -threads 1
		defer SetThreads(old)
	}
	fmt.Fprintf(log, "%s: %d of %d runs; %d to train, %d at a time\n", cfg.Shard, countOwned(cfg), len(cfg.Runs()), len(todo), jobs)
	log = &lockedWriter{w: log}
	whole := cfg.Shard.N <= 1
	finished := 0
	save := func(sr SweepRun, run ThreeCellRun, table []float64) error { // called under trainRuns' lock
		done[sr.Index], tables[sr.Index] = run, table
		finished++
		fmt.Fprintf(log, "%s done (%d/%d): test %v (%.0fs)\n", sr, finished, len(todo), run.Test, run.WallS)
		if cfg.Out == "" {
			return nil
		}
		if err := writeRunFile(cfg.Out, cfg, run, table); err != nil {
			return err
		}
		if whole {
			return buildThreeCellReport(cfg, mapValues(done)).writeAll(tables)
		}
		return nil
	}
	if err := cfg.trainRuns(todo, jobs, log, save); err != nil {
		return nil, err
	}
	rep := buildThreeCellReport(cfg, mapValues(done))
	if cfg.Out != "" && whole && len(todo) == 0 {
		err = rep.writeAll(tables) // nothing ran: the summary may predate a -force or be missing
	}
	return rep, err
}

// trainRuns trains the runs todo, jobs at a time, and hands each finished
// one to save, one call at a time. After the first error no new run
// starts; the runs in flight finish (and are saved), and that error is
// returned.
func (c ThreeCellBenchConfig) trainRuns(todo []SweepRun, jobs int, log io.Writer, save func(SweepRun, ThreeCellRun, []float64) error) error {
	sp := &sweepProgress{log: log, runs: len(todo), steps: c.Steps, start: time.Now(), at: map[int]int{}}
	var mu sync.Mutex // guards save and firstErr
	var firstErr error
	next := make(chan int)
	var wg sync.WaitGroup
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				sr := todo[k]
				prog := &benchProgress{log: log, sweep: sp, run: k, tag: fmt.Sprintf("[%s seed %d] ", sr.Row(), sr.Seed)}
				run, table, err := c.runOne(sr, prog)
				mu.Lock()
				if err == nil {
					err = save(sr, run, table)
				} else {
					err = fmt.Errorf("loope: %s: %w", sr, err)
				}
				firstErr = cmp.Or(firstErr, err)
				mu.Unlock()
			}
		}()
	}
	for k := range todo {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- k
	}
	close(next)
	wg.Wait()
	return firstErr
}

// jobs returns how many of n runs train side by side.
func (c ThreeCellBenchConfig) jobs(n int) int {
	j := c.Jobs
	if j == 0 {
		j = runtime.GOMAXPROCS(0)
		if c.Threads > 1 {
			j = 1
		}
	}
	return max(1, min(j, n))
}

// countOwned returns how many runs of the sweep cfg.Shard owns.
func countOwned(cfg ThreeCellBenchConfig) int {
	n := 0
	for _, r := range cfg.Runs() {
		if cfg.Shard.Owns(r.Index) {
			n++
		}
	}
	return n
}

// finishedRuns reads the run files already in cfg.Out/runs: runs of this
// sweep are returned (with their PE tables) and reported as skipped; a
// corrupt file of a run is reported and left to be run again; a file of
// another sweep is an error (the caller cleared the folder or chose
// another).
func (c ThreeCellBenchConfig) finishedRuns(log io.Writer) (map[int]ThreeCellRun, map[int][]float64, error) {
	done, tables := map[int]ThreeCellRun{}, map[int][]float64{}
	if c.Out == "" {
		return done, tables, nil
	}
	if _, err := os.Stat(filepath.Join(c.Out, RunsDir)); errors.Is(err, os.ErrNotExist) {
		return done, tables, nil
	}
	files, paths, errs := readRunDir(filepath.Join(c.Out, RunsDir))
	for _, err := range errs {
		fmt.Fprintf(log, "%v: running it again\n", err)
	}
	hash := c.Hash()
	for k, f := range files {
		if f.ConfigHash != hash {
			return nil, nil, fmt.Errorf("loope: %s is from another sweep (first difference in config: %s); use another -out, or -force to replace it",
				paths[k], firstConfigDiff(f.Config, c))
		}
		done[f.Run.Index], tables[f.Run.Index] = f.Run, f.PETable
		if c.Shard.Owns(f.Run.Index) {
			fmt.Fprintf(log, "%s: finished earlier (%s), skipped\n", f.Run.SweepRun, paths[k])
		}
	}
	return done, tables, nil
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// runOne trains and tests one run and, for a PE that adds a table, scores
// it with PESI; it returns the run and that table's patch rows.
func (c ThreeCellBenchConfig) runOne(sr SweepRun, prog *benchProgress) (ThreeCellRun, []float64, error) {
	run, m, err := trainThreeCellRun(c, sr, prog)
	if err != nil {
		return run, nil, err
	}
	run.CurvePNG = fileSafe("curve_"+sr.Row()) + fmt.Sprintf("_seed%d.png", sr.Seed)
	var pe PosEmb[float32]
	var mc Config
	switch v := m.(type) {
	case *ViT[float32]:
		pe, mc = v.PE, v.Cfg
	case *CaiT[float32]:
		pe, mc = v.PE, v.Cfg
	case *CrossViT[float32]: // the first branch: patches of the full image
		pe, mc = v.Branch[0].PE, v.Branch[0].Cfg
	default:
		return run, nil, nil // a reference model has no PE table
	}
	table, err := probePE(c, &run, pe, mc)
	return run, table, err
}

// fileSafe replaces the "/" of a row name ("loope/f2") for a file name.
func fileSafe(s string) string { return strings.ReplaceAll(s, "/", "_") }

// trainThreeCellRun trains and tests the model of run sr.
func trainThreeCellRun(cfg ThreeCellBenchConfig, sr SweepRun, prog *benchProgress) (ThreeCellRun, Model[float32], error) {
	run := ThreeCellRun{SweepRun: sr, Started: time.Now(), Machine: machineInfo()}
	mc, err := cfg.modelConfig(sr)
	if err != nil {
		return run, nil, err
	}
	m, err := cfg.newRunModel(mc, sr)
	if err != nil {
		return run, nil, err
	}
	// The data follow the benchmark's ViT (cell = patch), whatever model
	// runs; one generator per dataset, as a ThreeCell holds scratch state.
	gen := func() *ThreeCell { g, _ := NewThreeCellFor(cfg.Model, cfg.DataSeed); return g }
	var train *ThreeCellData
	if cfg.Stream {
		train, err = NewThreeCellStream(gen(), cfg.TrainSize)
	} else {
		train, err = NewThreeCellSplit(gen(), ThreeCellTrain, cfg.TrainSize)
	}
	if err != nil {
		return run, nil, err
	}
	var val Dataset
	if cfg.ValSize > 0 {
		if val, err = NewThreeCellSplit(gen(), ThreeCellVal, cfg.ValSize); err != nil {
			return run, nil, err
		}
	}
	test, err := NewThreeCellSplit(gen(), ThreeCellTest, cfg.TestSize)
	if err != nil {
		return run, nil, err
	}
	tc := TrainConfig{Steps: cfg.Steps, Batch: cfg.Batch, LR: cfg.LR, MinLR: cfg.MinLR, Warmup: cfg.Warmup,
		WeightDecay: cfg.WeightDecay, Optimizer: "adamw", Loss: "bce", Seed: sr.Seed,
		EvalEvery: cfg.EvalEvery, LogEvery: cfg.LogEvery, Log: &prefixWriter{w: prog.log, prefix: prog.tag}, Metrics: prog}
	last, err := Train(m, train, val, tc)
	if err != nil {
		return run, nil, err
	}
	res := Evaluate(m, test, "bce", cfg.Batch)
	run.Params, run.TestLoss, run.ValLoss, run.ValAcc, run.Curve = NumParams(m), res.Loss, last.Loss, last.Acc, prog.curve
	copy(run.TestBits[:], res.BitAcc)
	run.Test = ThreeCellGroups(run.TestBits)
	run.WallS = time.Since(run.Started).Seconds()
	return run, m, nil
}

// probePE scores the run's PE pe (built for the config mc: the model's,
// or for CrossViT its first branch's) with PESI and returns the patch rows
// (G², D) the heat map draws: the fixed table, or the table on the first
// test image for an image-dependent PE. PEs that add nothing to the tokens
// (none, attention-side, conv) give nil.
func probePE(cfg ThreeCellBenchConfig, run *ThreeCellRun, pe PosEmb[float32], mc Config) ([]float64, error) {
	gen := NewThreeCell(mc.Grid(), mc.Patch, cfg.DataSeed)
	first, _ := ThreeCellTest.Range()
	img := func(k int) *Tensor[float32] {
		x := New[float32](1, 3, mc.Image, mc.Image)
		RenderThreeCell(x.Data, gen.Fixed(first+k), gen.CellPx)
		return x
	}
	t0, err := PETableOf(pe, mc, img(0))
	if err != nil || t0 == nil {
		return nil, err
	}
	t1, err := PETableOf(pe, mc, img(1))
	if err != nil {
		return nil, err
	}
	d, g := mc.Dim, mc.Grid()
	if maxAbsDiff(t0, t1) <= 1e-6 {
		s := PESI(DropCLS(t0, d), d, g, g, ThreeCellPESIDirections)
		run.PESI, run.PESource = &s, "fixed table"
		return DropCLS(t0, d), nil
	}
	var s PESIScores
	for k := range ThreeCellPESIImages {
		tk, err := PETableOf(pe, mc, img(k))
		if err != nil {
			return nil, err
		}
		sk := PESI(DropCLS(tk, d), d, g, g, ThreeCellPESIDirections)
		s.MU += sk.MU / ThreeCellPESIImages
		s.MD += sk.MD / ThreeCellPESIImages
		s.ASU += sk.ASU / ThreeCellPESIImages
	}
	run.PESI = &s
	run.PESource = fmt.Sprintf("image-dependent: mean over test images %d–%d", first, first+ThreeCellPESIImages-1)
	return DropCLS(t0, d), nil
}

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i, v := range a {
		m = max(m, math.Abs(v-b[i]))
	}
	return m
}
