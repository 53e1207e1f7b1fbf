package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/loope-go/loope"
)

// TestParseGrid checks the one grid syntax: G or HxW (x or X) with each
// side at least minSide, and clear errors otherwise.
func TestParseGrid(t *testing.T) {
	for _, c := range []struct {
		in   string
		h, w int
		err  string
	}{
		{"14", 14, 14, ""}, {"7x9", 7, 9, ""}, {"7X9", 7, 9, ""},
		{"0", 0, 0, "positive integers"}, {"7x", 0, 0, "positive integers"}, {"+7", 0, 0, "positive integers"},
		{"07", 0, 0, "positive integers"}, {"2x9", 0, 0, "each side ≥ 3"}, {"a", 0, 0, "positive integers"},
	} {
		h, w, err := parseGrid(c.in, 3)
		if c.err == "" && (err != nil || h != c.h || w != c.w) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("parseGrid(%q) = %d, %d, %v; want %d, %d, %q", c.in, h, w, err, c.h, c.w, c.err)
		}
	}
}

// TestArchPreset checks -arch with -preset and -cait-cls: a non-ViT
// architecture takes its own tiny preset, a preset of another
// architecture or a CNN is refused, and -cait-cls only goes with cait.
func TestArchPreset(t *testing.T) {
	for _, c := range []struct {
		arch, preset string
		explicit     bool
		cls, name    string
		err          string
	}{
		{"vit", "small", false, "", "small", ""},
		{"cait", "small", false, "", "cait-tiny", ""},
		{"cait", "cait-s24", true, "learned", "cait-s24", ""},
		{"crossvit", "tiny", true, "", "", "is a vit preset, not a crossvit one"},
		{"resnet50", "small", false, "", "", "has no presets"},
		{"vit", "small", false, "learned", "", "-cait-cls is a cait option"},
		{"bogus", "small", false, "", "", "unknown architecture"},
	} {
		cfg, name, err := archPreset(c.arch, c.preset, c.explicit, c.cls)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("archPreset(%q, %q): err %v, want %q", c.arch, c.preset, err, c.err)
			}
			continue
		}
		if err != nil || name != c.name || cfg.CaitCLS != c.cls {
			t.Errorf("archPreset(%q, %q) = %q, cait_cls %q, %v; want %q", c.arch, c.preset, name, cfg.CaitCLS, err, c.name)
		}
	}
}

// TestOptimFlags checks the shared optimiser flags: -steps with -epochs
// is refused, -epochs must be in (0, 10⁶], -warmup -1 is 5% of the steps.
func TestOptimFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		err  string
	}{
		{nil, ""}, {[]string{"-epochs", "2"}, ""}, {[]string{"-steps", "5", "-epochs", "2"}, "do not go together"},
		{[]string{"-epochs", "0"}, "need 0 < epochs"}, {[]string{"-warmup", "-2"}, "-warmup -2"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o := addOptimFlags(fs, recipe{steps: 100, batch: 8, warmup: -1, epochOf: "the data"})
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		err := o.validate(set)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.err)
		}
		if c.err == "" && o.warmupOf(200) != 10 {
			t.Errorf("%v: warm-up of 200 steps %d, want 10 (5%%)", c.args, o.warmupOf(200))
		}
	}
}

// TestSizeFlags checks fixture's size overrides: values > 0 replace the
// preset's, negative ones and CrossViT sizes on another architecture are
// refused.
func TestSizeFlags(t *testing.T) {
	for _, c := range []struct {
		arch string
		args []string
		err  string
	}{
		{"", []string{"-dim", "32", "-heads", "2"}, ""},
		{"crossvit", []string{"-dim1", "24"}, ""},
		{"", []string{"-dim1", "24"}, "-dim1 is a crossvit option"},
		{"", []string{"-mlp", "-1"}, "-mlp -1: need ≥ 0"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		s := addSizeFlags(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		cfg := flagTestConfig(c.arch)
		err := s.apply(&cfg, set)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%v: err %v, want %q", c.args, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.err == "" && c.arch == "" && (cfg.Dim != 32 || cfg.Heads != 2 || cfg.Depth != 4):
			t.Errorf("%v: dim %d heads %d depth %d, want 32, 2 and the preset's 4", c.args, cfg.Dim, cfg.Heads, cfg.Depth)
		case c.err == "" && c.arch == "crossvit" && cfg.Dim1 != 24:
			t.Errorf("%v: dim1 %d, want 24", c.args, cfg.Dim1)
		}
	}
}

// flagTestConfig is the tiny preset of arch ("" for the ViT).
func flagTestConfig(arch string) loope.Config {
	name := "tiny"
	if arch != "" {
		name = arch + "-tiny"
	}
	cfg, _ := loope.Preset(name)
	return cfg
}
