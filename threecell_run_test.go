package loope

import (
	"bytes"
	"io"
	"math"
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

// TestThreeCellPESIArchitectures: CaiT and CrossViT runs score their
// additive PE with PESI as the ViT does (CrossViT: the first branch's);
// a fixed table scores as PESI of that table (to float32 rounding).
func TestThreeCellPESIArchitectures(t *testing.T) {
	for _, arch := range []string{"cait", "crossvit"} {
		c := tinySweep("")
		model, err := Preset(arch + "-tiny")
		if err != nil {
			t.Fatal(err)
		}
		model.Depth = 1
		c.Preset, c.Model, c.PEs, c.FreqSets, c.Steps = arch+"-tiny", model, []string{"hilbert"}, nil, 2
		r, err := RunThreeCellBench(c, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		table, err := FixedPE("hilbert", model.Dim, model.Grid(), model.Grid(), "")
		if err != nil {
			t.Fatal(err)
		}
		want := PESI(DropCLS(table, model.Dim), model.Dim, model.Grid(), model.Grid(), ThreeCellPESIDirections)
		// The model's table is float32: PESI agrees to float32 rounding.
		if got := r.Summary[0].PESI; got == nil || math.Abs(got.MU-want.MU) > 1e-6 || math.Abs(got.MD-want.MD) > 1e-6 || math.Abs(got.ASU-want.ASU) > 1e-6 {
			t.Errorf("%s: PESI %v, want %v", arch, got, want)
		}
	}
}
