package loope

import (
	"strings"
	"testing"
)

// TestInception3Size: torchvision's inception_v3 has 27,161,264 parameters
// with the aux head (Inception_V3_Weights meta), whose 3,326,696 (conv0
// 768→128 1×1 and BN, conv1 128→768 5×5 and BN, fc 768→1000) leave
// 23,834,568; inception3Size counts them plus the BatchNorm buffers.
func TestInception3Size(t *testing.T) {
	cfg := Config{Arch: "inception3", Image: 299, Channels: 3, Classes: 1000}
	m, err := NewInception3[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := NumParams[float32](m); n != 23834568 {
		t.Errorf("NumParams %d, torchvision without aux 23834568", n)
	}
	var all int64
	for _, p := range m.Params() {
		all += int64(p.T.Size())
	}
	if s := inception3Size(cfg); s != all {
		t.Errorf("inception3Size %d, model holds %d", s, all)
	}
	if p := m.Params(); p[0].Name != "Conv2d_1a_3x3.conv.weight" || p[len(p)-3].Name != "Mixed_7c.branch_pool.bn.running_var" {
		t.Errorf("names %s … %s", p[0].Name, p[len(p)-3].Name)
	}
}

// TestInception3BadConfig: bad configs are errors naming the field.
func TestInception3BadConfig(t *testing.T) {
	_, err := NewModel[float32](Config{Arch: "inception3", Image: 16, Channels: 3, Classes: 4, MLP: 3}, 1)
	if err == nil || !strings.Contains(err.Error(), "has no patch, dim") {
		t.Errorf("error %v", err)
	}
}
