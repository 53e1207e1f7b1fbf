package loope

import (
	"runtime"
	"testing"
)

// TestEstimateTrainMemory checks that the estimate grows with what a run
// holds: the batch, the image size (activations) and the data.
func TestEstimateTrainMemory(t *testing.T) {
	small, _ := Preset("small")
	ti16, _ := Preset("ti16")
	base := EstimateTrainMemory(small, 32, 1, 0).Total()
	if base <= 0 {
		t.Fatalf("estimate %d bytes", base)
	}
	for _, c := range []struct {
		what string
		est  int64
	}{
		{"batch 64", EstimateTrainMemory(small, 64, 1, 0).Total()},
		{"ti16", EstimateTrainMemory(ti16, 32, 1, 0).Total()},
		{"1 GB of data", EstimateTrainMemory(small, 32, 1, 1<<30).Total()},
	} {
		if c.est <= base {
			t.Errorf("%s: estimate %s, not above the base %s", c.what, GB(c.est), GB(base))
		}
	}
}

// TestAvailableMemory checks that Linux reports a positive amount and
// names its source.
func TestAvailableMemory(t *testing.T) {
	b, src, ok := AvailableMemory()
	if runtime.GOOS != "linux" {
		t.Skipf("%s: available memory is read on Linux only (got %d, %q, %v)", runtime.GOOS, b, src, ok)
	}
	if !ok || b <= 0 || src == "" {
		t.Errorf("AvailableMemory() = %d, %q, %v", b, src, ok)
	}
}
