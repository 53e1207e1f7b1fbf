// This file holds the Three-Cell benchmark as a sweep that can be spread
// over processes and machines: the fixed, numbered list of its runs, the
// shard a process owns (-shard i/n, or a Kubernetes Indexed Job's or Slurm
// job array's variables), the per-run result files under OUT/runs/ with the
// hash of the sweep's config, and the checks that reading them back makes:
// one sweep, no run missing, none twice, none truncated.
//
// Run order (the index): for each PE of -pe in order, for each frequency
// set of -freqs (only for PEs that read one; one run otherwise), for each
// seed of -seeds; then for each reference model of -ref, for each seed.

package loope

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SweepRun is one run of a Three-Cell sweep.
type SweepRun struct {
	Index int    `json:"index"`           // position in ThreeCellBenchConfig.Runs
	PE    string `json:"pe"`              // PE name, or the reference model's name
	Ref   bool   `json:"ref,omitempty"`   // PE names a reference model (-ref), not a PE
	Freqs string `json:"freqs,omitempty"` // frequency set ("" : the PE's default)
	Seed  uint64 `json:"seed"`
}

// Row returns the results-table row the run belongs to: the PE, with its
// frequency set if one was chosen ("loope/f2").
func (r SweepRun) Row() string {
	if r.Freqs == "" {
		return r.PE
	}
	return r.PE + "/" + r.Freqs
}

// FileName returns the run's file under runs/:
// "<index>-<pe>-seed<s>[-<freqs>].json", the index zero-padded to 4 digits
// so that a listing sorts in run order.
func (r SweepRun) FileName() string {
	f := ""
	if r.Freqs != "" {
		f = "-" + r.Freqs
	}
	return fmt.Sprintf("%04d-%s-seed%d%s.json", r.Index, r.PE, r.Seed, f)
}

func (r SweepRun) String() string {
	return fmt.Sprintf("run %d: %s seed %d", r.Index, r.Row(), r.Seed)
}

// Runs returns the sweep's runs in index order (see the file comment).
func (c ThreeCellBenchConfig) Runs() []SweepRun {
	var runs []SweepRun
	add := func(pe string, ref bool, freqs string) {
		for _, s := range c.Seeds {
			runs = append(runs, SweepRun{Index: len(runs), PE: pe, Ref: ref, Freqs: freqs, Seed: s})
		}
	}
	for _, pe := range c.PEs {
		if len(c.FreqSets) == 0 || !PEReadsFreqs(pe) {
			add(pe, false, "")
			continue
		}
		for _, f := range c.FreqSets {
			add(pe, false, f)
		}
	}
	for _, ref := range c.Refs {
		add(ref, true, "")
	}
	return runs
}

// tableRows returns the table rows of the runs in index order, each once.
func tableRows(runs []SweepRun) []string {
	var rows []string
	for _, r := range runs {
		if !slices.Contains(rows, r.Row()) {
			rows = append(rows, r.Row())
		}
	}
	return rows
}

// Hash returns the SHA-256 (hex) of the config's JSON without the
// settings that do not change a run's numbers (-out, -threads, -log-every):
// two run files belong to the same sweep iff their hashes are equal.
//
// NOTE(spec): the thread count is left out so that shards on machines with
// different core counts can be merged. The same seed and thread count
// give the same bits; other thread counts agree to float32 rounding.
func (c ThreeCellBenchConfig) Hash() string {
	sum := sha256.Sum256([]byte(mustJSON(c.sweepKey())))
	return hex.EncodeToString(sum[:])
}

// sweepKey is c without what Hash leaves out; the model's PE is set per
// run, so it is left out too, and so is InitFrom's path (its digest stays).
func (c ThreeCellBenchConfig) sweepKey() ThreeCellBenchConfig {
	c.Out, c.Threads, c.LogEvery, c.Model.PE, c.InitFrom = "", 0, 0, PEConfig{}, ""
	return c
}

// Shard is the part of a sweep one process runs: the runs whose index ≡ I
// (mod N). The zero value and {0, 1} are the whole sweep.
type Shard struct{ I, N int }

// Owns reports whether the shard runs index.
func (s Shard) Owns(index int) bool { return s.N <= 1 || index%s.N == s.I }

func (s Shard) String() string {
	if s.N <= 1 {
		return "the whole sweep"
	}
	return fmt.Sprintf("shard %d/%d", s.I, s.N)
}

// ParseShard reads "i/n" with 0 ≤ i < n.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(is))
	n, err2 := strconv.Atoi(strings.TrimSpace(ns))
	switch {
	case !ok || err1 != nil || err2 != nil:
		return Shard{}, fmt.Errorf("%q: want i/n, e.g. 0/4", s)
	case n < 1 || n > MaxShards:
		return Shard{}, fmt.Errorf("%q: n = %d, need 1 ≤ n ≤ %d", s, n, MaxShards)
	case i < 0 || i >= n:
		return Shard{}, fmt.Errorf("%q: i = %d, need 0 ≤ i < n = %d", s, i, n)
	}
	return Shard{i, n}, nil
}

// MaxShards bounds the shard count.
const MaxShards = 1 << 20

// ShardFromEnv returns the shard the batch engine assigned through getenv
// (os.Getenv), with shards the -shards count (0: not given):
//
//   - Kubernetes Indexed Job: JOB_COMPLETION_INDEX is i; n is -shards
//     (the Job's completions), which must then be given.
//   - Slurm job array: SLURM_ARRAY_TASK_ID is the task id; n is
//     SLURM_ARRAY_TASK_COUNT, else SLURM_ARRAY_TASK_MAX − SLURM_ARRAY_TASK_MIN + 1,
//     else -shards; i is the task id − SLURM_ARRAY_TASK_MIN (0 if unset).
//
// from names the variables read ("" with ok false when none is set, and
// then the whole sweep, or an error if -shards > 1 was given alone).
func ShardFromEnv(getenv func(string) string, shards int) (s Shard, from string, err error) {
	num := func(name string) (int, bool, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxShards {
			return 0, true, fmt.Errorf("%s=%q: want an integer in [0, %d]", name, getenv(name), MaxShards)
		}
		return n, true, nil
	}
	if shards < 0 || shards > MaxShards {
		return Shard{}, "", fmt.Errorf("-shards %d: need 1 ≤ n ≤ %d", shards, MaxShards)
	}
	if i, ok, err := num("JOB_COMPLETION_INDEX"); err != nil || ok {
		if err != nil {
			return Shard{}, "", err
		}
		if shards == 0 {
			return Shard{}, "", errors.New("JOB_COMPLETION_INDEX is set (Kubernetes Indexed Job) but not -shards: give -shards equal to the Job's completions")
		}
		return checkShard(Shard{i, shards}, "JOB_COMPLETION_INDEX and -shards")
	}
	id, ok, err := num("SLURM_ARRAY_TASK_ID")
	if err != nil {
		return Shard{}, "", err
	}
	if !ok {
		if shards > 1 {
			return Shard{}, "", fmt.Errorf("-shards %d without a shard index: give -shard i/%d, or run it as a Kubernetes Indexed Job or Slurm job array", shards, shards)
		}
		return Shard{}, "", nil
	}
	lo, _, err := num("SLURM_ARRAY_TASK_MIN")
	if err != nil {
		return Shard{}, "", err
	}
	count, hasCount, err := num("SLURM_ARRAY_TASK_COUNT")
	if err != nil {
		return Shard{}, "", err
	}
	hi, hasMax, err := num("SLURM_ARRAY_TASK_MAX")
	if err != nil {
		return Shard{}, "", err
	}
	switch {
	case shards > 0:
		count = shards
	case hasCount:
	case hasMax:
		count = hi - lo + 1
	default:
		return Shard{}, "", errors.New("SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MAX: give -shards")
	}
	return checkShard(Shard{id - lo, count}, "SLURM_ARRAY_TASK_ID, _MIN and _COUNT/_MAX (or -shards)")
}

func checkShard(s Shard, from string) (Shard, string, error) {
	if s.N < 1 || s.I < 0 || s.I >= s.N {
		return Shard{}, "", fmt.Errorf("%s give shard %d of %d: need 0 ≤ index < count", from, s.I, s.N)
	}
	return s, from, nil
}

// RunsDir is the folder under -out that holds one file per finished run.
const RunsDir = "runs"

// runFileFormat marks a per-run file.
const runFileFormat = "loope-threecell-run/1"

// threeCellRunFile is the JSON of one finished run (OUT/runs/*.json).
type threeCellRunFile struct {
	Format     string               `json:"format"`
	ConfigHash string               `json:"config_hash"` // ThreeCellBenchConfig.Hash
	Config     ThreeCellBenchConfig `json:"config"`
	Run        ThreeCellRun         `json:"run"`
	// PETable is the patch rows (G², D) of the run's additive PE table, as
	// the heat map drew it (on test image 0 for an image-dependent PE);
	// nil if the PE adds none.
	PETable []float64 `json:"pe_table,omitempty"`
}

// writeRunFile saves a finished run atomically into out/runs/.
func writeRunFile(out string, cfg ThreeCellBenchConfig, run ThreeCellRun, table []float64) error {
	dir := filepath.Join(out, RunsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("loope: %w", err)
	}
	f := threeCellRunFile{Format: runFileFormat, ConfigHash: cfg.Hash(), Config: cfg, Run: run, PETable: table}
	return writeAtomic(filepath.Join(dir, run.SweepRun.FileName()), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(f)
	})
}

// readRunFile reads and checks one run file: its format, that its config
// hashes to what it claims, that its run is the one its config lists at
// that index under that file name, and that its numbers are whole.
func readRunFile(path string) (*threeCellRunFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loope: %w", err)
	}
	var f threeCellRunFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("loope: %s: not a complete run file (%v)", path, err)
	}
	runs := f.Config.Runs()
	i := f.Run.Index
	switch {
	case f.Format != runFileFormat:
		return nil, fmt.Errorf("loope: %s: format %q, want %q", path, f.Format, runFileFormat)
	case f.Config.Hash() != f.ConfigHash:
		return nil, fmt.Errorf("loope: %s: its config does not hash to its config_hash (edited or corrupt)", path)
	case i < 0 || i >= len(runs) || runs[i] != f.Run.SweepRun:
		return nil, fmt.Errorf("loope: %s: run %+v is not run %d of its sweep", path, f.Run.SweepRun, i)
	case filepath.Base(path) != f.Run.SweepRun.FileName():
		return nil, fmt.Errorf("loope: %s: holds %s, whose file is %s", path, f.Run.SweepRun, f.Run.SweepRun.FileName())
	case f.Run.Test.Average < 0 || f.Run.Test.Average > 1:
		return nil, fmt.Errorf("loope: %s: average accuracy %g outside [0, 1]", path, f.Run.Test.Average)
	}
	return &f, nil
}

// runFileName matches the names FileName gives.
var runFileName = regexp.MustCompile(`^[0-9]{4,}-.+-seed[0-9]+(-[a-z0-9]+)?\.json$`)

// readRunDir reads every run file of dir/runs (or of dir itself if it is
// a runs folder): the valid ones, and one error per file that is not.
func readRunDir(dir string) ([]*threeCellRunFile, []string, []error) {
	sub := filepath.Join(dir, RunsDir)
	if fi, err := os.Stat(sub); err == nil && fi.IsDir() {
		dir = sub
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, []error{fmt.Errorf("loope: %w", err)}
	}
	var files []*threeCellRunFile
	var paths []string
	var errs []error
	for _, e := range ents {
		if !runFileName.MatchString(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := readRunFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files, paths = append(files, f), append(paths, p)
	}
	return files, paths, errs
}

// firstConfigDiff names the first setting in which two configs differ.
func firstConfigDiff(a, b ThreeCellBenchConfig) string {
	var ma, mb map[string]any
	json.Unmarshal([]byte(mustJSON(a.sweepKey())), &ma)
	json.Unmarshal([]byte(mustJSON(b.sweepKey())), &mb)
	keys := make([]string, 0, len(ma))
	for k := range ma {
		keys = append(keys, k)
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if ja, jb := mustJSON(ma[k]), mustJSON(mb[k]); ja != jb {
			return fmt.Sprintf("%s: %s vs %s", k, ja, jb)
		}
	}
	return "no setting (the files disagree on the hash only)"
}

// MergeThreeCell collects the run files of srcs (folders holding a runs/
// folder, or runs folders) and, if together they are exactly the runs of
// one sweep, writes its report into out (results.md/.csv/.json and the
// figures) as an unsharded run would, and returns it. Any of: a corrupt or
// truncated file, a file of another sweep (naming the first differing
// setting), a run found twice, or a run missing (naming them) is an error,
// and then nothing is written. Writing takes out's lock (LockDir); log
// receives its messages.
func MergeThreeCell(out string, srcs []string, log io.Writer) (*ThreeCellReport, error) {
	var files []*threeCellRunFile
	var paths []string
	var errs []error
	for _, src := range srcs {
		f, p, e := readRunDir(src)
		files, paths, errs = append(files, f...), append(paths, p...), append(errs, e...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("loope: no run files in %s", strings.Join(srcs, ", "))
	}
	cfg := files[0].Config
	byIndex := make(map[int]string)
	var runs []ThreeCellRun
	tables := map[int][]float64{}
	for k, f := range files {
		if f.ConfigHash != files[0].ConfigHash {
			return nil, fmt.Errorf("loope: %s and %s are from different sweeps (first difference in config: %s)",
				paths[0], paths[k], firstConfigDiff(cfg, f.Config))
		}
		if p, dup := byIndex[f.Run.Index]; dup {
			if filepath.Clean(p) == filepath.Clean(paths[k]) {
				continue // the same file reached through two sources
			}
			return nil, fmt.Errorf("loope: %s is in both %s and %s", f.Run.SweepRun, p, paths[k])
		}
		byIndex[f.Run.Index] = paths[k]
		runs, tables[f.Run.Index] = append(runs, f.Run), f.PETable
	}
	var missing []string
	for _, r := range cfg.Runs() {
		if _, ok := byIndex[r.Index]; !ok {
			missing = append(missing, r.String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("loope: %d of %d runs missing: %s", len(missing), len(cfg.Runs()), strings.Join(missing, "; "))
	}
	cfg.Out = out
	rep := buildThreeCellReport(cfg, runs)
	lock, err := LockDir(out, log)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	return rep, rep.writeAll(tables)
}

// ThreeCellOutputs are the files a Three-Cell benchmark writes into -out
// (names and glob patterns relative to it).
var ThreeCellOutputs = []string{"results.md", "results.csv", "results.json", "curve_*.png", "heatmap_*.png",
	"table4.png", "curves.png", RunsDir + "/*.json"}

// ForeignResults returns why c.Out holds results of another sweep, or ""
// if it holds none (empty, absent, or only this sweep's files, which a
// rerun resumes): a results.json of another config (or unreadable, or
// results.md/.csv without one), or a run file of another sweep.
func (c ThreeCellBenchConfig) ForeignResults() string {
	if c.Out == "" {
		return ""
	}
	hash := c.Hash()
	rj := filepath.Join(c.Out, "results.json")
	if rep, err := ReadThreeCellReport(rj); err == nil {
		if rep.Hash != hash {
			return fmt.Sprintf("%s is another sweep's (first difference in config: %s)", rj, firstConfigDiff(rep.Config, c))
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("%s is not this sweep's: %v", rj, err)
	} else if used := UsedBy(c.Out, "results.md", "results.csv"); len(used) > 0 {
		return fmt.Sprintf("%s holds %s without a results.json", c.Out, strings.Join(used, ", "))
	}
	files, paths, _ := readRunDir(filepath.Join(c.Out, RunsDir))
	for k, f := range files {
		if f.ConfigHash != hash {
			return fmt.Sprintf("%s is another sweep's (first difference in config: %s)", paths[k], firstConfigDiff(f.Config, c))
		}
	}
	return ""
}

// WithoutTimes returns a copy of r whose timing fields (dates, wall times,
// images/s and elapsed times of the curves, the machine of each run) and
// output folder are zero: what is left is the same for a sweep run in one
// process and the same sweep merged from shards.
func (r *ThreeCellReport) WithoutTimes() *ThreeCellReport {
	c := *r
	c.Config.Out, c.Config.Threads = "", 0
	c.Started, c.WallS, c.RunsWallS = time.Time{}, 0, 0
	c.Runs = slices.Clone(r.Runs)
	for i := range c.Runs {
		run := &c.Runs[i]
		run.Started, run.WallS, run.Machine = time.Time{}, 0, MachineInfo{}
		run.Curve = slices.Clone(run.Curve)
		for k := range run.Curve {
			run.Curve[k].ImagesPS, run.Curve[k].ElapsedS = 0, 0
		}
	}
	return &c
}
