package loope

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

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
	cait := tinySweep(cfg.Out)
	cait.Model.Arch, cait.InitFrom = "cait", ckpt
	if err := cait.CheckInitFrom(); err == nil || !strings.Contains(err.Error(), "the model is cait (use -arch vit)") {
		t.Errorf("-arch cait: err %v", err)
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
