// This file holds the Three-Cell benchmark runner (arXiv 2504.14386,
// Table 4; docs/paper.md §4 and §7): a Dataset adapter over the
// generator (fixed split or fresh images every epoch), the loop that trains
// one ViT per PE and seed on the same data and scores the test split with
// the group accuracies of docs/paper.md §4.5, the reports (Markdown, CSV, JSON,
// figures), the probe of an additive PE's table for PESI and the
// cosine-similarity maps of supplement Fig. 2, and the frequency
// sensitivity S_j, S̄ of the revised paper (docs/paper.md §9).

package loope

import (
	"bytes"
	"encoding/csv"
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
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat"
)

// ThreeCellData is a Dataset of Three-Cell images rendered for a ViT:
// either N images of the fixed dataset from index First on, or, with
// Stream, N fresh images per epoch (image i of epoch e is Gen.Epoch(e, i)).
// Targets are the six label bits. It implements EpochSetter, so Train moves
// a stream to new images every epoch. Like ThreeCell it is not safe for
// concurrent use.
type ThreeCellData struct {
	Gen    *ThreeCell
	First  int  // first fixed-dataset index (fixed data only)
	N      int  // images (per epoch when streaming)
	Stream bool // fresh images every epoch
	epoch  int
}

// NewThreeCellSplit returns the first n images of a split of gen's fixed
// dataset (n = 0: the whole split).
func NewThreeCellSplit(gen *ThreeCell, split ThreeCellSplit, n int) (*ThreeCellData, error) {
	first, size := split.Range()
	if n == 0 {
		n = size
	}
	if n < 0 || n > size {
		return nil, fmt.Errorf("loope: Three-Cell %s split has %d images, asked for %d", split, size, n)
	}
	return &ThreeCellData{Gen: gen, First: first, N: n}, nil
}

// NewThreeCellStream returns a stream of n fresh images per epoch.
func NewThreeCellStream(gen *ThreeCell, n int) (*ThreeCellData, error) {
	if n <= 0 || uint64(n) > 1<<32 {
		return nil, fmt.Errorf("loope: Three-Cell stream needs 0 < images per epoch ≤ 2³², got %d", n)
	}
	return &ThreeCellData{Gen: gen, N: n, Stream: true}, nil
}

// NewThreeCellFor returns the Three-Cell generator whose images match cfg:
// one grid cell per patch, so the grid is cfg.Grid() and a cell is
// cfg.Patch pixels (presets: small 28 px = 14 × 2, tiny 14 px = 7 × 2,
// ti16 224 px = 14 × 16, the paper's images).
func NewThreeCellFor(cfg Config, seed uint64) (*ThreeCell, error) {
	if cfg.Channels != 3 {
		return nil, fmt.Errorf("loope: Three-Cell images are RGB, the model has %d channels", cfg.Channels)
	}
	if cfg.Patch <= 0 || cfg.Image%cfg.Patch != 0 || cfg.Image/cfg.Patch < 3 {
		return nil, fmt.Errorf("loope: Three-Cell needs image = grid·cell with grid ≥ 3 and cell = patch; image %d, patch %d",
			cfg.Image, cfg.Patch)
	}
	return NewThreeCell(cfg.Image/cfg.Patch, cfg.Patch, seed), nil
}

// CheckModel reports whether d's images fit the model cfg: RGB, side
// cfg.Image = grid·cell, and one cell per patch (cell = cfg.Patch), so the
// ViT's patch grid is the Three-Cell grid.
func (d *ThreeCellData) CheckModel(cfg Config) error {
	g, cell := d.Gen.Grid(), d.Gen.CellPx
	switch {
	case cfg.Channels != 3:
		return fmt.Errorf("loope: Three-Cell images are RGB, the model has %d channels", cfg.Channels)
	case d.Gen.Side() != cfg.Image:
		return fmt.Errorf("loope: Three-Cell images are %d px (grid %d × cell %d), the model takes %d px", d.Gen.Side(), g, cell, cfg.Image)
	case cell != cfg.Patch:
		return fmt.Errorf("loope: Three-Cell cell %d px ≠ patch %d px: the %d×%d patch grid is not the %d×%d cell grid",
			cell, cfg.Patch, cfg.Grid(), cfg.Grid(), g, g)
	}
	return nil
}

// Len returns the number of images (per epoch for a stream).
func (d *ThreeCellData) Len() int { return d.N }

// SetEpoch selects the images of epoch e of a stream; fixed data ignores it.
func (d *ThreeCellData) SetEpoch(e int) { d.epoch = e }

// Sample returns sample i (of the current epoch for a stream).
func (d *ThreeCellData) Sample(i int) ThreeCellSample {
	if i < 0 || i >= d.N {
		panic(fmt.Sprintf("loope: ThreeCellData.Sample: index %d outside [0, %d)", i, d.N))
	}
	if d.Stream {
		return d.Gen.Epoch(d.epoch, i)
	}
	return d.Gen.Fixed(d.First + i)
}

// Example writes image i (3, H, W) into img and its six label bits into
// target (at least 6 values).
func (d *ThreeCellData) Example(i int, img, target []float32) {
	s := d.Sample(i)
	RenderThreeCell(img, s, d.Gen.CellPx)
	for k, v := range s.Labels {
		target[k] = float32(v)
	}
}

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

// PETable returns the additive positional table m's PE adds to the tokens
// of image img (1, C, H, W), as (N, D) float64 rows with the CLS row first:
// AddInput applied to zero tokens. It returns nil if the PE adds nothing
// there (none, RoPE, relative biases, CPVT), and an error if AddInput is
// not additive, i.e. AddInput(x) − x differs from AddInput(0) for random x.
func PETable[T Float](m *ViT[T], img *Tensor[T]) ([]float64, error) {
	c := m.Cfg
	if len(img.Shape) != 4 || img.Shape[0] != 1 {
		panic(fmt.Sprintf("loope: PETable: image shape %v, want (1, %d, %d, %d)", img.Shape, c.Channels, c.Image, c.Image))
	}
	n, d := c.Tokens(), c.Dim
	tp := &Tape[T]{NoGrad: true}
	zero := New[T](1, n, d)
	out := m.PE.AddInput(tp, zero, img)
	if out == zero {
		return nil, nil
	}
	table := make([]float64, n*d)
	nonzero := false
	for i, v := range out.Data {
		table[i] = float64(v)
		nonzero = nonzero || v != 0
	}
	if !nonzero {
		return nil, nil
	}
	x := New[T](1, n, d)
	for i := range x.Data {
		x.Data[i] = T(math.Sin(float64(i)))
	}
	tp.Reset()
	out = m.PE.AddInput(tp, x, img)
	var scale float64
	for _, v := range table {
		scale = max(scale, math.Abs(v))
	}
	for i, v := range out.Data {
		if diff := math.Abs(float64(v) - float64(x.Data[i]) - table[i]); diff > 1e-4*(1+scale) {
			return nil, fmt.Errorf("loope: PE %s: AddInput is not additive (token %d, dim %d off by %g)", m.PE.Name(), i/d, i%d, diff)
		}
	}
	return table, nil
}

// summariseThreeCell computes the per-PE summaries of runs; figures says
// whether heat maps were written.
func summariseThreeCell(pes []string, runs []ThreeCellRun, figures bool) []ThreeCellSummary {
	var out []ThreeCellSummary
	for _, pe := range pes {
		var cols [5][]float64
		var pesi []PESIScores
		s := ThreeCellSummary{PE: pe}
		for _, r := range runs {
			if r.PE != pe {
				continue
			}
			a := r.Test
			for k, v := range []float64{a.Distance, a.Orientation, a.Area, a.VectorSum, a.Average} {
				cols[k] = append(cols[k], v)
			}
			if r.PESI != nil {
				pesi = append(pesi, *r.PESI)
				s.PESource = r.PESource
			}
			s.N++
		}
		if s.N == 0 {
			continue
		}
		var mean, std [5]float64
		for k, c := range cols {
			mean[k], std[k] = meanStd(c)
		}
		s.Mean = ThreeCellAcc{mean[0], mean[1], mean[2], mean[3], mean[4]}
		s.Std = ThreeCellAcc{std[0], std[1], std[2], std[3], std[4]}
		if len(pesi) > 0 {
			var p PESIScores
			for _, q := range pesi {
				p.MU += q.MU / float64(len(pesi))
				p.MD += q.MD / float64(len(pesi))
				p.ASU += q.ASU / float64(len(pesi))
			}
			s.PESI = &p
			if figures {
				s.HeatmapPNG = "heatmap_" + pe + ".png"
			}
		}
		out = append(out, s)
	}
	return out
}

// meanStd returns the mean and the sample standard deviation (n−1) of xs;
// the deviation is 0 for fewer than two values.
func meanStd(xs []float64) (mean, std float64) {
	if len(xs) < 2 {
		if len(xs) == 1 {
			return xs[0], 0
		}
		return 0, 0
	}
	return stat.MeanStdDev(xs, nil)
}

// FormatMeanStd formats fractions xs as a percentage "mean ± std" with one
// decimal (sample std, n−1), or just the mean for a single value, or "–"
// for none.
func FormatMeanStd(xs []float64) string {
	switch len(xs) {
	case 0:
		return "–"
	case 1:
		return fmt.Sprintf("%.1f", 100*xs[0])
	}
	m, s := stat.MeanStdDev(xs, nil)
	return fmt.Sprintf("%.1f ± %.1f", 100*m, 100*s)
}

// paperTable4 holds Table 4 of arXiv 2504.14386 (docs/paper.md §7: Distance,
// Orientation, Area, Vector Sum, Average in %, ViT at 224 px, G = 14),
// keyed by our PE registry name, with the paper's row label.
var paperTable4 = map[string]struct {
	label string
	acc   [5]float64
}{
	"none":         {"No PE", [5]float64{61.9, 53.1, 60.1, 62.6, 59.4}},
	"learnable":    {"Learnable [1]", [5]float64{85.6, 89.3, 84.0, 92.2, 87.8}},
	"sin1d":        {"1D Sinusoid [1]", [5]float64{90.9, 94.9, 91.3, 95.3, 93.1}},
	"cpvt":         {"CPVT [6]", [5]float64{72.8, 63.2, 72.6, 75.0, 70.9}},
	"rpe":          {"RPE [29]", [5]float64{73.7, 62.6, 71.0, 73.9, 70.1}},
	"fourier":      {"Fourier [15]", [5]float64{93.1, 96.7, 92.4, 93.9, 94.0}},
	"sincos2d-sum": {"2D Sinusoid [15]", [5]float64{83.6, 60.0, 72.6, 92.3, 77.1}},
	"hilbert":      {"Hilbert [11]", [5]float64{88.8, 95.0, 89.9, 93.8, 91.9}},
	"loope":        {"LOOPE (Ours)", [5]float64{91.5, 95.8, 93.3, 94.6, 93.7}},
}

// threeCellColumns names the Table 4 columns in order.
var threeCellColumns = [5]string{"Distance", "Orientation", "Area", "Vector Sum", "Average"}

func accCols(a ThreeCellAcc) [5]float64 {
	return [5]float64{a.Distance, a.Orientation, a.Area, a.VectorSum, a.Average}
}

// Markdown returns the report as Markdown: the Table-4-style results with
// mean ± std over seeds and the priors row, the exact priors, the paper's
// values for the same PEs, and the PESI of the additive PEs.
func (r *ThreeCellReport) Markdown() string {
	c := r.Config
	var b strings.Builder
	fmt.Fprintf(&b, "# Three-Cell benchmark\n\n")
	data := fmt.Sprintf("fixed split, first %d training images", c.TrainSize)
	if c.Stream {
		data = fmt.Sprintf("streaming, %d fresh images per epoch", c.TrainSize)
	}
	freqs := c.Freqs
	if freqs == "" {
		freqs = "default"
	}
	fmt.Fprintf(&b, "Preset %s: %d px images, grid %d×%d, cell %d px = patch, D %d, depth %d, heads %d, MLP %d. "+
		"%d steps × batch %d, AdamW lr %g → %g cosine, warm-up %d, weight decay %g; %s; data seed %d; "+
		"validation %d images; sinusoid frequencies %s; seeds %s.\n\n",
		c.Preset, c.Model.Image, r.Grid, r.Grid, r.CellPx, c.Model.Dim, c.Model.Depth, c.Model.Heads, c.Model.MLP,
		c.Steps, c.Batch, c.LR, c.MinLR, c.Warmup, c.WeightDecay, data, c.DataSeed, c.ValSize, freqs, strings.Trim(fmt.Sprint(c.Seeds), "[]"))
	nTest := c.TestSize
	if nTest == 0 {
		nTest = ThreeCellTestN
	}
	first, _ := ThreeCellTest.Range()
	fmt.Fprintf(&b, "Test accuracy (%%) on %d test images (fixed indices [%d, %d)), mean ± sample std over seeds. "+
		"Distance = mean of bits 0–1, Orientation = bit 2, Area = mean of bits 3–4, Vector Sum = bit 5, "+
		"Average = mean of the four (docs/paper.md §4.5).\n\n", nTest, first, first+nTest)
	fmt.Fprintf(&b, "| PE | %s | seeds |\n|---|---|---|---|---|---|---|\n", strings.Join(threeCellColumns[:], " | "))
	for _, s := range r.Summary {
		fmt.Fprintf(&b, "| %s |", s.PE)
		for k := range threeCellColumns {
			var xs []float64
			for _, run := range r.Runs {
				if run.PE == s.PE {
					xs = append(xs, accCols(run.Test)[k])
				}
			}
			fmt.Fprintf(&b, " %s |", FormatMeanStd(xs))
		}
		fmt.Fprintf(&b, " %d |\n", s.N)
	}
	fmt.Fprintf(&b, "| priors (best constant) |")
	for _, v := range accCols(r.PriorAcc) {
		fmt.Fprintf(&b, " %.1f |", 100*v)
	}
	fmt.Fprintf(&b, " – |\n\n")
	p := r.Priors
	fmt.Fprintf(&b, "Exact priors (G = %d, enumerated): P(bit = 1) = %.4f %.4f %.4f %.4f %.4f %.4f.\n\n",
		r.Grid, p[0], p[1], p[2], p[3], p[4], p[5])

	var ref []string
	for _, s := range r.Summary {
		if row, ok := paperTable4[s.PE]; ok {
			a := row.acc
			ref = append(ref, fmt.Sprintf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f |", s.PE, row.label, a[0], a[1], a[2], a[3], a[4]))
		}
	}
	if len(ref) > 0 {
		fmt.Fprintf(&b, "## Paper Table 4, for reference\n\narXiv 2504.14386 Table 4 (docs/paper.md §7): 224 px images, G = 14, "+
			"an ImageNet-pretrained DeiT-Base fine-tuned 150 epochs. Not the same model or budget as above.\n\n")
		fmt.Fprintf(&b, "| PE | paper row | %s |\n|---|---|---|---|---|---|---|\n", strings.Join(threeCellColumns[:], " | "))
		fmt.Fprintf(&b, "%s\n\n", strings.Join(ref, "\n"))
	}

	var pesi []string
	for _, s := range r.Summary {
		if s.PESI != nil {
			pesi = append(pesi, fmt.Sprintf("| %s | %.4f | %.4f | %.4f | %s |", s.PE, s.PESI.MU, s.PESI.MD, s.PESI.ASU, s.PESource))
		}
	}
	if len(pesi) > 0 {
		fmt.Fprintf(&b, "## PESI of the trained additive PEs\n\nM_U, M_D (N = %d), A_SU (docs/paper.md §5) of each PE's "+
			"%d×%d patch table at D = %d, CLS row excluded, mean over seeds. PEs that add no table are left out; for PEs that also act in "+
			"attention (e.g. irpe-ctx) this is their additive table only.\n\n",
			ThreeCellPESIDirections, r.Grid, r.Grid, c.Model.Dim)
		fmt.Fprintf(&b, "| PE | M_U | M_D | A_SU | table |\n|---|---|---|---|---|\n%s\n\n", strings.Join(pesi, "\n"))
	}

	fmt.Fprintf(&b, "## Files\n\n- results.csv, results.json: per-run numbers\n")
	for _, run := range r.Runs {
		if run.CurvePNG != "" {
			fmt.Fprintf(&b, "- %s: training loss and accuracy (train and validation) of %s, seed %d\n", run.CurvePNG, run.PE, run.Seed)
		}
	}
	for _, s := range r.Summary {
		if s.HeatmapPNG != "" {
			fmt.Fprintf(&b, "- %s: cosine similarity of the %s PE row of each of the nine centre cells of supplement Fig. 2 "+
				"(corners, edge midpoints, centre) to every patch's row (first seed)\n", s.HeatmapPNG, s.PE)
		}
	}
	if !r.Done {
		fmt.Fprintf(&b, "\n(incomplete: %d of %d runs)\n", len(r.Runs), len(c.PEs)*len(c.Seeds))
	}
	fmt.Fprintf(&b, "\nWall time %.0f s; %s %s/%s, GOMAXPROCS %d, %d threads.\n",
		r.WallS, r.Machine.GoVersion, r.Machine.GOOS, r.Machine.GOARCH, r.Machine.GOMAXPROCS, r.Machine.Threads)
	return b.String()
}

// ThreeCellCSVHeader is the header of results.csv, one row per run.
var ThreeCellCSVHeader = []string{"pe", "seed", "distance", "orientation", "area", "vector_sum", "average",
	"bit0", "bit1", "bit2", "bit3", "bit4", "bit5", "test_loss", "val_loss", "val_acc", "params", "steps", "wall_s",
	"pesi_mu", "pesi_md", "pesi_asu"}

// WriteCSV writes one row per run (accuracies as fractions).
func (r *ThreeCellReport) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(ThreeCellCSVHeader)
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, run := range r.Runs {
		row := []string{run.PE, strconv.FormatUint(run.Seed, 10)}
		for _, v := range accCols(run.Test) {
			row = append(row, f(v))
		}
		for _, v := range run.TestBits {
			row = append(row, f(v))
		}
		row = append(row, f(run.TestLoss), f(run.ValLoss), f(run.ValAcc), strconv.Itoa(run.Params),
			strconv.Itoa(r.Config.Steps), f(run.WallS))
		if run.PESI != nil {
			row = append(row, f(run.PESI.MU), f(run.PESI.MD), f(run.PESI.ASU))
		} else {
			row = append(row, "", "", "")
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// write saves results.md, results.csv and results.json into Config.Out.
func (r *ThreeCellReport) write() error {
	out := r.Config.Out
	if out == "" {
		return nil
	}
	if err := writeAtomic(filepath.Join(out, "results.md"), func(w io.Writer) error {
		_, err := io.WriteString(w, r.Markdown())
		return err
	}); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(out, "results.csv"), r.WriteCSV); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(out, "results.json"), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	})
}

// ReadThreeCellReport reads a results.json, or DIR/results.json if path is
// a folder.
func ReadThreeCellReport(path string) (*ThreeCellReport, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "results.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loope: %w", err)
	}
	var r ThreeCellReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("loope: %s: %w", path, err)
	}
	return &r, nil
}

// FreqSensitivityRow is one PE's frequency sensitivity (docs/paper.md §9).
type FreqSensitivityRow struct {
	PE   string
	O    [4]float64 // output (accuracy, %) with f1…f4; NaN where missing
	S    [4]float64 // S_j = |O_j − O_1| / Δf_j for j = 2…4 (index j−1); NaN where missing, S[0] unused (0)
	SBar float64    // Σ_j S_j Δf_j / Σ_j Δf_j over the j present
}

// FreqDelta returns Δf_j = ‖f_j − f_1‖₂ / ‖f_1‖₂ for j = 1…4 (index j−1)
// of the frequency sets FreqSet builds for dimension dim (docs/paper.md §9,
// first D/2 entries).
func FreqDelta(dim int) ([4]float64, error) {
	var d [4]float64
	f1, err := FreqSet("f1", dim)
	if err != nil {
		return d, err
	}
	for j, name := range []string{"f1", "f2", "f3", "f4"} {
		fj, err := FreqSet(name, dim)
		if err != nil {
			return d, err
		}
		var num, den float64
		for i, v := range f1 {
			num += (fj[i] - v) * (fj[i] - v)
			den += v * v
		}
		d[j] = math.Sqrt(num / den)
	}
	return d, nil
}

// ThreeCellMetricNames are the columns FreqSensitivity can use.
var ThreeCellMetricNames = []string{"average", "distance", "orientation", "area", "vecsum"}

// FreqSensitivity computes S_j and S̄ (docs/paper.md §9) per PE from reports
// of the same model trained with the frequency sets f1…f4 (one report per
// set; f1 is required), using the mean test accuracy (%) of metric (one of
// ThreeCellMetricNames). A PE appears if it is in the f1 report and at
// least one other. It also returns Δf_j.
func FreqSensitivity(reps []*ThreeCellReport, metric string) ([]FreqSensitivityRow, [4]float64, error) {
	col := slices.Index(ThreeCellMetricNames, metric)
	if col < 0 {
		return nil, [4]float64{}, fmt.Errorf("loope: unknown metric %q (valid: %s)", metric, strings.Join(ThreeCellMetricNames, ", "))
	}
	col = [5]int{4, 0, 1, 2, 3}[col] // index into accCols
	var byFreq [4]*ThreeCellReport
	for _, r := range reps {
		j := slices.Index([]string{"f1", "f2", "f3", "f4"}, r.Config.Freqs)
		if j < 0 {
			return nil, [4]float64{}, fmt.Errorf("loope: a report has frequency set %q; sensitivity needs f1…f4", r.Config.Freqs)
		}
		if byFreq[j] != nil {
			return nil, [4]float64{}, fmt.Errorf("loope: two reports with frequency set %s", r.Config.Freqs)
		}
		byFreq[j] = r
	}
	if byFreq[0] == nil {
		return nil, [4]float64{}, errors.New("loope: sensitivity needs the f1 (baseline) report")
	}
	base := byFreq[0]
	for _, r := range byFreq {
		if r != nil && (r.Config.Model.Dim != base.Config.Model.Dim || r.Grid != base.Grid) {
			return nil, [4]float64{}, fmt.Errorf("loope: reports differ in model dim or grid (%d, %d vs %d, %d)",
				r.Config.Model.Dim, r.Grid, base.Config.Model.Dim, base.Grid)
		}
	}
	delta, err := FreqDelta(base.Config.Model.Dim)
	if err != nil {
		return nil, delta, err
	}
	var rows []FreqSensitivityRow
	for _, s := range base.Summary {
		row := FreqSensitivityRow{PE: s.PE}
		n := 0
		for j, r := range byFreq {
			row.O[j], row.S[j] = math.NaN(), math.NaN()
			if r == nil {
				continue
			}
			for _, t := range r.Summary {
				if t.PE == s.PE {
					row.O[j] = 100 * accCols(t.Mean)[col]
					n++
				}
			}
		}
		if n < 2 {
			continue
		}
		row.S[0] = 0
		var num, den float64
		for j := 1; j < 4; j++ {
			if math.IsNaN(row.O[j]) {
				continue
			}
			row.S[j] = math.Abs(row.O[j]-row.O[0]) / delta[j]
			num += row.S[j] * delta[j]
			den += delta[j]
		}
		row.SBar = num / den
		rows = append(rows, row)
	}
	return rows, delta, nil
}
