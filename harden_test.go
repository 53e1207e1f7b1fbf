package loope

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzConfigSeeds are model configs for FuzzConfig and the hostile-config
// tests: every PE on a tiny model, PE options, and sizes past the bounds.
func fuzzConfigSeeds() []string {
	var seeds []string
	for _, pe := range PENames() {
		c := Config{Image: 8, Channels: 3, Patch: 2, Dim: 8, Depth: 1, Heads: 2, MLP: 8, Classes: 3, Eps: 1e-6, PE: PEConfig{Name: pe}}
		b, _ := json.Marshal(c)
		seeds = append(seeds, string(b))
	}
	return append(seeds,
		`{"image":8,"channels":1,"patch":4,"dim":4,"depth":1,"heads":1,"mlp":2,"classes":2,"eps":1e-6,"pe":{"name":"fourier","fourier_dim":6,"fourier_hidden":3}}`,
		`{"image":8,"channels":1,"patch":4,"dim":4,"depth":1,"heads":1,"mlp":2,"classes":2,"eps":1e-6,"pe":{"name":"loope","freqs":"f3","loope_squash":"tanh","loope_act":"relu","loope_bias":true}}`,
		`{"image":8,"channels":1,"patch":4,"dim":4,"depth":1,"heads":1,"mlp":2,"classes":2,"eps":1e-6,"pe":{"name":"sin1d","freqs":"f9"}}`,
		`{"image":8,"channels":1,"patch":4,"dim":6,"depth":1,"heads":3,"mlp":2,"classes":2,"eps":1e-6,"pe":{"name":"rope-axial"}}`,
		`{"image":224,"channels":3,"patch":16,"dim":1000000000,"depth":12,"heads":1,"mlp":3072,"classes":6,"eps":1e-6,"pe":{"name":"learnable"}}`,
		`{"image":4096,"channels":1024,"patch":64,"dim":8192,"depth":1000,"heads":8,"mlp":65536,"classes":6,"eps":1e-6,"pe":{"name":"rpe"}}`,
		`{"image":4096,"channels":3,"patch":1,"dim":8,"depth":1,"heads":1,"mlp":8,"classes":2,"eps":1e-6,"pe":{"name":"none"}}`,
		`{"image":8,"channels":1,"patch":4,"dim":4,"depth":1,"heads":1,"mlp":2,"classes":2,"eps":1e-6,"pe":{"name":"fourier","fourier_dim":2000000000}}`,
		`{"image":-8,"channels":0,"patch":0,"dim":-1,"eps":"x"}`,
		`{"image":1e400}`, `null`, `[]`, `{}`, ``,
	)
}

// TestConfigBounds: sizes past the Max* bounds are rejected by Validate,
// and the presets stay inside them.
func TestConfigBounds(t *testing.T) {
	good, _ := Preset("tiny")
	for _, tc := range []struct {
		name   string
		modify func(c *Config)
		want   string
	}{
		{"image", func(c *Config) { c.Image, c.Patch = 8192, 128 }, "image 8192 exceeds the limit 4096"},
		{"dim", func(c *Config) { c.Dim = 1e9 }, "dim 1000000000 exceeds the limit 8192"},
		{"depth", func(c *Config) { c.Depth = 1001 }, "depth 1001 exceeds the limit 1000"},
		{"grid", func(c *Config) { c.Image, c.Patch = 4096, 1 }, "grid 4096 (image 4096 / patch 1) exceeds the limit 64"},
		{"params", func(c *Config) { c.Dim, c.Heads, c.Depth, c.MLP = 8192, 8, 1000, 8192 }, "parameters exceed the limit"},
		{"attention", func(c *Config) { c.Image, c.Patch, c.Dim, c.Heads, c.Depth = 128, 2, 512, 512, 100 }, "exceeds the attention limit"},
	} {
		c := good
		tc.modify(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	for _, name := range PresetNames() {
		c, _ := Preset(name)
		c.Classes = 1000
		if err := c.Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
}

// TestBackboneParams: backboneParams is the parameter count of the model
// with no PE, which stores nothing but the backbone.
func TestBackboneParams(t *testing.T) {
	for _, name := range []string{"tiny", "ti16"} {
		c, _ := Preset(name)
		c.PE.Name = "none"
		m, err := NewViT[float32](c, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.backboneParams(), int64(m.NumParams()); got != want {
			t.Errorf("%s: backboneParams %d, NumParams %d", name, got, want)
		}
	}
}

// TestConfigFromSafeNeedsTensors: a config claiming more parameters than
// the file holds is rejected before any model is allocated.
func TestConfigFromSafeNeedsTensors(t *testing.T) {
	c, _ := Preset("ti16") // 5.5M backbone scalars
	f := NewSafeFile()
	f.Metadata[metaConfig] = mustJSON(c)
	if err := PutFloat(f, "w", make([]float32, 1000), 1000); err != nil {
		t.Fatal(err)
	}
	var err error
	if alloc := allocatedBy(func() { _, err = ConfigFromSafe(f) }); alloc > 1<<20 {
		t.Errorf("ConfigFromSafe allocated %d bytes", alloc)
	}
	if err == nil || !strings.Contains(err.Error(), "the file holds 1000 values") {
		t.Errorf("got %v", err)
	}
}

// FuzzConfig: the model config of a checkpoint's metadata, through
// ConfigFromSafe, NewViT, LoadParams and (for small models) Forward, must
// give an error or a working model, never a panic; a config that passes
// needs no more backbone scalars than the file holds, so what NewViT
// allocates is bounded by the file.
func FuzzConfig(f *testing.F) {
	for _, s := range fuzzConfigSeeds() {
		f.Add(s, uint16(4096))
	}
	f.Fuzz(func(t *testing.T, js string, values uint16) {
		sf := NewSafeFile()
		sf.Metadata[metaConfig] = js
		if err := PutFloat(sf, "w", make([]float32, int(values)*4), int(values)*4); err != nil {
			t.Fatal(err)
		}
		cfg, err := ConfigFromSafe(sf)
		if err != nil {
			return
		}
		if cfg.backboneParams() > int64(values)*4 {
			t.Fatalf("accepted config needs %d values, file has %d", cfg.backboneParams(), int(values)*4)
		}
		m, err := NewViT[float32](cfg, 1)
		if err != nil {
			return
		}
		if err := LoadParams(m, sf); err == nil {
			t.Fatal("LoadParams from a file without the model's tensors succeeded")
		}
		if cfg.Tokens() > 65 || cfg.Depth*cfg.Heads > 16 {
			return
		}
		tp := &Tape[float32]{NoGrad: true}
		img := New[float32](1, cfg.Channels, cfg.Image, cfg.Image)
		out := m.Forward(tp, img)
		if len(out.Shape) != 2 || out.Shape[0] != 1 || out.Shape[1] != cfg.Classes {
			t.Fatalf("logits shape %v", out.Shape)
		}
		// A training step's forward and backward on the same geometry.
		var tr Tape[float32]
		tr.Backward(tr.BCEWithLogits(m.Forward(&tr, img), New[float32](1, cfg.Classes)))
	})
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

// TestLoadParamsRejectsNaN: a stored NaN is corruption, named by tensor
// and element.
func TestLoadParamsRejectsNaN(t *testing.T) {
	cfg, _ := resumeCfg()
	m, _ := NewViT[float32](cfg, 1)
	path := filepath.Join(t.TempDir(), "nan.safetensors")
	m.HeadB.Data[1] = float32(nan())
	if err := SaveCheckpoint(path, m, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadCheckpoint[float64](path); err == nil || !strings.Contains(err.Error(), "non-finite value NaN in head.bias at element 1") {
		t.Errorf("got %v", err)
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

// TestLoopeNeedsGrid2: LOOPE on a 1×1 grid is refused when the model is
// built, not by a BatchNorm panic in the first training step.
func TestLoopeNeedsGrid2(t *testing.T) {
	cfg := Config{Image: 8, Channels: 1, Patch: 8, Dim: 4, Depth: 1, Heads: 1, MLP: 2, Classes: 2, Eps: 1e-6, PE: PEConfig{Name: "loope"}}
	if _, err := NewViT[float32](cfg, 1); err == nil || !strings.Contains(err.Error(), "needs at least 2×2 patches") {
		t.Errorf("grid 1: got %v", err)
	}
	cfg.Patch = 4
	m, err := NewViT[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	var tp Tape[float32]
	img := New[float32](1, 1, 8, 8)
	tp.Backward(tp.BCEWithLogits(m.Forward(&tp, img), New[float32](1, 2)))
}
