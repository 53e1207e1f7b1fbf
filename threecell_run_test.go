package loope

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestThreeCellValidate checks that bad settings are reported with the flag.
func TestThreeCellValidate(t *testing.T) {
	t.Parallel()
	model, _ := Preset("tiny")
	good := ThreeCellBenchConfig{Preset: "tiny", Model: model, PEs: []string{"none"}, Seeds: []uint64{0},
		Stream: true, TrainSize: 100, ValSize: 10, Steps: 10, Batch: 4, LR: 1e-3, MinLR: 1e-5}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		want string
		mod  func(c *ThreeCellBenchConfig)
	}{
		{"-pe: unknown", func(c *ThreeCellBenchConfig) { c.PEs = []string{"nope"} }},
		{"given twice", func(c *ThreeCellBenchConfig) { c.PEs = []string{"none", "none"} }},
		{"-seeds", func(c *ThreeCellBenchConfig) { c.Seeds = nil }},
		{"-train-size", func(c *ThreeCellBenchConfig) { c.Stream, c.TrainSize = false, 8001 }},
		{"-val-size", func(c *ThreeCellBenchConfig) { c.ValSize = 1001 }},
		{"-test-size", func(c *ThreeCellBenchConfig) { c.TestSize = -1 }},
		{"-freqs: unknown", func(c *ThreeCellBenchConfig) { c.FreqSets = []string{"f9"} }},
		{"-freqs: \"f1\" given twice", func(c *ThreeCellBenchConfig) { c.PEs, c.FreqSets = []string{"sin1d"}, []string{"f1", "f1"} }},
		{"none of the PEs reads", func(c *ThreeCellBenchConfig) { c.FreqSets = []string{"f2"} }},
		{"-ref: unknown reference model \"vit\"", func(c *ThreeCellBenchConfig) { c.Refs = []string{"vit"} }},
		{"-shard 2/2", func(c *ThreeCellBenchConfig) { c.Shard = Shard{2, 2} }},
		{"not among the PEs", func(c *ThreeCellBenchConfig) { c.PEOptions = []PEConfig{{Name: "loope"}} }},
		{"-pe fourier", func(c *ThreeCellBenchConfig) {
			c.PEs, c.PEOptions = []string{"fourier"}, []PEConfig{{Name: "fourier", Freqs: "f2"}} // fourier learns its frequencies
		}},
		{"-steps", func(c *ThreeCellBenchConfig) { c.Steps = 0 }},
		{"-batch", func(c *ThreeCellBenchConfig) { c.Batch = 0 }},
		{"-lr", func(c *ThreeCellBenchConfig) { c.MinLR = 1 }},
		{"-warmup", func(c *ThreeCellBenchConfig) { c.Warmup = 10 }},
		{"-wd", func(c *ThreeCellBenchConfig) { c.WeightDecay = math.NaN() }},
		{"-threads", func(c *ThreeCellBenchConfig) { c.Threads = -1 }},
		{"-jobs -1", func(c *ThreeCellBenchConfig) { c.Jobs = -1 }},
		{"-jobs 2 with -threads 2", func(c *ThreeCellBenchConfig) { c.Jobs, c.Threads = 2, 2 }},
		{"-preset", func(c *ThreeCellBenchConfig) { c.Model.Image, c.Model.Patch = 4, 2 }},
	} {
		c := good
		c.PEs, c.Seeds = slices.Clone(good.PEs), slices.Clone(good.Seeds)
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v", tc.want, err)
		}
	}
}

// TestThreeCellJobs: runs trained side by side (Jobs 3, one kernel thread
// each) give the report of one run at a time with one thread, and the
// progress reaches every run's last step.
func TestThreeCellJobs(t *testing.T) {
	dir := t.TempDir()
	one := tinySweep(filepath.Join(dir, "one"))
	one.Jobs = 1
	if _, err := RunThreeCellBench(one, nil); err != nil {
		t.Fatal(err)
	}
	three := tinySweep(filepath.Join(dir, "three"))
	three.Jobs, three.Threads = 3, 0
	var log bytes.Buffer
	if _, err := RunThreeCellBench(three, &log); err != nil {
		t.Fatal(err)
	}
	if a, b := reportJSON(t, one.Out), reportJSON(t, three.Out); !bytes.Equal(a, b) {
		t.Errorf("-jobs 3 differs from -jobs 1 -threads 1:\n%s\n---\n%s", a, b)
	}
	for _, want := range []string{"3 to train, 3 at a time", "overall: 3/3 runs trained, 0 in progress, 100% of the steps"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

// TestThreeCellInitFrom: with InitFrom every PE run starts from the file's
// backbone (blocks, patch embedding, CLS), with a fresh PE (learnable keeps
// pos_embed) and a new head; the digest, not the path, is in the hash; a
// missing file, a non-safetensors file and a backbone of another width are
// refused, naming the file and what is wrong.
func TestThreeCellInitFrom(t *testing.T) {
	dir := t.TempDir()
	cfg := tinySweep(filepath.Join(dir, "out"))
	bb := cfg.Model
	bb.PE, bb.Classes = PEConfig{Name: "learnable"}, 10
	src, err := NewViT[float32](bb, 99)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "backbone.safetensors")
	if err := SaveCheckpoint[float32](ckpt, src, nil); err != nil {
		t.Fatal(err)
	}
	cfg.InitFrom = ckpt
	if err := cfg.CheckInitFrom(); err != nil || len(cfg.InitFromSHA256) != 64 {
		t.Fatalf("CheckInitFrom: %v (digest %q)", err, cfg.InitFromSHA256)
	}
	want := map[string][]float32{}
	for _, p := range src.Params() {
		want[p.Name] = p.T.Data
	}
	for _, pe := range []string{"learnable", "sin1d"} {
		mc := cfg.Model
		mc.PE, mc.Classes = PEConfig{Name: pe}, 6
		m, err := cfg.newRunModel(mc, SweepRun{PE: pe, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Params() {
			same := slices.Equal(p.T.Data, want[p.Name])
			fromFile := p.Name != "head.weight" && p.Name != "head.bias" && (p.Name != "pos_embed" || pe == "learnable")
			if same != fromFile {
				t.Errorf("%s: %s equal to the backbone's: %v, want %v", pe, p.Name, same, fromFile)
			}
		}
	}
	if _, err := RunThreeCellBench(cfg, nil); err != nil {
		t.Fatal(err)
	}
	if md, _ := os.ReadFile(filepath.Join(cfg.Out, "results.md")); !strings.Contains(string(md), "starts from the backbone in backbone.safetensors (SHA-256 "+cfg.InitFromSHA256[:12]) {
		t.Errorf("results.md does not name the backbone:\n%s", md)
	}
	moved := cfg
	moved.InitFrom = filepath.Join(dir, "elsewhere.safetensors")
	if moved.Hash() != cfg.Hash() {
		t.Error("the backbone's path changes the sweep hash")
	}
	garbage := filepath.Join(dir, "garbage.safetensors")
	os.WriteFile(garbage, []byte("not a safetensors file"), 0o644)
	wide := bb
	wide.Dim, wide.MLP = 32, 64
	w, _ := NewViT[float32](wide, 1)
	wideCkpt := filepath.Join(dir, "wide.safetensors")
	if err := SaveCheckpoint[float32](wideCkpt, w, nil); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		filepath.Join(dir, "missing.safetensors"): "missing.safetensors: loope: safetensors: open",
		garbage:  "garbage.safetensors: loope: safetensors",
		wideCkpt: "wide.safetensors",
	} {
		c := tinySweep(cfg.Out)
		c.InitFrom = path
		if err := c.CheckInitFrom(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", filepath.Base(path), err, want)
		} else {
			t.Log(err)
		}
	}
	c := cfg
	other, _ := NewViT[float32](bb, 100)
	if err := SaveCheckpoint[float32](ckpt, other, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckInitFrom(); err == nil || !strings.Contains(err.Error(), "the file changed") {
		t.Errorf("a changed backbone file: err %v", err)
	}
}
