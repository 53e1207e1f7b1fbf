package loope

import (
	"path/filepath"
	"strings"
	"testing"
)

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
