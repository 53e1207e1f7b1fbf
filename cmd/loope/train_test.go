package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loope-go/loope"
)

// writeFolder writes a tiny image-folder data set: dir/{train,test}/{a,b}/,
// n PNGs of side px each, class a dark, class b bright.
func writeFolder(t *testing.T, dir string, n, side int) {
	t.Helper()
	for _, split := range []string{"train", "test"} {
		for k, class := range []string{"a", "b"} {
			sub := filepath.Join(dir, split, class)
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				img := image.NewGray(image.Rect(0, 0, side, side))
				for p := range img.Pix {
					img.Pix[p] = uint8(40 + 150*k + (p*7+i*13)%50)
				}
				f, err := os.Create(filepath.Join(sub, fmt.Sprintf("%d.png", i)))
				if err != nil {
					t.Fatal(err)
				}
				if err := png.Encode(f, img); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
		}
	}
}

// TestTrainInitFrom fine-tunes the committed timm-named checkpoint
// (testdata/timm_tiny.safetensors: patch 16, 64 px, width 32, 2 heads)
// with a swapped PE on a folder data set, at the checkpoint's size, at
// -image 48 (pos_embed resampled) and with -preset small (28 px, patch 2:
// patch embedding and pos_embed resampled); bad combinations are clear errors.
func TestTrainInitFrom(t *testing.T) {
	dir := t.TempDir()
	writeFolder(t, filepath.Join(dir, "data"), 6, 20)
	ckpt := filepath.Join("..", "..", "testdata", "timm_tiny.safetensors")
	for _, tc := range []struct {
		name         string
		args         []string
		image, patch int
	}{
		{"sin1d", []string{"-pe", "sin1d"}, 64, 16},
		{"learnable48", []string{"-pe", "learnable", "-image", "48"}, 48, 16},
		{"small-loope", []string{"-preset", "small", "-pe", "loope"}, 28, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name)
			args := append([]string{"-data", "folder:" + filepath.Join(dir, "data"), "-init-from", ckpt, "-heads", "2",
				"-steps", "3", "-batch", "4", "-warmup", "1", "-val-frac", "0.25", "-out", out}, tc.args...)
			var err error
			msg := captureStderr(t, func() { err = runTrain(args) })
			if err != nil {
				t.Fatalf("%v\n%s", err, msg)
			}
			if !strings.Contains(msg, fmt.Sprintf("init from %s: %dx%d image, patch %d, dim 32, depth 2, heads 2; new: ", ckpt, tc.image, tc.image, tc.patch)) ||
				!strings.Contains(msg, "head.weight head.bias") {
				t.Errorf("stderr lacks the init line:\n%s", msg)
			}
			raw, err := os.ReadFile(filepath.Join(out, "result.json"))
			if err != nil {
				t.Fatal(err)
			}
			var res struct {
				TestLoss float64 `json:"test_loss"`
				Image    int     `json:"image"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatal(err)
			}
			if res.Image != tc.image || !(res.TestLoss > 0 && res.TestLoss < 100) {
				t.Errorf("result %s: want image %d and a finite test loss", raw, tc.image)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-preset", "small"}, "give the head count"},
		{nil, "give the head count"},
		{[]string{"-heads", "2", "-image", "50"}, "not divisible by patch 16"},
		{[]string{"-heads", "3"}, "not divisible by heads 3"},
	} {
		args := append([]string{"-data", "folder:" + filepath.Join(dir, "data"), "-init-from", ckpt, "-steps", "1",
			"-out", filepath.Join(dir, "bad")}, tc.args...)
		var err error
		msg := captureStderr(t, func() { err = runTrain(args) })
		if err == nil || !strings.Contains(err.Error()+msg, tc.want) { // usage errors say why on stderr
			t.Errorf("%v: got error %v (stderr %q), want one containing %q", tc.args, err, msg, tc.want)
		}
	}
}

// runTimedTrain runs train with args (a -time budget) and decodes the
// result.json it writes into out into res; it returns the stderr. A budget
// too short for one step on a loaded machine skips the test: seen under
// heavy load (tests and two training runs at nice 19), where the timing
// alone took a minute.
func runTimedTrain(t *testing.T, args []string, out string, res any) string {
	t.Helper()
	var err error
	msg := captureStderr(t, func() { err = runTrain(args) })
	if err != nil && strings.Contains(err.Error(), "too short") {
		t.Skipf("machine too loaded to fit the budget: %v", err)
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	raw, err := os.ReadFile(filepath.Join(out, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, res); err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestTrainTimeBudget runs `train -time`: the step count comes from a timing
// on this machine, is printed and saved, and the run does not run away
// from its budget (a loose bound: the machine may be shared).
func TestTrainTimeBudget(t *testing.T) {
	dir := t.TempDir()
	writeFolder(t, filepath.Join(dir, "data"), 6, 14)
	out := filepath.Join(dir, "run")
	args := []string{"-data", "folder:" + filepath.Join(dir, "data"), "-preset", "tiny", "-batch", "4", "-val-frac", "0.25",
		"-time", "3s", "-out", out}
	var res struct {
		Steps  int     `json:"steps"`
		Budget float64 `json:"time_budget_s"`
		Wall   float64 `json:"wall_s"`
	}
	msg := runTimedTrain(t, args, out, &res)
	if res.Steps < 1 || res.Budget != 3 || !strings.Contains(msg, fmt.Sprintf("→ %d steps", res.Steps)) {
		t.Errorf("steps %d budget %v; stderr:\n%s", res.Steps, res.Budget, msg)
	}
	if res.Wall > 30 { // only a sanity bound: CI machines may be shared and slow
		t.Errorf("a 3 s budget took %.1f s", res.Wall)
	}
}

// TestTrainTimeResume: -resume with -time extends the run: the budget's
// steps come after the checkpoint's step.
func TestTrainTimeResume(t *testing.T) {
	dir := t.TempDir()
	writeFolder(t, filepath.Join(dir, "data"), 6, 14)
	out := filepath.Join(dir, "run")
	var err error
	if msg := captureStderr(t, func() { err = runTrain(trainArgs(dir, out)) }); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	var res struct {
		Steps int `json:"steps"`
	}
	msg := runTimedTrain(t, append(trainArgs(dir, out, "-time", "3s"), "-resume", out), out, &res)
	if !strings.Contains(msg, "resuming after step 2") || !strings.Contains(msg, "resumed from") || res.Steps <= 2 {
		t.Errorf("planned %d steps; stderr:\n%s", res.Steps, msg)
	}
}

// TestTrainPEOptions: train takes the PE option flags like every command
// with -pe: the option reaches the checkpoint's config, and an option of
// another PE is a usage error.
func TestTrainPEOptions(t *testing.T) {
	dir := t.TempDir()
	writeFolder(t, filepath.Join(dir, "data"), 6, 14)
	out := filepath.Join(dir, "run")
	var err error
	if msg := captureStderr(t, func() { err = runTrain(trainArgs(dir, out, "-pe", "loope", "-loope-act", "relu")) }); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	f, err := loope.ReadSafeFile(filepath.Join(out, "last.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loope.ConfigFromSafe(f)
	if err != nil || cfg.PE.Name != "loope" || cfg.PE.LoopeAct != "relu" {
		t.Errorf("checkpoint PE config %+v (%v), want loope with relu", cfg.PE, err)
	}
	msg := captureStderr(t, func() {
		err = runTrain(trainArgs(dir, filepath.Join(dir, "other"), "-pe", "sin1d", "-loope-act", "relu"))
	})
	if err != errUsage || !strings.Contains(msg, "-loope-act does not apply to -pe sin1d") {
		t.Errorf("an option of another PE: got %v\n%s", err, msg)
	}
}

// trainArgs are the flags of a 2-step tiny run on the folder data set at
// dir/data into out (issue 19 tests).
func trainArgs(dir, out string, extra ...string) []string {
	return append([]string{"-data", "folder:" + filepath.Join(dir, "data"), "-preset", "tiny", "-steps", "2", "-batch", "4",
		"-warmup", "1", "-val-frac", "0.25", "-out", out}, extra...)
}

// TestTrainResumeChecksFlags: `-resume` with changed flags is refused with
// the list of what differs (issue 19 finding 5), `-resume DIR -out OTHER`
// is refused before any work (finding 6), and the same flags with more
// steps resume.
func TestTrainResumeChecksFlags(t *testing.T) {
	dir := t.TempDir()
	writeFolder(t, filepath.Join(dir, "data"), 6, 14)
	out := filepath.Join(dir, "run")
	var err error
	if msg := captureStderr(t, func() { err = runTrain(trainArgs(dir, out)) }); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	resume := func(extra ...string) (error, string) {
		args := append(trainArgs(dir, out, "-steps", "4"), extra...)
		var err error
		msg := captureStderr(t, func() { err = runTrain(append(args, "-resume", out)) })
		return err, msg
	}
	err, msg := resume("-seed", "7", "-batch", "2", "-lr", "0.5", "-augment")
	for _, want := range []string{"seed: 1 in the checkpoint, 7 in this run", "batch: 4 in the checkpoint, 2 in this run",
		"lr: 0.001 in the checkpoint, 0.5 in this run", "augment: false in the checkpoint, true in this run"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("changed flags: got %v, want %q\n%s", err, want, msg)
		}
	}
	err, msg = resume("-out", filepath.Join(dir, "other"))
	if err != errUsage || !strings.Contains(msg, "writes into") {
		t.Errorf("-resume DIR -out OTHER: got %v\n%s", err, msg)
	}
	if _, e := os.Stat(filepath.Join(dir, "other")); e == nil {
		t.Error("-resume DIR -out OTHER created OTHER")
	}
	if err, msg = resume(); err != nil {
		t.Fatalf("resume with the same flags: %v\n%s", err, msg)
	}
	if !strings.Contains(msg, "resumed from") {
		t.Errorf("no resume line:\n%s", msg)
	}
}

// TestTrainOutFolder: a run into a folder another run holds is refused
// naming the holder (issue 19 finding 2); a fresh run into a used folder
// is refused naming what would be lost unless -force (finding 3); stale
// temporary files are removed when a run starts (finding 11).
func TestTrainOutFolder(t *testing.T) {
	dir := t.TempDir()
	writeFolder(t, filepath.Join(dir, "data"), 6, 14)
	out := filepath.Join(dir, "run")
	lock, err := loope.LockDir(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := captureStderr(t, func() { err = runTrain(trainArgs(dir, out)) })
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("in use by the run of PID %d", os.Getpid())) {
		t.Errorf("locked folder: got %v\n%s", err, msg)
	}
	lock.Unlock()
	stale := filepath.Join(out, ".last.safetensors.tmp-123")
	os.WriteFile(stale, []byte("torn"), 0o644)
	if msg = captureStderr(t, func() { err = runTrain(trainArgs(dir, out)) }); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	if _, e := os.Stat(stale); e == nil || !strings.Contains(msg, "left by an interrupted write") {
		t.Errorf("stale temporary file kept; stderr:\n%s", msg)
	}
	if _, e := os.Stat(filepath.Join(out, loope.LockName)); e == nil {
		t.Error("the lock outlived the run")
	}
	first, _ := os.ReadFile(filepath.Join(out, "best.safetensors"))
	msg = captureStderr(t, func() { err = runTrain(trainArgs(dir, out, "-seed", "2")) })
	if err == nil || !strings.Contains(err.Error(), "best.safetensors, curve.png, last.safetensors, metrics.jsonl, result.json, which this run would replace") {
		t.Errorf("used folder: got %v\n%s", err, msg)
	}
	if now, _ := os.ReadFile(filepath.Join(out, "best.safetensors")); string(now) != string(first) {
		t.Error("a refused run changed best.safetensors")
	}
	if msg = captureStderr(t, func() { err = runTrain(trainArgs(dir, out, "-seed", "2", "-force")) }); err != nil {
		t.Fatalf("-force: %v\n%s", err, msg)
	}
	raw, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if n := strings.Count(string(raw), `"step":2,"split":"val"`); n != 1 || !strings.Contains(msg, "-force: removed the earlier run's") {
		t.Errorf("after -force: %d validation records of step 2 (want 1, one run's); stderr:\n%s", n, msg)
	}
}

// TestTrainRejectsBadInput: non-finite float flags, an unbounded -steps,
// a -val-frac that holds out no image and a one-class folder are clear
// errors; the -time message names the budget given; skipped folder
// entries are reported (issue 19 finding 10).
func TestTrainRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	writeFolder(t, filepath.Join(dir, "data"), 6, 14)
	one := filepath.Join(dir, "one")
	writeFolder(t, one, 2, 14)
	os.RemoveAll(filepath.Join(one, "train", "b"))
	os.RemoveAll(filepath.Join(one, "test", "b"))
	for i, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-clip", "NaN"}, `invalid value "NaN" for flag -clip: "NaN" is not a finite number`},
		{[]string{"-wd", "nan"}, "-wd"},
		{[]string{"-lr", "Inf"}, "not a finite number"},
		{[]string{"-smoothing", "NaN"}, "not a finite number"},
		{[]string{"-min-lr", "-Inf"}, "not a finite number"},
		{[]string{"-epochs", "1e400"}, "not a finite number"},
		{[]string{"-steps", "2000000000"}, "-steps 2000000000: need ≤ 1000000000"},
		{[]string{"-val-frac", "0.001"}, "-val-frac 0.001 of 12 training images holds out 0 for validation"},
		{[]string{"-data", "folder:" + one}, "has 1 class [\"a\"]: need at least 2"},
		{[]string{"-time", "1ns"}, "-time 1ns: too short"},
	} {
		var err error
		msg := captureStderr(t, func() { err = runTrain(trainArgs(dir, filepath.Join(dir, fmt.Sprint("bad", i)), tc.args...)) })
		if err == nil || !strings.Contains(err.Error()+msg, tc.want) {
			t.Errorf("%v: got %v, want %q\n%s", tc.args, err, tc.want, msg)
		}
	}
	os.MkdirAll(filepath.Join(dir, "data", "train", "..evil"), 0o755)
	var err error
	msg := captureStderr(t, func() { err = runTrain(trainArgs(dir, filepath.Join(dir, "ok"))) })
	if err != nil || !strings.Contains(msg, "skipped 1 entries: ..evil (hidden)") {
		t.Errorf("got %v, want the skipped ..evil reported:\n%s", err, msg)
	}
}

// TestTrainResumeMetrics: a resume from an earlier checkpoint cuts
// metrics.jsonl back to the checkpoint's step (a torn last line too), so
// no record repeats (issue 19 finding 11).
func TestTrainResumeMetrics(t *testing.T) {
	dir := t.TempDir()
	writeFolder(t, filepath.Join(dir, "data"), 6, 14)
	out := filepath.Join(dir, "run")
	run := func(steps string, resume bool) {
		t.Helper()
		args := trainArgs(dir, out, "-steps", steps)
		if resume {
			args = append(args, "-resume", out)
		}
		var err error
		if msg := captureStderr(t, func() { err = runTrain(args) }); err != nil {
			t.Fatalf("%v\n%s", err, msg)
		}
	}
	run("2", false)
	ckpt := filepath.Join(out, "last.safetensors")
	atTwo, _ := os.ReadFile(ckpt)
	run("4", true)
	// As if killed after step 4's records but before its checkpoint, mid-line.
	os.WriteFile(ckpt, atTwo, 0o644)
	f, _ := os.OpenFile(filepath.Join(out, "metrics.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"step":5,"spl`)
	f.Close()
	run("4", true)
	raw, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var m struct {
			Step  int    `json:"step"`
			Split string `json:"split"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		key := fmt.Sprintf("%d %s", m.Step, m.Split)
		if seen[key] {
			t.Errorf("record of step %d %s repeated:\n%s", m.Step, m.Split, raw)
		}
		seen[key] = true
	}
	if !seen["4 val"] || !seen["1 val"] {
		t.Errorf("records missing:\n%s", raw)
	}
}

// TestTrainRefusesOverMemory: a run whose estimated peak memory exceeds
// what is available is refused before the model is built, naming the
// estimate, the limit and the flags to change (issue 19 finding 7).
func TestTrainRefusesOverMemory(t *testing.T) {
	if _, _, ok := loope.AvailableMemory(); !ok {
		t.Skip("available memory unknown here")
	}
	dir := t.TempDir()
	writeFolder(t, filepath.Join(dir, "data"), 6, 14)
	// -preset small at 128 px: 4097 tokens; one image's attention tensors alone are GBs.
	var err error
	msg := captureStderr(t, func() {
		err = runTrain(trainArgs(dir, filepath.Join(dir, "big"), "-preset", "small", "-image", "128", "-batch", "64"))
	})
	for _, want := range []string{"this run needs an estimated", "activations", "is available (", "lower -batch 64", "-image 128"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q\n%s", err, want, msg)
		}
	}
}

// TestTrainCNN trains a CNN reference model (-arch inception3 and
// resnet50, docs/cnn.md) for 2 steps on a folder data set: the run writes
// its result with the architecture, its input size and no PE, and the
// ViT's options are refused.
func TestTrainCNN(t *testing.T) {
	if testing.Short() {
		t.Skip("builds full-size CNNs")
	}
	dir := t.TempDir()
	writeFolder(t, filepath.Join(dir, "data"), 6, 20)
	for _, arch := range []string{"resnet50", "inception3"} {
		out := filepath.Join(dir, arch)
		args := []string{"-data", "folder:" + filepath.Join(dir, "data"), "-arch", arch, "-image", "16", "-cnn-stem", "small",
			"-steps", "2", "-batch", "4", "-warmup", "1", "-val-frac", "0.25", "-out", out}
		var err error
		msg := captureStderr(t, func() { err = runTrain(args) })
		if err != nil {
			t.Fatalf("%s: %v\n%s", arch, err, msg)
		}
		raw, err := os.ReadFile(filepath.Join(out, "result.json"))
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Arch     string  `json:"arch"`
			PE       string  `json:"pe"`
			Image    int     `json:"image"`
			TestLoss float64 `json:"test_loss"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatal(err)
		}
		// After 2 steps the running BatchNorm statistics (momentum 0.1) are
		// far from the data's, so the test loss is finite but can be large.
		if res.Arch != arch || res.PE != "none" || res.Image != 16 || !(res.TestLoss > 0 && res.TestLoss < math.MaxFloat64) {
			t.Errorf("%s: result %s", arch, raw)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-arch", "resnet50", "-pe", "loope"}, "-pe is a ViT option; -arch resnet50 does not take it"},
		{[]string{"-arch", "inception3", "-heads", "2"}, "-heads is a ViT option"},
		{[]string{"-arch", "resnet50", "-freqs", "f1"}, "-freqs is a ViT option"},
		{[]string{"-arch", "resnet50", "-cnn-stem", "tiny"}, "stem"},
		{[]string{"-cnn-stem", "small"}, "-cnn-stem is for a CNN -arch"},
	} {
		var err error
		msg := captureStderr(t, func() { err = runTrain(append(tc.args, "-out", filepath.Join(dir, "bad"))) })
		if err == nil || !strings.Contains(msg, tc.want) {
			t.Errorf("train %v: err %v, stderr lacks %q:\n%s", tc.args, err, tc.want, msg)
		}
	}
}

// TestTrainInitFromCaiT trains a CaiT for 2 steps, then fine-tunes its
// checkpoint (timm's names) with the PE swapped: the backbone loads, the
// PE and head are new; a checkpoint of another size (here its learnable
// table, at -image 28) is refused naming the tensor.
func TestTrainInitFromCaiT(t *testing.T) {
	dir := t.TempDir()
	data := "folder:" + filepath.Join(dir, "data")
	writeFolder(t, filepath.Join(dir, "data"), 6, 20)
	base := []string{"-data", data, "-arch", "cait", "-steps", "2", "-batch", "4", "-warmup", "1", "-val-frac", "0.25"}
	var err error
	msg := captureStderr(t, func() { err = runTrain(append(base, "-pe", "learnable", "-out", filepath.Join(dir, "a"))) })
	if err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	ckpt := filepath.Join(dir, "a", "last.safetensors")
	msg = captureStderr(t, func() {
		err = runTrain(append(base, "-pe", "sin1d", "-init-from", ckpt, "-out", filepath.Join(dir, "b")))
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	if !strings.Contains(msg, "init from "+ckpt+": cait cait-tiny; new: head.bias head.weight") {
		t.Errorf("stderr lacks the init line:\n%s", msg)
	}
	msg = captureStderr(t, func() {
		err = runTrain(append(base, "-image", "28", "-pe", "learnable", "-init-from", ckpt, "-out", filepath.Join(dir, "c")))
	})
	if err == nil || !strings.Contains(err.Error(), `"pos_embed" has shape [1 50 64], model wants [1 197 64]`) {
		t.Errorf("a checkpoint of another size: err %v\n%s", err, msg)
	}
}
