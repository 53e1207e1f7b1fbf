package loope

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSweepRuns checks the documented run order and file names: PE, then
// frequency set (only for PEs that read one), then seed.
func TestSweepRuns(t *testing.T) {
	c := ThreeCellBenchConfig{PEs: []string{"none", "sin1d"}, FreqSets: []string{"f1", "f3"}, Seeds: []uint64{0, 7}}
	var got []string
	for i, r := range c.Runs() {
		if r.Index != i {
			t.Fatalf("run %d has index %d", i, r.Index)
		}
		got = append(got, r.FileName())
	}
	want := []string{"0000-none-seed0.json", "0001-none-seed7.json", "0002-sin1d-seed0-f1.json",
		"0003-sin1d-seed7-f1.json", "0004-sin1d-seed0-f3.json", "0005-sin1d-seed7-f3.json"}
	if !slices.Equal(got, want) {
		t.Errorf("runs %v, want %v", got, want)
	}
	if rows := tableRows(c.Runs()); !slices.Equal(rows, []string{"none", "sin1d/f1", "sin1d/f3"}) {
		t.Errorf("rows %v", rows)
	}
	for _, name := range want {
		if !runFileName.MatchString(name) {
			t.Errorf("%s does not match runFileName", name)
		}
	}
}

// TestParseShard: i/n with 0 ≤ i < n, anything else a clear error.
func TestParseShard(t *testing.T) {
	if s, err := ParseShard("1/3"); err != nil || s != (Shard{1, 3}) || !s.Owns(4) || s.Owns(3) {
		t.Errorf("1/3: %v %v", s, err)
	}
	for _, bad := range []string{"3/2", "-1/2", "a/b", "1", "0/0", "2/2", "1/-3", ""} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestShardFromEnv reads the Kubernetes and Slurm variables, and refuses
// out-of-range or non-numeric values naming the variable.
func TestShardFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env    map[string]string
		shards int
		want   Shard
		err    string
	}{
		{nil, 0, Shard{}, ""},
		{map[string]string{"JOB_COMPLETION_INDEX": "2"}, 4, Shard{2, 4}, ""},
		{map[string]string{"JOB_COMPLETION_INDEX": "2"}, 0, Shard{}, "give -shards"},
		{map[string]string{"JOB_COMPLETION_INDEX": "4"}, 4, Shard{}, "shard 4 of 4"},
		{map[string]string{"JOB_COMPLETION_INDEX": "x"}, 4, Shard{}, `JOB_COMPLETION_INDEX="x"`},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3"}, 0, Shard{1, 3}, ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_MAX": "6"}, 0, Shard{1, 3}, ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "1"}, 2, Shard{1, 2}, ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "1"}, 0, Shard{}, "give -shards"},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3"}, 0, Shard{}, "shard 3 of 3"},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "-1", "SLURM_ARRAY_TASK_COUNT": "3"}, 0, Shard{}, `SLURM_ARRAY_TASK_ID="-1"`},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "0"}, 0, Shard{}, "shard 0 of 0"},
		{nil, 3, Shard{}, "without a shard index"},
	} {
		s, _, err := ShardFromEnv(func(k string) string { return tc.env[k] }, tc.shards)
		if tc.err == "" && (err != nil || s != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v shards %d: got %v, %v; want %v, %q", tc.env, tc.shards, s, err, tc.want, tc.err)
		}
	}
}

// tinySweep is a Three-Cell sweep of a few seconds: 3 runs.
func tinySweep(out string) ThreeCellBenchConfig {
	model, _ := Preset("tiny")
	model.Dim, model.Depth, model.Heads, model.MLP = 16, 1, 2, 32
	return ThreeCellBenchConfig{Preset: "tiny", Model: model, PEs: []string{"none", "sin1d"}, FreqSets: []string{"f1", "f2"},
		Seeds: []uint64{3}, Stream: true, TrainSize: 64, ValSize: 8, TestSize: 32, Steps: 6, Batch: 8, LR: 1e-3,
		EvalEvery: 3, LogEvery: 3, Out: out, Threads: 1}
}

// reportJSON is results.json of dir without its timing fields.
func reportJSON(t *testing.T, dir string) []byte {
	t.Helper()
	r, err := ReadThreeCellReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(r.WithoutTimes(), "", " ")
	return b
}

// TestMergeThreeCell: shards written into separate folders and merged give
// the unsharded report; a merge with a run missing, a run twice, a run of
// another sweep or a truncated run file is refused, naming it, and writes
// nothing.
func TestMergeThreeCell(t *testing.T) {
	dir := t.TempDir()
	whole := tinySweep(filepath.Join(dir, "whole"))
	if _, err := RunThreeCellBench(whole, nil); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for i := range 2 {
		c := tinySweep(filepath.Join(dir, "part"+string(rune('0'+i))))
		c.Shard = Shard{i, 2}
		if _, err := RunThreeCellBench(c, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(c.Out, "results.json")); err == nil {
			t.Error("a shard wrote results.json")
		}
		parts = append(parts, c.Out)
	}
	merged := filepath.Join(dir, "merged")
	if _, err := MergeThreeCell(merged, parts, nil); err != nil {
		t.Fatal(err)
	}
	if a, b := reportJSON(t, whole.Out), reportJSON(t, merged); !bytes.Equal(a, b) {
		t.Errorf("merged results.json differs from the unsharded one:\n%s\n---\n%s", a, b)
	}
	for _, f := range []string{"results.md", "results.csv", "curve_sin1d_f2_seed3.png", "heatmap_sin1d_f1.png"} {
		if _, err := os.Stat(filepath.Join(merged, f)); err != nil {
			t.Error(err)
		}
	}

	refuse := func(name, want string, srcs ...string) {
		t.Helper()
		out := filepath.Join(dir, "refused-"+name)
		if _, err := MergeThreeCell(out, srcs, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", name, err, want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: the refused merge created %s", name, out)
		}
	}
	refuse("missing", "1 of 3 runs missing: run 1: sin1d/f1 seed 3", parts[0])
	refuse("twice", "run 0: none seed 3 is in both", parts[0], parts[1], whole.Out)
	other := tinySweep(filepath.Join(dir, "other"))
	other.Steps, other.PEs, other.FreqSets = 7, []string{"none"}, nil
	if _, err := RunThreeCellBench(other, nil); err != nil {
		t.Fatal(err)
	}
	refuse("other", "different sweeps (first difference in config: freq_sets", parts[0], parts[1], other.Out)
	runs := filepath.Join(parts[1], RunsDir)
	ents, _ := os.ReadDir(runs)
	p := filepath.Join(runs, ents[0].Name())
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	refuse("truncated", "not a complete run file", parts[0], parts[1])

	// Resume: the truncated file's run is run again, the others skipped,
	// and the result is the uninterrupted one.
	c := tinySweep(parts[1])
	c.Shard = Shard{1, 2}
	var log bytes.Buffer
	if _, err := RunThreeCellBench(c, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "not a complete run file (") || !strings.Contains(log.String(), "1 to train") {
		t.Errorf("resume log:\n%s", log.String())
	}
	if _, err := MergeThreeCell(merged, parts, nil); err != nil {
		t.Fatal(err)
	}
	if a, b := reportJSON(t, whole.Out), reportJSON(t, merged); !bytes.Equal(a, b) {
		t.Error("the rerun of the truncated run differs from the original")
	}
}
