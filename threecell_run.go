// This file holds the Three-Cell benchmark runner (arXiv 2504.14386,
// Table 4; docs/paper.md §4 and §7): its config, the loop that trains one
// ViT per PE and seed on the same data (threecell_data.go) and scores the
// test split with the group accuracies of docs/paper.md §4.5, its progress
// lines, and the probe of an additive PE's table for PESI and the
// cosine-similarity maps of supplement Fig. 2. The report is built in
// threecell_report.go, the frequency sensitivity in sensitivity.go.

package loope

import (
	"bytes"
	"encoding/json"
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
	Freqs     string   `json:"freqs"`      // frequency set of the sinusoidal PEs: "" (each PE's default) or a FreqSetNames entry
	// PEOptions holds the full PEConfig of some PEs (matched by Name, e.g.
	// LOOPE's squashing); a PE without an entry uses PEConfig{Name}. Freqs
	// is applied on top to every PE that reads a frequency set.
	PEOptions []PEConfig `json:"pe_options,omitempty"`

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
	Threads int    `json:"threads"` // kernel goroutines (0: GOMAXPROCS)
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
	if c.Freqs != "" && !slices.Contains(FreqSetNames, c.Freqs) {
		bad("-freqs: unknown frequency set %q (valid: %s)", c.Freqs, strings.Join(FreqSetNames, ", "))
	} else if c.Freqs != "" && !slices.ContainsFunc(c.PEs, PEReadsFreqs) {
		bad("-freqs %s: none of the PEs reads a frequency set (those that do: loope, %s)", c.Freqs, strings.Join(FixedPENames, ", "))
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
	if c.Threads < 0 {
		bad("-threads %d: need ≥ 0", c.Threads)
	}
	return errors.Join(errs...)
}

// validateRuns reports through bad what is wrong with the runs: the PEs
// (known, once each, their options buildable on the model), the seeds and
// the model shape.
func (c ThreeCellBenchConfig) validateRuns(bad func(format string, a ...any)) {
	if len(c.PEs) == 0 {
		bad("-pe: no positional embedding given")
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
			m.PE = c.peConfig(pe) // build each PE once, so its option errors come before any training
			if _, err := newPosEmb[float32](m, rand.New(rand.NewPCG(0, 0))); err != nil {
				bad("-pe %s: %v", pe, err)
			}
		}
	}
}

// PEReadsFreqs reports whether the PE name reads PEConfig.Freqs: the fixed
// sinusoids and LOOPE. It is the one place that knows; cmd/loope's -freqs
// check reads it too.
func PEReadsFreqs(name string) bool { return name == "loope" || slices.Contains(FixedPENames, name) }

// peConfig returns the PEConfig of one run.
func (c ThreeCellBenchConfig) peConfig(name string) PEConfig {
	pc := PEConfig{Name: name}
	for _, o := range c.PEOptions {
		if o.Name == name {
			pc = o
		}
	}
	if c.Freqs != "" && PEReadsFreqs(name) {
		pc.Freqs = c.Freqs
	}
	return pc
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

// ThreeCellRun is the outcome of training one PE with one seed.
type ThreeCellRun struct {
	PE       string       `json:"pe"`
	Seed     uint64       `json:"seed"`
	Params   int          `json:"params"`    // trainable scalars
	Test     ThreeCellAcc `json:"test"`      // Table 4 columns on the test split, fractions
	TestBits [6]float64   `json:"test_bits"` // per-bit test accuracy
	TestLoss float64      `json:"test_loss"` // mean BCE on the test split
	ValLoss  float64      `json:"val_loss"`  // at the last step (NaN-free: 0 without validation)
	ValAcc   float64      `json:"val_acc"`   // mean bit accuracy at the last step
	WallS    float64      `json:"wall_s"`    // training + evaluation time
	Curve    []Metric     `json:"curve"`     // the metrics Train emitted
	PESI     *PESIScores  `json:"pesi,omitempty"`
	// PESource says which table PESI and the heat map used: "fixed" for a
	// table independent of the image, or "mean over test images …" for an
	// image-dependent PE; empty if the PE adds no table.
	PESource string `json:"pe_source,omitempty"`
	CurvePNG string `json:"curve_png,omitempty"`
}

// ThreeCellSummary aggregates the runs of one PE over seeds.
type ThreeCellSummary struct {
	PE   string       `json:"pe"`
	N    int          `json:"n"`    // seeds
	Mean ThreeCellAcc `json:"mean"` // fractions
	Std  ThreeCellAcc `json:"std"`  // sample standard deviation (n−1); 0 for one seed
	PESI *PESIScores  `json:"pesi,omitempty"`
	// HeatmapPNG is the cosine-similarity figure of the first seed's PE.
	HeatmapPNG string `json:"heatmap_png,omitempty"`
	PESource   string `json:"pe_source,omitempty"`
}

// ThreeCellReport is everything a benchmark produced (results.json).
type ThreeCellReport struct {
	Config   ThreeCellBenchConfig `json:"config"`
	Machine  MachineInfo          `json:"machine"`
	Grid     int                  `json:"grid"`      // Three-Cell grid G
	CellPx   int                  `json:"cell_px"`   // pixels per cell
	Priors   [6]float64           `json:"priors"`    // exact P(bit = 1), ThreeCellPriors
	PriorAcc ThreeCellAcc         `json:"prior_acc"` // best constant predictor
	Runs     []ThreeCellRun       `json:"runs"`
	Summary  []ThreeCellSummary   `json:"summary"`
	Started  time.Time            `json:"started"`
	WallS    float64              `json:"wall_s"`
	Done     bool                 `json:"done"` // false while runs are still missing
}

// RunThreeCellBench trains one ViT per PE and seed on the same Three-Cell
// data, scores each on the test split (fixed indices [9000, 10000)) and,
// if cfg.Out is set, writes results.md, results.csv, results.json, a
// training-curve PNG per run and a cosine-similarity PNG per additive PE
// into it (rewritten after every run, so a stopped benchmark keeps what it
// finished). Progress lines, with an ETA over the whole benchmark, go to
// log.
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
	if cfg.Out != "" {
		if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
			return nil, fmt.Errorf("loope: %w", err)
		}
	}
	gen, err := NewThreeCellFor(cfg.Model, cfg.DataSeed)
	if err != nil {
		return nil, err
	}
	cfg.Model.PE = PEConfig{}
	rep := &ThreeCellReport{Config: cfg, Machine: machineInfo(), Grid: gen.Grid(), CellPx: gen.CellPx,
		Priors: ThreeCellPriors(gen.Grid()), PriorAcc: ThreeCellPriorAcc(gen.Grid()), Started: time.Now()}
	total := len(cfg.PEs) * len(cfg.Seeds)
	for _, pe := range cfg.PEs {
		for si, seed := range cfg.Seeds {
			i := len(rep.Runs)
			prog := &benchProgress{log: log, run: i, runs: total, steps: cfg.Steps, start: rep.Started,
				tag: fmt.Sprintf("[%s seed %d] ", pe, seed)}
			run, m, err := trainThreeCellRun(cfg, pe, seed, prog)
			if err != nil {
				return rep, fmt.Errorf("loope: run %d/%d (%s, seed %d): %w", i+1, total, pe, seed, err)
			}
			if cfg.Out != "" {
				run.CurvePNG = fmt.Sprintf("curve_%s_seed%d.png", pe, seed)
				title := fmt.Sprintf("%s, seed %d (%s, %d steps × %d)", pe, seed, cfg.Preset, cfg.Steps, cfg.Batch)
				if err := PlotTrainingCurves(filepath.Join(cfg.Out, run.CurvePNG), title, run.Curve); err != nil {
					return rep, err
				}
			}
			if err := probePE(cfg, rep, &run, m, si == 0); err != nil {
				return rep, err
			}
			rep.Runs = append(rep.Runs, run)
			rep.WallS = time.Since(rep.Started).Seconds()
			rep.Summary = summariseThreeCell(cfg.PEs, rep.Runs, cfg.Out != "")
			fmt.Fprintf(log, "run %d/%d done: %s seed %d test %v (%.0fs)\n", i+1, total, pe, seed, run.Test, run.WallS)
			if err := rep.write(); err != nil {
				return rep, err
			}
		}
	}
	rep.Done = true
	rep.WallS = time.Since(rep.Started).Seconds()
	return rep, rep.write()
}

// trainThreeCellRun trains and tests one PE with one seed.
func trainThreeCellRun(cfg ThreeCellBenchConfig, pe string, seed uint64, prog *benchProgress) (ThreeCellRun, *ViT[float32], error) {
	start := time.Now()
	mc := cfg.Model
	mc.PE = cfg.peConfig(pe)
	m, err := NewViT[float32](mc, seed)
	if err != nil {
		return ThreeCellRun{}, nil, err
	}
	// One generator per dataset: a ThreeCell holds scratch state.
	var train *ThreeCellData
	if cfg.Stream {
		train, err = NewThreeCellStream(NewThreeCell(m.Cfg.Grid(), m.Cfg.Patch, cfg.DataSeed), cfg.TrainSize)
	} else {
		train, err = NewThreeCellSplit(NewThreeCell(m.Cfg.Grid(), m.Cfg.Patch, cfg.DataSeed), ThreeCellTrain, cfg.TrainSize)
	}
	if err != nil {
		return ThreeCellRun{}, nil, err
	}
	var val Dataset
	if cfg.ValSize > 0 {
		if val, err = NewThreeCellSplit(NewThreeCell(m.Cfg.Grid(), m.Cfg.Patch, cfg.DataSeed), ThreeCellVal, cfg.ValSize); err != nil {
			return ThreeCellRun{}, nil, err
		}
	}
	test, err := NewThreeCellSplit(NewThreeCell(m.Cfg.Grid(), m.Cfg.Patch, cfg.DataSeed), ThreeCellTest, cfg.TestSize)
	if err != nil {
		return ThreeCellRun{}, nil, err
	}
	if err := train.CheckModel(m.Cfg); err != nil {
		return ThreeCellRun{}, nil, err
	}
	tc := TrainConfig{Steps: cfg.Steps, Batch: cfg.Batch, LR: cfg.LR, MinLR: cfg.MinLR, Warmup: cfg.Warmup,
		WeightDecay: cfg.WeightDecay, Optimizer: "adamw", Loss: "bce", Seed: seed,
		EvalEvery: cfg.EvalEvery, LogEvery: cfg.LogEvery, Log: &prefixWriter{w: prog.log, prefix: prog.tag}, Metrics: prog}
	last, err := Train(m, train, val, tc)
	if err != nil {
		return ThreeCellRun{}, nil, err
	}
	res := Evaluate(m, test, "bce", cfg.Batch)
	run := ThreeCellRun{PE: pe, Seed: seed, Params: m.NumParams(), TestLoss: res.Loss,
		ValLoss: last.Loss, ValAcc: last.Acc, Curve: prog.curve}
	copy(run.TestBits[:], res.BitAcc)
	run.Test = ThreeCellGroups(run.TestBits)
	run.WallS = time.Since(start).Seconds()
	return run, m, nil
}

// benchProgress receives Train's metrics (JSON lines), keeps them as the
// run's curve and prints the overall progress line after each train line.
type benchProgress struct {
	log              io.Writer
	tag              string
	run, runs, steps int
	start            time.Time
	buf              []byte
	curve            []Metric
}

func (p *benchProgress) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		var m Metric
		if err := json.Unmarshal(p.buf[:i], &m); err != nil {
			return len(b), fmt.Errorf("loope: metrics line %q: %w", p.buf[:i], err)
		}
		p.buf = p.buf[i+1:]
		p.curve = append(p.curve, m)
		if m.Split != "train" {
			continue
		}
		done := float64(p.run*p.steps + m.Step)
		el := time.Since(p.start)
		eta := time.Duration(float64(el) * (float64(p.runs*p.steps) - done) / done)
		fmt.Fprintf(p.log, "overall run %d/%d step %d/%d elapsed %s eta %s\n",
			p.run+1, p.runs, m.Step, p.steps, el.Round(time.Second), eta.Round(time.Second))
	}
}

// prefixWriter prefixes every line written through it.
type prefixWriter struct {
	w      io.Writer
	prefix string
	mid    bool // inside a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
		}
		out = append(out, c)
		p.mid = c != '\n'
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// probePE scores the run's PE table with PESI and, for the first seed,
// draws its cosine-similarity maps. PEs that add nothing to the tokens
// (none, attention-side, conv) are skipped.
func probePE(cfg ThreeCellBenchConfig, rep *ThreeCellReport, run *ThreeCellRun, m *ViT[float32], heat bool) error {
	gen := NewThreeCell(m.Cfg.Grid(), m.Cfg.Patch, cfg.DataSeed)
	first, _ := ThreeCellTest.Range()
	img := func(k int) *Tensor[float32] {
		x := New[float32](1, 3, m.Cfg.Image, m.Cfg.Image)
		RenderThreeCell(x.Data, gen.Fixed(first+k), gen.CellPx)
		return x
	}
	t0, err := PETable(m, img(0))
	if err != nil || t0 == nil {
		return err
	}
	t1, err := PETable(m, img(1))
	if err != nil {
		return err
	}
	d, g := m.Cfg.Dim, m.Cfg.Grid()
	dependent := maxAbsDiff(t0, t1) > 1e-6
	if !dependent {
		s := PESI(DropCLS(t0, d), d, g, g, ThreeCellPESIDirections)
		run.PESI, run.PESource = &s, "fixed table"
	} else {
		var s PESIScores
		for k := range ThreeCellPESIImages {
			tk, err := PETable(m, img(k))
			if err != nil {
				return err
			}
			sk := PESI(DropCLS(tk, d), d, g, g, ThreeCellPESIDirections)
			s.MU += sk.MU / ThreeCellPESIImages
			s.MD += sk.MD / ThreeCellPESIImages
			s.ASU += sk.ASU / ThreeCellPESIImages
		}
		run.PESI = &s
		run.PESource = fmt.Sprintf("image-dependent: mean over test images %d–%d", first, first+ThreeCellPESIImages-1)
	}
	if !heat || cfg.Out == "" {
		return nil
	}
	src := "fixed table"
	if dependent {
		src = fmt.Sprintf("table on test image %d", first)
	}
	title := fmt.Sprintf("%s (seed %d, %s): cosine similarity of the PE rows", run.PE, run.Seed, src)
	name := fmt.Sprintf("heatmap_%s.png", run.PE)
	return PlotPEHeatmaps(filepath.Join(cfg.Out, name), title, DropCLS(t0, d), d, g)
}

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i, v := range a {
		m = max(m, math.Abs(v-b[i]))
	}
	return m
}
