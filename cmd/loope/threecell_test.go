package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loope-go/loope"
)

// TestThreeCellEndToEnd runs a tiny benchmark (2 PEs, 1 seed, 12 steps)
// and checks every output file.
func TestThreeCellEndToEnd(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := threecellMain([]string{"-preset", "tiny", "-pe", "none,learnable", "-seeds", "1", "-steps", "12",
		"-batch", "8", "-train-size", "200", "-val-size", "16", "-test-size", "200", "-out", dir}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, stderr.String())
	}
	// Progress: per-run lines and the overall line with an ETA.
	for _, want := range []string{"[none seed 0] step 12/12", "[learnable seed 0] eval step 12", "overall: 2/2 runs trained, 0 in progress, 100% of the steps, elapsed", " eta "} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(md) != stdout.String() {
		t.Error("results.md differs from the table printed on stdout")
	}
	header := "| PE | Distance | Orientation | Area | Vector Sum | Average | seeds |"
	lines := strings.Split(string(md), "\n")
	i := slices.Index(lines, header)
	if i < 0 || i+4 >= len(lines) {
		t.Fatalf("results.md lacks the table header %q:\n%s", header, md)
	}
	prior := loope.ThreeCellPriorAcc(7)
	wantPrior := fmt.Sprintf("| priors (best constant) | %.1f | %.1f | %.1f | %.1f | %.1f | – |",
		100*prior.Distance, 100*prior.Orientation, 100*prior.Area, 100*prior.VectorSum, 100*prior.Average)
	for k, pe := range []string{"none", "learnable"} {
		row := strings.Split(lines[i+2+k], " | ")
		if len(row) != 7 || row[0] != "| "+pe || row[6] != "1 |" {
			t.Errorf("table row %d = %q, want 7 cells for %s with 1 seed", k, lines[i+2+k], pe)
		}
	}
	if lines[i+4] != wantPrior {
		t.Errorf("priors row %q, want %q", lines[i+4], wantPrior)
	}
	for _, want := range []string{"Exact priors (G = 7", "| none | No PE | 61.9 | 53.1 | 60.1 | 62.6 | 59.4 |",
		"| learnable | Learnable [1] |", "## PESI", "| learnable | "} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q", want)
		}
	}

	// JSON: config, machine, runs with curves, summaries.
	rep, err := loope.ReadThreeCellReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Done || len(rep.Runs) != 2 || len(rep.Summary) != 2 || rep.Grid != 7 || rep.CellPx != 2 {
		t.Fatalf("report: done %v, %d runs, %d summaries, grid %d, cell %d", rep.Done, len(rep.Runs), len(rep.Summary), rep.Grid, rep.CellPx)
	}
	if c := rep.Config; c.Steps != 12 || c.Batch != 8 || !c.Stream || c.Model.Image != 14 || c.Warmup != 0 || c.EvalEvery != 3 {
		t.Errorf("config %+v", c)
	}
	if m := rep.Runs[0].Machine; m.GOMAXPROCS < 1 || m.Threads < 1 || !strings.HasPrefix(m.GoVersion, "go") {
		t.Errorf("machine %+v", m)
	}
	for _, r := range rep.Runs {
		a := r.Test
		b := r.TestBits
		if math.Abs(a.Distance-(b[0]+b[1])/2) > 1e-12 || a.Orientation != b[2] || math.Abs(a.Area-(b[3]+b[4])/2) > 1e-12 ||
			a.VectorSum != b[5] || math.Abs(a.Average-(a.Distance+a.Orientation+a.Area+a.VectorSum)/4) > 1e-12 {
			t.Errorf("%s: groups %+v inconsistent with bits %v", r.PE, a, b)
		}
		var train, val int
		for _, m := range r.Curve {
			switch m.Split {
			case "train":
				train++
			case "val":
				val++
			}
		}
		if train != 12 || val != 4 || r.WallS <= 0 || r.Params <= 0 {
			t.Errorf("%s: %d train and %d val metrics (want 12: log every max(1, 12/10) = 1 step; 4: eval every 12/4 = 3), wall %g, params %d", r.PE, train, val, r.WallS, r.Params)
		}
		if (r.PESI != nil) != (r.PE == "learnable") {
			t.Errorf("%s: PESI %v; want it exactly for the additive PE", r.PE, r.PESI)
		}
	}

	// CSV: header and one row per run, in agreement with the JSON.
	f, err := os.Open(filepath.Join(dir, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || !slices.Equal(rows[0], loope.ThreeCellCSVHeader) {
		t.Fatalf("csv: %d rows, header %v", len(rows), rows[0])
	}
	for k, row := range rows[1:] {
		avg, err := strconv.ParseFloat(row[10], 64)
		if err != nil || row[2] != rep.Runs[k].PE || math.Abs(avg-rep.Runs[k].Test.Average) > 1e-5 {
			t.Errorf("csv row %v does not match run %s average %g", row, rep.Runs[k].PE, rep.Runs[k].Test.Average)
		}
	}

	// Figures: valid PNGs; a heat map only for the additive PE; no temp files left.
	for _, name := range []string{"curve_none_seed0.png", "curve_learnable_seed0.png", "heatmap_learnable.png"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if cfg, err := png.DecodeConfig(f); err != nil || cfg.Width < 100 {
			t.Errorf("%s: %v, width %d", name, err, cfg.Width)
		}
		f.Close()
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"curve_learnable_seed0.png", "curve_none_seed0.png", "curves.png", "heatmap_learnable.png", "results.csv",
		"results.json", "results.md", "runs", "table4.png"}
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	var raw map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"config", "config_hash", "runs", "summary", "priors", "prior_acc", "wall_s", "runs_wall_s"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("results.json lacks %q", k)
		}
	}
}

// TestThreeCellFlagErrors checks that bad flags are usage errors (exit 2)
// with a message naming the problem.
func TestThreeCellFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-pe", "none,nope"}, `unknown positional embedding "nope" (valid: `},
		{[]string{"-pe", "none,none"}, "given twice"},
		{[]string{"-pe", ","}, "no positional embedding"},
		{[]string{"-seeds", "0"}, "-seeds"},
		{[]string{"-seeds", "1,x"}, `seed "x"`},
		{[]string{"-seeds", "3,3"}, "seed 3 given twice"},
		{[]string{"-preset", "huge"}, `unknown preset "huge"`},
		{[]string{"-steps", "0"}, "-steps 0"},
		{[]string{"-steps", "10", "-epochs", "1"}, "do not go together"},
		{[]string{"-epochs", "-1"}, "-epochs -1"},
		{[]string{"-batch", "0"}, "-batch 0"},
		{[]string{"-lr", "0"}, "-lr 0"},
		{[]string{"-min-lr", "1"}, "-min-lr 1"},
		{[]string{"-warmup", "500", "-steps", "100"}, "-warmup 500"},
		{[]string{"-wd", "-1"}, "-wd -1"},
		{[]string{"-stream=false", "-train-size", "9000"}, "-train-size 9000"},
		{[]string{"-val-size", "2000"}, "-val-size 2000"},
		{[]string{"-freqs", "f9"}, `unknown frequency set "f9"`},
		{[]string{"-threads", "-2"}, "-threads -2"},
		{[]string{"-jobs", "2", "-threads", "2"}, "-jobs 2 with -threads 2"},
		{[]string{"-pe", "none,learnable", "-freqs", "f2"}, "-freqs applies to none of -pe none,learnable"},
		{[]string{"-pe", "sin1d", "-loope-act", "relu"}, "-loope-act applies to none of -pe sin1d"},
		{[]string{"-pe", "fourier", "-fourier-dim", "7"}, "-pe fourier"},
		{[]string{"-steps", "x"}, "invalid value"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var stdout, stderr bytes.Buffer
		err := threecellMain(append(tc.args, "-out", ""), &stdout, &stderr)
		if err != errUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: err %v, stderr %q; want errUsage and %q", tc.args, err, stderr.String(), tc.want)
		}
	}
}

// TestThreeCellFreqs checks that -freqs reaches exactly the PEs that read a
// frequency set and is recorded for loope sensitivity.
func TestThreeCellFreqs(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := threecellMain([]string{"-preset", "tiny", "-pe", "none,sin1d", "-freqs", "f2", "-seeds", "1", "-steps", "1", "-batch", "4",
		"-train-size", "8", "-val-size", "0", "-test-size", "8", "-out", dir}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	rep, err := loope.ReadThreeCellReport(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []loope.PEConfig{{Name: "none"}, {Name: "sin1d"}}
	if !slices.Equal(rep.Config.FreqSets, []string{"f2"}) || !slices.Equal(rep.Config.PEOptions, want) {
		t.Errorf("freqs %q, PE options %+v; want [f2] and %+v", rep.Config.FreqSets, rep.Config.PEOptions, want)
	}
	if len(rep.Runs) != 2 || rep.Runs[0].Row() != "none" || rep.Runs[1].Row() != "sin1d/f2" {
		t.Errorf("runs %+v, want none and sin1d/f2", rep.Runs)
	}
	if !strings.Contains(stdout.String(), "sinusoid frequencies f2") || !strings.Contains(stdout.String(), "| sin1d/f2 |") {
		t.Error("results.md does not state the frequency set")
	}
}

// TestThreeCellOutFolder: threecell locks -out (a second benchmark into it
// is refused naming the holder), resumes its own sweep there, refuses to
// replace another sweep's results without -force, and leaves no lock or
// temporary file behind (issue 19 findings 2, 3, 8).
func TestThreeCellOutFolder(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-preset", "tiny", "-pe", "none", "-seeds", "1", "-steps", "1", "-batch", "4",
		"-train-size", "8", "-val-size", "0", "-test-size", "8", "-out", dir}
	run := func(extra ...string) (error, string) {
		var stdout, stderr bytes.Buffer
		err := threecellMain(append(slices.Clone(args), extra...), &stdout, &stderr)
		return err, stderr.String()
	}
	lock, err := loope.LockDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err, msg := run(); err == nil || !strings.Contains(err.Error(), "in use by the run of PID") {
		t.Errorf("locked -out: got %v\n%s", err, msg)
	}
	lock.Unlock()
	if err, msg := run(); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	if err, msg := run(); err != nil || !strings.Contains(msg, "run 0: none seed 0: finished earlier") || !strings.Contains(msg, "0 to train") {
		t.Errorf("the same sweep again: got %v\n%s", err, msg)
	}
	if err, msg := run("-steps", "2"); err == nil || !strings.Contains(err.Error(), "holds results of another sweep") || !strings.Contains(err.Error(), "steps: 1 vs 2") {
		t.Errorf("another sweep's -out: got %v\n%s", err, msg)
	}
	if err, msg := run("-steps", "2", "-force"); err != nil {
		t.Fatalf("-force: %v\n%s", err, msg)
	}
	if rep, err := loope.ReadThreeCellReport(dir); err != nil || rep.Config.Steps != 2 || len(rep.Runs) != 1 {
		t.Errorf("after -force: %v, %+v", err, rep)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") || e.Name() == loope.LockName {
			t.Errorf("left %s in -out", e.Name())
		}
	}
}

// TestThreeCellRefusesOverMemory: a benchmark whose estimated peak memory
// exceeds what is available is refused before any run (issue 19 finding 7).
func TestThreeCellRefusesOverMemory(t *testing.T) {
	if _, _, ok := loope.AvailableMemory(); !ok {
		t.Skip("available memory unknown here")
	}
	var stdout, stderr bytes.Buffer
	err := threecellMain([]string{"-preset", "ti16", "-pe", "none", "-steps", "1", "-batch", "4096", "-out", t.TempDir()}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "this run needs an estimated") || !strings.Contains(err.Error(), "lower -batch 4096") {
		t.Errorf("got %v\n%s", err, stderr.String())
	}
}

// sweepArgs is a Three-Cell sweep of a few seconds: 4 runs.
var sweepArgs = []string{"-preset", "tiny", "-pe", "none,sin1d", "-seeds", "2", "-steps", "40", "-batch", "8",
	"-train-size", "64", "-val-size", "8", "-test-size", "32", "-threads", "1"}

// sweepJSON is DIR/results.json without its timing fields.
func sweepJSON(t *testing.T, dir string) []byte {
	t.Helper()
	r, err := loope.ReadThreeCellReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(r.WithoutTimes(), "", " ")
	return b
}

// TestThreeCellShardProcesses runs one sweep as separate processes of the
// built binary: unsharded; as 2 shards at once into one shared -out; as 3
// shards into their own folders. Merged, both give the unsharded
// results.json (timing fields aside). Then a process killed (SIGKILL) in
// the middle of a run resumes, and its final numbers equal the
// uninterrupted run's.
func TestThreeCellShardProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs 12 short trainings")
	}
	bin := loopeBinary(t)
	dir := t.TempDir()
	var env []string // extra environment of the next start
	start := func(out string, extra ...string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(bin, append(append([]string{"threecell"}, sweepArgs...), append([]string{"-out", out}, extra...)...)...)
		cmd.Env = append(os.Environ(), env...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &stderr
	}
	wait := func(cmd *exec.Cmd, stderr *bytes.Buffer) {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, stderr)
		}
	}
	merge := func(out string, srcs ...string) {
		t.Helper()
		if b, err := exec.Command(bin, append([]string{"threecell", "-merge", "-out", out}, srcs...)...).CombinedOutput(); err != nil {
			t.Fatalf("merge: %v\n%s", err, b)
		}
	}
	whole := filepath.Join(dir, "whole")
	wait(start(whole))
	want := sweepJSON(t, whole)

	shared := filepath.Join(dir, "shared")
	a, ea := start(shared, "-shard", "0/2")
	b, eb := start(shared, "-shard", "1/2")
	wait(a, ea)
	wait(b, eb)
	if !strings.Contains(ea.String(), "shard 0/2: 2 of 4 runs; 2 to train") {
		t.Errorf("shard 0/2 does not say what it owns:\n%s", ea)
	}
	merge(shared)
	if got := sweepJSON(t, shared); !bytes.Equal(got, want) {
		t.Errorf("2 shards merged differ from the unsharded sweep:\n%s\n---\n%s", got, want)
	}

	var parts []string
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("part%d", i))
		env = []string{"SLURM_ARRAY_TASK_ID=" + strconv.Itoa(i), "SLURM_ARRAY_TASK_COUNT=3"}
		wait(start(p))
		parts = append(parts, p)
	}
	env = nil
	three := filepath.Join(dir, "three")
	merge(three, parts...)
	if got := sweepJSON(t, three); !bytes.Equal(got, want) {
		t.Error("3 shards merged differ from the unsharded sweep")
	}

	killed := filepath.Join(dir, "killed")
	cmd, _ := start(killed)
	first := filepath.Join(killed, loope.RunsDir, "0000-none-seed0.json")
	for {
		if _, err := os.Stat(first); err == nil {
			break
		}
		if cmd.ProcessState != nil {
			t.Fatal("the run ended before it could be killed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	ents, _ := os.ReadDir(filepath.Join(killed, loope.RunsDir))
	if len(ents) >= 4 {
		t.Fatalf("killed after %d runs: not in the middle", len(ents))
	}
	cmd, e := start(killed)
	wait(cmd, e)
	if !strings.Contains(e.String(), "run 0: none seed 0: finished earlier") {
		t.Errorf("resume did not skip the finished run:\n%s", e)
	}
	if got := sweepJSON(t, killed); !bytes.Equal(got, want) {
		t.Error("the resumed sweep differs from the uninterrupted one")
	}
}

// TestThreeCellShardFlags: bad shard flags and engine variables are usage
// errors naming the problem; -list prints the runs a shard owns.
func TestThreeCellShardFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-shard", "3/2"}, nil, `-shard "3/2": i = 3`},
		{[]string{"-shard", "-1/2"}, nil, `-shard "-1/2": i = -1`},
		{[]string{"-shard", "a/b"}, nil, `-shard "a/b": want i/n`},
		{[]string{"-shards", "0"}, nil, "-shards 0: need ≥ 1"},
		{[]string{"-shard", "0/2", "-shards", "2"}, nil, "do not go together"},
		{[]string{"-shard", "0/2", "-force"}, nil, "-force with -shard"},
		{nil, map[string]string{"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"}, `SLURM_ARRAY_TASK_ID="x"`},
		{nil, map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "2"}, "shard 2 of 2"},
		{nil, map[string]string{"JOB_COMPLETION_INDEX": "1"}, "give -shards"},
		{[]string{"-ref", "nope"}, nil, `unknown reference model "nope"`},
		{[]string{"-merge", "-pe", "none"}, nil, "-merge takes only -out"},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		var stdout, stderr bytes.Buffer
		err := threecellMain(append(tc.args, "-out", ""), &stdout, &stderr)
		if err != errUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v %v: err %v, stderr %q; want errUsage and %q", tc.args, tc.env, err, stderr.String(), tc.want)
		}
		for k := range tc.env {
			os.Unsetenv(k)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := threecellMain([]string{"-pe", "none,sin1d,loope", "-freqs", "f1,f2", "-seeds", "2", "-shard", "1/2", "-list"}, &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	want := []string{"# index\tpe\tseed\tfreqs", "1\tnone\t1\t-", "3\tsin1d\t1\tf1", "5\tsin1d\t1\tf2", "7\tloope\t1\tf1", "9\tloope\t1\tf2"}
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "# 10 runs; shard 1/2; config hash ") || !slices.Equal(lines[1:], want) {
		t.Errorf("-list:\n%s", stdout.String())
	}
}

// TestThreeCellInitFromErrors: -init-from with a missing file, a file that
// is not safetensors, or a backbone whose width does not match -preset is
// refused with the file named, and -out is not created.
func TestThreeCellInitFromErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.safetensors")
	if err := os.WriteFile(garbage, []byte("not safetensors"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _ := loope.Preset("tiny")
	cfg.Dim, cfg.MLP, cfg.PE = 32, 64, loope.PEConfig{Name: "learnable"}
	m, err := loope.NewViT[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	narrow := filepath.Join(dir, "narrow.safetensors")
	if err := loope.SaveCheckpoint[float32](narrow, m, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(dir, "missing.safetensors"), "missing.safetensors"},
		{garbage, "garbage.safetensors"},
		{narrow, "narrow.safetensors: loope: timm checkpoint does not fit the model: it has dim 32 (model 64)"},
	} {
		out := filepath.Join(dir, "out")
		var stdout, stderr bytes.Buffer
		err := threecellMain([]string{"-pe", "none", "-seeds", "1", "-init-from", tc.file, "-out", out}, &stdout, &stderr)
		if err != errUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: err %v, stderr %q; want errUsage and %q", tc.file, err, stderr.String(), tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: the refused run created -out", tc.file)
		}
	}
}
