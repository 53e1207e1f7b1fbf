package loope

import "testing"

// TestFormatMeanStd checks the table cells: percent, one decimal, sample
// standard deviation (n−1).
func TestFormatMeanStd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		xs   []float64
		want string
	}{
		{nil, "–"},
		{[]float64{0.9371}, "93.7"},
		// mean 0.6; sample std √((0.1² + 0.1²)/1) = 0.141421…
		{[]float64{0.5, 0.7}, "60.0 ± 14.1"},
		// mean 0.92; deviations −0.02, 0, 0.02: √(0.0008/2) = 0.02
		{[]float64{0.90, 0.92, 0.94}, "92.0 ± 2.0"},
		{[]float64{0.8, 0.8, 0.8}, "80.0 ± 0.0"},
	} {
		if got := FormatMeanStd(tc.xs); got != tc.want {
			t.Errorf("FormatMeanStd(%v) = %q, want %q", tc.xs, got, tc.want)
		}
	}
	if m, s := meanStd([]float64{0.3}); m != 0.3 || s != 0 {
		t.Errorf("meanStd of one value = %v, %v, want 0.3, 0", m, s)
	}
}
