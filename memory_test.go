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

// TestEstimateMeasuredMemory checks the measured estimate of the
// architectures without a formula: CrossViT counts both branches (a
// wider branch 1 costs more), the CNN reference models count their
// parameters exactly, activations grow with the batch, and a sweep with
// a -ref model is estimated at least at that model's size, times -jobs.
func TestEstimateMeasuredMemory(t *testing.T) {
	cv, _ := Preset("crossvit-tiny")
	wide := cv
	wide.Dim1, wide.MLP1 = 2*cv.Dim1, 2*cv.MLP1
	if a, b := EstimateTrainMemory(cv, 8, 1, 0), EstimateTrainMemory(wide, 8, 1, 0); b.Params <= a.Params || b.Activations <= a.Activations {
		t.Errorf("crossvit: a wider branch 1 does not cost more: %v vs %v", b, a)
	}
	if a, b := EstimateTrainMemory(cv, 8, 1, 0), EstimateTrainMemory(cv, 32, 1, 0); b.Activations <= a.Activations || b.Eval <= a.Eval {
		t.Errorf("crossvit: batch 32 (%v) not above batch 8 (%v)", b, a)
	}
	tiny, _ := Preset("tiny")
	rc, err := referenceConfig("resnet50", tiny)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewModel[float32](rc, 0)
	if err != nil {
		t.Fatal(err)
	}
	est := EstimateTrainMemory(rc, 4, 1, 0)
	if want := int64(NumParams(m)) * 4 * 2; est.Params != want || est.Optimizer != want {
		t.Errorf("resnet50: parameters %d, moments %d bytes, want %d each", est.Params, est.Optimizer, want)
	}
	sweep := ThreeCellBenchConfig{Model: tiny, Batch: 4, PEs: []string{"none"}, Seeds: []uint64{0}, Refs: []string{"resnet50"}, Jobs: 2}
	if got := sweep.EstimateMemory(); got.Params != 2*est.Params || got.Activations != 2*est.Activations {
		t.Errorf("sweep with -ref resnet50, 2 jobs: %v, want twice %v", got, est)
	}
}
