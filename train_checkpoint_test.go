package loope

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestResumeHelperProcess is the child of TestKillAndResume: it trains with
// checkpoints into $LOOPE_RESUME_DIR until it is killed.
func TestResumeHelperProcess(t *testing.T) {
	dir := os.Getenv("LOOPE_RESUME_DIR")
	if dir == "" {
		t.Skip("helper process for TestKillAndResume")
	}
	cfg, tc := resumeCfg()
	m, err := NewViT[float32](cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	tc.CheckpointDir = dir
	ds := slowSpot{brightSpot{n: 40, side: cfg.Image, ch: cfg.Channels}}
	if _, err := Train(m, ds, ds.brightSpot, tc); err != nil {
		t.Fatal(err)
	}
}

// TestKillAndResume: a run killed with SIGKILL after a checkpoint and
// resumed to the end equals, bit for bit, the uninterrupted run (issue 8).
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess run")
	}
	cfg, tc := resumeCfg()
	ds := brightSpot{n: 40, side: cfg.Image, ch: cfg.Channels}

	// The uninterrupted run.
	straight := t.TempDir()
	m, _ := NewViT[float32](cfg, 4)
	tc.CheckpointDir = straight
	if _, err := Train(m, ds, ds, tc); err != nil {
		t.Fatal(err)
	}

	// A subprocess killed after its first checkpoint.
	killed := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestResumeHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LOOPE_RESUME_DIR="+killed)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(killed, "last.safetensors")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(ckpt); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no checkpoint from the child within 60 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL
	cmd.Wait()
	f, err := ReadSafeFile(ckpt)
	if err != nil {
		t.Fatalf("checkpoint left by the killed run: %v", err)
	}
	var st trainState
	json.Unmarshal([]byte(f.Metadata["train_state"]), &st)
	if st.Step >= tc.Steps {
		t.Fatalf("child finished (step %d) before it was killed; the test proves nothing", st.Step)
	}
	t.Logf("killed after the checkpoint at step %d of %d", st.Step, tc.Steps)

	// Resume in this process to the end.
	m2, _ := NewViT[float32](cfg, 77) // different init: everything must come from the checkpoint
	tc.CheckpointDir, tc.Resume = killed, ckpt
	var log strings.Builder
	tc.Log = &log
	if _, err := Train(m2, ds, ds, tc); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(straight, "last.safetensors"))
	got, _ := os.ReadFile(filepath.Join(killed, "last.safetensors"))
	if !bytes.Equal(got, want) {
		t.Errorf("resumed run's final checkpoint differs from the uninterrupted run's\n%s", log.String())
	}
}

// trainFourSteps runs 4 steps of resumeCfg with checkpoints into a
// temporary folder and returns the model config, the run's config and
// its data.
func trainFourSteps(t testing.TB) (Config, TrainConfig, brightSpot) {
	t.Helper()
	cfg, tc := resumeCfg()
	tc.Steps, tc.CheckpointDir = 4, t.TempDir()
	ds := brightSpot{n: 40, side: cfg.Image, ch: cfg.Channels}
	m, _ := NewViT[float32](cfg, 1)
	if _, err := Train(m, ds, nil, tc); err != nil {
		t.Fatal(err)
	}
	return cfg, tc, ds
}

// TestResumeRejectsOtherModel: resuming with a different config is an error.
func TestResumeRejectsOtherModel(t *testing.T) {
	cfg, tc, ds := trainFourSteps(t)
	cfg.Dim, cfg.MLP = 32, 64
	m2, _ := NewViT[float32](cfg, 1)
	tc.Resume = filepath.Join(tc.CheckpointDir, "last.safetensors")
	if _, err := Train(m2, ds, nil, tc); err == nil || !strings.Contains(err.Error(), "differs from this run") {
		t.Errorf("got %v, want a config mismatch error", err)
	}
}

// TestHostileResume: Train with Resume pointing at a hostile checkpoint (a
// width of 10⁹, a ti16 config without its tensors, a 1 TB tensor header)
// fails before allocating more than a few MB.
func TestHostileResume(t *testing.T) {
	cfg, tc := resumeCfg()
	dir := t.TempDir()
	ti, _ := Preset("ti16")
	files := map[string][]byte{}
	for name, js := range map[string]string{
		"dim":    `{"image":224,"channels":3,"patch":16,"dim":1000000000,"depth":12,"heads":3,"mlp":768,"classes":6,"eps":1e-6,"pe":{"name":"learnable"}}`,
		"params": mustJSON(ti),
	} {
		f := NewSafeFile()
		f.Metadata[metaConfig] = js
		if err := PutFloat(f, "pos_embed", []float32{1}, 1); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := f.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		files[name] = buf.Bytes()
	}
	hdr := `{"__metadata__":{"config":"{}"},"w":{"dtype":"F32","shape":[274877906944],"data_offsets":[0,1099511627776]}}`
	files["tb"] = append(append(binary.LittleEndian.AppendUint64(nil, uint64(len(hdr))), hdr...), 0, 0, 0, 0)
	for name, b := range files {
		path := filepath.Join(dir, name+".safetensors")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, _ := NewViT[float32](cfg, 1)
		tc.Resume = path
		var err error
		alloc := allocatedBy(func() { _, err = Train(m, brightSpot{n: 40, side: cfg.Image, ch: cfg.Channels}, nil, tc) })
		if err == nil {
			t.Errorf("%s: resumed from a hostile checkpoint", name)
		}
		if alloc > 8<<20 {
			t.Errorf("%s: allocated %d bytes before failing", name, alloc)
		}
		t.Logf("%s: %d kB allocated: %v", name, alloc>>10, err)
	}
}

// craftedResumes returns a good checkpoint of a 4-step run of resumeCfg
// (with its train config) and crafted variants of it, each with a part of
// the error message its resume must give (issue 19 findings 1, 5, 10).
func craftedResumes(t testing.TB) (good *SafeFile, tc TrainConfig, bad map[string]struct {
	f    *SafeFile
	want string
}) {
	t.Helper()
	_, tc, _ = trainFourSteps(t)
	good, err := ReadSafeFile(filepath.Join(tc.CheckpointDir, "last.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	clone := func(edit func(g *SafeFile)) *SafeFile {
		var buf bytes.Buffer
		if _, err := good.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		g, err := ParseSafe(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		edit(g)
		return g
	}
	drop := func(g *SafeFile, name string) {
		delete(g.Tensors, name)
		g.Names = slices.DeleteFunc(g.Names, func(n string) bool { return n == name })
	}
	perm := func(edit func(p []int)) func(g *SafeFile) {
		return func(g *SafeFile) {
			p, _, _ := GetInts(g, "train.perm")
			edit(p)
			drop(g, "train.perm")
			if err := PutInts(g, "train.perm", p, len(p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	state := func(edit func(st map[string]any)) func(g *SafeFile) {
		return func(g *SafeFile) {
			var st map[string]any
			json.Unmarshal([]byte(g.Metadata["train_state"]), &st)
			edit(st)
			g.Metadata["train_state"] = mustJSON(st)
		}
	}
	tensor := func(name string, v float32) func(g *SafeFile) {
		return func(g *SafeFile) {
			d, shape, _ := GetFloat[float32](g, name)
			d[0] = v
			drop(g, name)
			if err := PutFloat(g, name, d, shape...); err != nil {
				t.Fatal(err)
			}
		}
	}
	bad = map[string]struct {
		f    *SafeFile
		want string
	}{}
	add := func(name, want string, edit func(g *SafeFile)) {
		bad[name] = struct {
			f    *SafeFile
			want string
		}{clone(edit), want}
	}
	add("perm-huge", "train.perm[3] = 1000000000000 is outside [0, 40)", perm(func(p []int) { p[3] = 1e12 }))
	add("perm-negative", "is outside [0, 40)", perm(func(p []int) { p[0] = -1 }))
	add("perm-zero", "repeats an earlier entry", perm(func(p []int) { clear(p) }))
	add("perm-short", "train.perm has 39 entries", func(g *SafeFile) {
		p, _, _ := GetInts(g, "train.perm")
		drop(g, "train.perm")
		PutInts(g, "train.perm", p[:39], 39)
	})
	add("epoch-huge", "is not a position a run of batch 8", state(func(st map[string]any) { st["epoch"] = 1e15 }))
	add("pos-off", "is not a position a run of batch 8", state(func(st map[string]any) { st["pos"] = 3.0 }))
	add("step-mismatch", "does not match the optimiser step", state(func(st map[string]any) { st["step"] = 3.0 }))
	add("best-acc", "best_acc", state(func(st map[string]any) { st["best_acc"] = 7.0 }))
	add("settings-lr", "lr: 0.001 in the checkpoint, 0.5 in this run", state(func(st map[string]any) {
		st["settings"].(map[string]any)["lr"] = "0.5" // the file says 0.5; compared as this run's 0.001 (swapped below)
	}))
	add("optim-extra", `unexpected optimiser tensor "optim.m.bogus"`, func(g *SafeFile) { PutFloat(g, "optim.m.bogus", []float32{0}, 1) })
	add("train-extra", `unexpected tensor "train.other"`, func(g *SafeFile) { PutInts(g, "train.other", []int{0}, 1) })
	add("optim-nan", "optim.m.pos_embed holds NaN", tensor("optim.m.pos_embed", float32(nan())))
	add("optim-v-negative", "optim.v.pos_embed holds -1 at element 0 (want finite, ≥ 0)", tensor("optim.v.pos_embed", -1))
	add("optim-v-inf", "optim.v.head.bias holds +Inf", tensor("optim.v.head.bias", float32(math.Inf(1))))
	add("optim-step", "no valid optimiser step", func(g *SafeFile) { g.Metadata["step"] = "-4" })
	return good, tc, bad
}

// TestResumeValidates: a resume checks everything it restores (issue 19
// findings 1, 5 and 10): crafted positions, permutations, optimiser
// tensors and changed settings are errors naming what is wrong, never a
// panic or a silently wrong run; the untouched checkpoint resumes.
func TestResumeValidates(t *testing.T) {
	good, tc, bad := craftedResumes(t)
	cfg, _ := resumeCfg()
	tc.Steps, tc.CheckpointDir = 6, t.TempDir()
	for name, c := range bad {
		m, _ := NewViT[float32](cfg, 1)
		rtc := tc
		if name == "settings-lr" { // the checkpoint stores lr 0.5: this run's 0.001 differs
			c.want = "lr: 0.5 in the checkpoint, 0.001 in this run"
		}
		_, err := restoreTrain(c.f, m, NewAdamW(m.Params(), rtc.WeightDecay), 40, rtc, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
	// Changed run settings are listed, all of them.
	m, _ := NewViT[float32](cfg, 1)
	other := tc
	other.Batch, other.Seed, other.Settings = 16, 7, map[string]string{"data": "mnist"}
	_, err := restoreTrain(good, m, NewAdamW(m.Params(), other.WeightDecay), 40, other, io.Discard)
	for _, want := range []string{"batch: 8 in the checkpoint, 16 in this run", "seed: 9 in the checkpoint, 7 in this run", "data: not in the checkpoint, mnist in this run"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("changed settings: got %v, want %q", err, want)
		}
	}
	// Nothing left to do is an error, not a silent no-op.
	done := tc
	done.Steps = 4
	if _, err := restoreTrain(good, m, NewAdamW(m.Params(), tc.WeightDecay), 40, done, io.Discard); err == nil || !strings.Contains(err.Error(), "nothing to do") {
		t.Errorf("resume at the last step: got %v", err)
	}
	// The untouched checkpoint resumes and trains on through Train.
	path := filepath.Join(t.TempDir(), "last.safetensors")
	if err := good.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	tc.Resume = path
	m, _ = NewViT[float32](cfg, 1)
	ds := brightSpot{n: 40, side: cfg.Image, ch: cfg.Channels}
	if res, err := Train(m, ds, nil, tc); err != nil || res.Steps != 6 {
		t.Errorf("good resume: %v (steps %d)", err, res.Steps)
	}
}

// FuzzResume feeds crafted checkpoints to restoreTrain: it must return an
// error or a valid state, never panic. The seeds are the good checkpoint
// and every crafted one of craftedResumes.
func FuzzResume(f *testing.F) {
	good, tc, bad := craftedResumes(f)
	add := func(g *SafeFile) {
		var buf bytes.Buffer
		if _, err := g.WriteTo(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	add(good)
	for _, c := range bad {
		add(c.f)
	}
	cfg, _ := resumeCfg()
	tc.Steps = 6
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseSafe(data)
		if err != nil {
			return
		}
		m, _ := NewViT[float32](cfg, 1)
		st, err := restoreTrain(g, m, NewAdamW(m.Params(), tc.WeightDecay), 40, tc, io.Discard)
		if err == nil && (checkPerm(st.perm, 40) != nil || st.Pos > 40 || st.Step >= tc.Steps) {
			t.Fatalf("accepted an invalid state %+v", st)
		}
	})
}
