package loope

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// resumeCfg is the small model and run of the resume tests.
func resumeCfg() (Config, TrainConfig) {
	cfg, _ := Preset("tiny")
	cfg.Dim, cfg.Heads, cfg.MLP, cfg.Depth, cfg.Classes = 16, 2, 32, 2, 2
	tc := TrainConfig{Steps: 24, Batch: 8, LR: 1e-3, MinLR: 1e-4, Warmup: 3, WeightDecay: 0.05,
		Loss: "ce", Seed: 9, EvalEvery: 8, CheckpointEvery: 4}
	return cfg, tc
}

// slowSpot delays each example so a subprocess can be killed mid-run.
type slowSpot struct{ brightSpot }

func (d slowSpot) Example(i int, img, target []float32) {
	time.Sleep(2 * time.Millisecond)
	d.brightSpot.Example(i, img, target)
}

// TestTrainStopsOnNaN: a non-finite loss stops training with an error that
// names the step.
func TestTrainStopsOnNaN(t *testing.T) {
	cfg, tc := resumeCfg()
	tc.Steps = 3
	m, _ := NewViT[float32](cfg, 1)
	m.HeadB.Data[0] = float32(nan())
	ds := brightSpot{n: 40, side: cfg.Image, ch: cfg.Channels}
	_, err := Train(m, ds, nil, tc)
	if err == nil || !strings.Contains(err.Error(), "non-finite loss") || !strings.Contains(err.Error(), "step 1") {
		t.Errorf("got %v, want a non-finite loss error at step 1", err)
	}
}

func nan() float64 { var z float64; return z / z }

// TestTrainDeadline: a run past its deadline stops after the current step,
// evaluates, writes its checkpoints and reports the steps it did.
func TestTrainDeadline(t *testing.T) {
	cfg, tc := resumeCfg()
	ds := brightSpot{n: 40, side: cfg.Image, ch: cfg.Channels}
	m, err := NewViT[float32](cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	var metrics bytes.Buffer
	tc.Steps, tc.Deadline, tc.CheckpointDir, tc.Metrics = 1000, time.Now(), t.TempDir(), &metrics
	res, err := Train(m, ds, ds, tc)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 1 || res.Examples != ds.n {
		t.Fatalf("stopped after %d steps with %d validation examples, want 1 and %d", res.Steps, res.Examples, ds.n)
	}
	for _, f := range []string{"last.safetensors", "best.safetensors"} {
		if _, err := os.Stat(filepath.Join(tc.CheckpointDir, f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(metrics.String(), `"step":1,"split":"val"`) {
		t.Errorf("no validation at the stop:\n%s", metrics.String())
	}
}

func TestFitSteps(t *testing.T) {
	for _, c := range []struct {
		done, ran     int
		elapsed, left time.Duration
		want          int
	}{
		{100, 100, 100 * time.Second, 1000 * time.Second, 1090}, // 1 s a step: 0.99·1000 more
		{150, 50, 100 * time.Second, 200 * time.Second, 249},    // resumed at 100: this run's 2 s a step
		{10, 10, time.Second, -time.Second, 11},                 // past the deadline: one more step
		{10, 0, 0, time.Minute, 11},                             // no pace yet
		{1, 1, time.Nanosecond, 1000 * time.Hour, 1 + 1e9},      // capped
	} {
		if got := fitSteps(c.done, c.ran, c.elapsed, c.left); got != c.want {
			t.Errorf("fitSteps(%d, %d, %v, %v) = %d, want %d", c.done, c.ran, c.elapsed, c.left, got, c.want)
		}
	}
}

// TestTrainFitDeadline: a run planned for far more steps than fit before
// its deadline re-plans at its evaluations and ends near it. Timings are
// not asserted; only that the plan shrank and the run ended.
func TestTrainFitDeadline(t *testing.T) {
	cfg, tc := resumeCfg()
	ds := slowSpot{brightSpot{n: 40, side: cfg.Image, ch: cfg.Channels}}
	m, err := NewViT[float32](cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	tc.Steps, tc.EvalEvery, tc.CheckpointEvery, tc.Log = 100000, 5, 0, &log
	tc.Deadline, tc.FitDeadline = time.Now().Add(time.Second), true
	res, err := Train(m, ds, ds, tc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "re-plan at step 5:") || res.Steps >= 10000 {
		t.Fatalf("ran %d steps; log:\n%s", res.Steps, log.String())
	}
	tc.Deadline = time.Time{}
	if err := tc.Validate(); err == nil || !strings.Contains(err.Error(), "FitDeadline") {
		t.Errorf("FitDeadline without Deadline: %v", err)
	}
}

// poisonAfter is brightSpot whose images turn to NaN after calls Example
// calls (the counter is shared, so it counts across Train's batches).
type poisonAfter struct {
	brightSpot
	calls *int
	after int
}

func (d poisonAfter) Example(i int, img, target []float32) {
	d.brightSpot.Example(i, img, target)
	if *d.calls++; *d.calls > d.after {
		img[0] = float32(nan())
	}
}

// TestNaNKeepsLastCheckpoint: a run whose data turns to NaN at step 7
// stops with an error naming that step; last.safetensors still holds the
// step-4 checkpoint, loads with finite weights, and resuming from it on
// clean data ends bit for bit where the clean run ends.
func TestNaNKeepsLastCheckpoint(t *testing.T) {
	cfg, tc := resumeCfg()
	tc.Steps, tc.EvalEvery = 12, 0
	ds := brightSpot{n: 40, side: cfg.Image, ch: cfg.Channels}

	clean := t.TempDir()
	m, _ := NewViT[float32](cfg, 4)
	tc.CheckpointDir = clean
	if _, err := Train(m, ds, nil, tc); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	calls := 0
	bad := poisonAfter{ds, &calls, 6 * tc.Batch} // steps 1–6 clean, step 7 sees NaN
	m1, _ := NewViT[float32](cfg, 4)
	tc.CheckpointDir = dir
	_, err := Train(m1, bad, nil, tc)
	if err == nil || !strings.Contains(err.Error(), "non-finite loss") || !strings.Contains(err.Error(), "step 7") {
		t.Fatalf("got %v, want a non-finite loss error at step 7", err)
	}
	ckpt := filepath.Join(dir, "last.safetensors")
	m2, f, err := LoadCheckpoint[float32](ckpt)
	if err != nil {
		t.Fatalf("last checkpoint after the NaN: %v", err)
	}
	var st trainState
	if err := json.Unmarshal([]byte(f.Metadata["train_state"]), &st); err != nil || st.Step != 4 {
		t.Fatalf("last checkpoint holds step %d (%v), want 4", st.Step, err)
	}
	if err := checkFinite(m2.Params(), false); err != nil {
		t.Fatalf("last checkpoint: %v", err)
	}

	m3, _ := NewViT[float32](cfg, 77)
	tc.Resume = ckpt
	if _, err := Train(m3, ds, nil, tc); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(clean, "last.safetensors"))
	got, _ := os.ReadFile(ckpt)
	if !bytes.Equal(got, want) {
		t.Error("resuming after the NaN stop does not end where the clean run ends")
	}
}

// TestNaNValidation: NaN validation images stop training with an error at
// the first evaluation, and no best checkpoint is written from them.
func TestNaNValidation(t *testing.T) {
	cfg, tc := resumeCfg()
	tc.Steps, tc.EvalEvery, tc.CheckpointDir = 4, 2, t.TempDir()
	ds := brightSpot{n: 40, side: cfg.Image, ch: cfg.Channels}
	calls := 0
	m, _ := NewViT[float32](cfg, 1)
	_, err := Train(m, ds, poisonAfter{ds, &calls, 0}, tc)
	if err == nil || !strings.Contains(err.Error(), "non-finite validation loss") || !strings.Contains(err.Error(), "step 2") {
		t.Fatalf("got %v, want a non-finite validation loss error at step 2", err)
	}
	if _, err := os.Stat(filepath.Join(tc.CheckpointDir, "best.safetensors")); err == nil {
		t.Error("best.safetensors written from a NaN evaluation")
	}
}
