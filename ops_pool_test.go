package loope

import (
	"slices"
	"testing"
)

// TestPoolValues checks the pooling ops on hand-computed cases, forward
// and backward: MaxPool2d routes each gradient to its window's maximum
// (the first one in row-major order on ties, as PyTorch), AvgPool2d
// divides by the window with or without the zero padding, and
// GlobalAvgPool2d is the plane's mean.
func TestPoolValues(t *testing.T) {
	var tp Tape[float64]
	x := NewParam[float64](1, 1, 3, 3)
	copy(x.Data, []float64{1, 2, 3, 4, 9, 6, 7, 8, 5})
	y := tp.MaxPool2d(x, 2, 1, 0) // windows of 2×2 at stride 1
	if want := []float64{9, 9, 9, 9}; !slices.Equal(y.Data, want) {
		t.Errorf("MaxPool2d = %v, want %v", y.Data, want)
	}
	tp.backwardFrom(y, []float64{1, 2, 3, 4})
	if want := []float64{0, 0, 0, 0, 10, 0, 0, 0, 0}; !slices.Equal(x.Grad, want) {
		t.Errorf("MaxPool2d dx = %v, want %v (all to the centre)", x.Grad, want)
	}

	ones := NewParam[float64](1, 1, 2, 2)
	copy(ones.Data, []float64{1, 1, 1, 1})
	for _, c := range []struct {
		countPad bool
		want     float64
	}{{true, 4.0 / 9}, {false, 1}} {
		tp.Reset()
		clear(ones.Grad)
		y := tp.AvgPool2d(ones, 3, 1, 1, c.countPad) // every 3×3 window holds the 4 ones
		for _, v := range y.Data {
			if v != c.want {
				t.Fatalf("AvgPool2d count_include_pad %v = %v, want %v each", c.countPad, y.Data, c.want)
			}
		}
		tp.backwardFrom(y, []float64{1, 1, 1, 1})
		for _, g := range ones.Grad { // each input is in all 4 windows, each giving 1/divisor = want/4
			if g != c.want {
				t.Fatalf("AvgPool2d count_include_pad %v dx = %v, want %v each", c.countPad, ones.Grad, c.want)
			}
		}
	}

	tp.Reset()
	clear(x.Grad)
	g := tp.GlobalAvgPool2d(x)
	if len(g.Shape) != 2 || g.Shape[0] != 1 || g.Shape[1] != 1 || g.Data[0] != 5 {
		t.Errorf("GlobalAvgPool2d = %v %v, want (1, 1) [5]", g.Shape, g.Data)
	}
	tp.backwardFrom(g, []float64{9})
	for _, v := range x.Grad {
		if v != 1 {
			t.Fatalf("GlobalAvgPool2d dx = %v, want 1 each", x.Grad)
		}
	}
}
