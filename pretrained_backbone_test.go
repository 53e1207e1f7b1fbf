package loope

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLoadTimmBackbone saves a learnable-PE CaiT and CrossViT (timm's
// names) and imports each with the PE swapped: the backbone is copied,
// the head and the new PE are fresh, a learnable PE keeps the file's
// table, and a checkpoint of another width is refused naming the tensor.
func TestLoadTimmBackbone(t *testing.T) {
	dir := t.TempDir()
	for _, arch := range []string{"cait", "crossvit"} {
		cfg, err := Preset(arch + "-tiny")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Depth, cfg.PE = 1, PEConfig{Name: "learnable"}
		src, err := NewModel[float32](cfg, 7)
		if err != nil {
			t.Fatal(err)
		}
		ckpt := filepath.Join(dir, arch+".safetensors")
		if err := SaveCheckpoint[float32](ckpt, src, nil); err != nil {
			t.Fatal(err)
		}
		f, err := ReadSafeFile(ckpt)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]float32{}
		for _, p := range src.Params() {
			want[p.Name] = p.T.Data
		}
		for _, pe := range []string{"sin1d", "loope", "learnable"} {
			c := cfg
			c.PE, c.Classes = PEConfig{Name: pe}, 3
			m, fresh, err := LoadTimmBackbone[float32](f, c, 1)
			if err != nil {
				t.Fatalf("%s %s: %v", arch, pe, err)
			}
			for _, p := range m.Params() {
				isFresh := slices.Contains(fresh, p.Name)
				if isFresh != (strings.HasPrefix(p.Name, "head.") || (pe != "learnable" && strings.HasPrefix(p.Name, "pos_embed")) || p.Name == "cls_token") {
					t.Errorf("%s %s: %s fresh %v", arch, pe, p.Name, isFresh)
				}
				if !isFresh && !slices.Equal(p.T.Data, want[p.Name]) {
					t.Errorf("%s %s: %s not copied from the checkpoint", arch, pe, p.Name)
				}
			}
		}
		wide := cfg
		wide.Dim, wide.MLP = 2*cfg.Dim, 2*cfg.MLP
		_, _, err = LoadTimmBackbone[float32](f, wide, 1)
		if err == nil || !strings.Contains(err.Error(), `"patch_embed`) || !strings.Contains(err.Error(), "pick the -preset") {
			t.Errorf("%s: a wider model: err %v", arch, err)
		}
	}
	// A CaiT state dict as timm writes it: pos_embed (1, N, D) without the
	// class token, cls_token (1, 1, D) beside it.
	cfg, _ := Preset("cait-tiny")
	cfg.Depth, cfg.PE = 1, PEConfig{Name: "learnable"}
	src, _ := NewModel[float32](cfg, 7)
	f := NewSafeFile()
	var table []float32
	for _, p := range src.Params() {
		if p.Name == "pos_embed" {
			table = p.T.Data
			d := p.T.Shape[2]
			if err := PutFloat(f, "cls_token", table[:d], 1, 1, d); err != nil {
				t.Fatal(err)
			}
			if err := PutFloat(f, "pos_embed", table[d:], 1, p.T.Shape[1]-1, d); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := PutFloat(f, p.Name, p.T.Data, p.T.Shape...); err != nil {
			t.Fatal(err)
		}
	}
	m, _, err := LoadTimmBackbone[float32](f, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		if p.Name == "pos_embed" && !slices.Equal(p.T.Data, table) {
			t.Errorf("cait: timm's cls_token and pos_embed did not make the table")
		}
	}
	vit, _ := Preset("tiny")
	if _, _, err := LoadTimmBackbone[float32](NewSafeFile(), vit, 1); err == nil || !strings.Contains(err.Error(), "LoadTimmViT") {
		t.Errorf("vit: err %v", err)
	}
}
