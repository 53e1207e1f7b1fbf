package loope

import (
	"math"
	"testing"
)

// TestFreqDelta checks Δf_j = ‖f_j − f_1‖ / ‖f_1‖ at D = 4, where each set
// has the two entries f(0) = 1 and f(1) (docs/paper.md §9, L = D = 4):
// f1(1) = 0.978, f2(1) = 1 − 0.9999/3, f3(1) = 0.9.
func TestFreqDelta(t *testing.T) {
	t.Parallel()
	d, err := FreqDelta(4)
	if err != nil {
		t.Fatal(err)
	}
	norm := math.Sqrt(1 + 0.978*0.978)
	want := [4]float64{0, math.Abs(1-0.9999/3-0.978) / norm, math.Abs(0.9-0.978) / norm}
	for j := range 3 {
		if math.Abs(d[j]-want[j]) > 1e-12 {
			t.Errorf("Δf_%d = %.15g, want %.15g", j+1, d[j], want[j])
		}
	}
	if !(d[3] > 0) {
		t.Errorf("Δf_4 = %g, want > 0", d[3])
	}
}
