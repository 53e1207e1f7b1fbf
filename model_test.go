package loope

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestNewModel: "" and "vit" build the ViT, an unknown architecture is a
// clear error naming the valid ones, and NewViT refuses a config of
// another architecture.
func TestNewModel(t *testing.T) {
	cfg := tinyAttnConfig("learnable")
	for _, arch := range []string{"", "vit"} {
		cfg.Arch = arch
		m, err := NewModel[float32](cfg, 1)
		if err != nil {
			t.Fatalf("arch %q: %v", arch, err)
		}
		v, ok := m.(*ViT[float32])
		if !ok {
			t.Fatalf("arch %q built %T, want *ViT", arch, m)
		}
		w, _ := NewViT[float32](cfg, 1)
		if v.HeadW.Data[0] != w.HeadW.Data[0] || NumParams(m) != w.NumParams() {
			t.Fatalf("arch %q: NewModel and NewViT differ", arch)
		}
	}
	cfg.Arch = "nope"
	if _, err := NewModel[float64](cfg, 1); err == nil || !strings.Contains(err.Error(), "unknown architecture \"nope\"") || !strings.Contains(err.Error(), "vit") {
		t.Fatalf("unknown arch: %v", err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "unknown architecture") {
		t.Fatalf("Validate of an unknown arch: %v", err)
	}
}

// testArch is a registered stand-in for another architecture: a ViT whose
// Config says "test-arch", to check the seam without a second model.
type testArch[T Float] struct{ *ViT[T] }

func (m testArch[T]) Config() Config { c := m.Cfg; c.Arch = "test-arch"; return c }

func init() {
	build := func(c Config) Config { c.Arch = ""; return c }
	registerArch("test-arch", archSpec{summary: "test only", validate: validateViT,
		f32: func(c Config, s uint64) (Model[float32], error) {
			v, err := NewViT[float32](build(c), s)
			return testArch[float32]{v}, err
		},
		f64: func(c Config, s uint64) (Model[float64], error) {
			v, err := NewViT[float64](build(c), s)
			return testArch[float64]{v}, err
		}})
}

// TestLoadModelArch: a checkpoint records its architecture, LoadModel
// rebuilds it, and LoadCheckpoint (ViT only) refuses it by name.
func TestLoadModelArch(t *testing.T) {
	cfg := tinyAttnConfig("sin1d")
	cfg.Arch = "test-arch"
	m, err := NewModel[float32](cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.safetensors")
	if err := SaveCheckpoint(path, m, nil); err != nil {
		t.Fatal(err)
	}
	back, _, err := LoadModel[float32](path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := back.(testArch[float32]); !ok || back.Config().Arch != "test-arch" {
		t.Fatalf("LoadModel built %T arch %q", back, back.Config().Arch)
	}
	if _, _, err := LoadCheckpoint[float32](path); err == nil || !strings.Contains(err.Error(), "test-arch checkpoint, not a ViT") {
		t.Fatalf("LoadCheckpoint of another arch: %v", err)
	}
}
