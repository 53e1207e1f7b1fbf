package loope

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestResizeBilinearProperties: resizing to the same size is the
// identity, a constant image stays constant at any size, and since every
// output is a convex combination of inputs, the backward preserves the
// sum of the output gradient.
func TestResizeBilinearProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tp Tape[float64]
	x := NewParam[float64](2, 3, 5, 7).FillNormal(rng, 0, 1)
	if y := tp.ResizeBilinear(x, 5, 7); !slices.Equal(y.Data, x.Data) {
		t.Errorf("same-size resize changed the image")
	}
	for _, size := range [][2]int{{75, 75}, {3, 4}, {9, 2}} {
		tp.Reset()
		c := NewParam[float64](1, 2, 5, 7)
		for i := range c.Data {
			c.Data[i] = 0.25
		}
		y := tp.ResizeBilinear(c, size[0], size[1])
		dy := make([]float64, len(y.Data))
		var sum float64
		for i := range y.Data {
			if math.Abs(y.Data[i]-0.25) > 1e-15 {
				t.Fatalf("%v: constant 0.25 became %v", size, y.Data[i])
			}
			dy[i] = rng.NormFloat64()
			sum += dy[i]
		}
		tp.backwardFrom(y, dy)
		var got float64
		for _, g := range c.Grad {
			got += g
		}
		if math.Abs(got-sum) > 1e-12*float64(len(dy)) {
			t.Errorf("%v: Σ dx = %v, Σ dy = %v", size, got, sum)
		}
	}
}
