package loope

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCrossViTOpsIdentities: ResizeBicubic to the same size is the
// identity and keeps a constant image constant at another size (the
// cubic weights sum to 1); CrossAttention over a single key returns its
// value.
func TestCrossViTOpsIdentities(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var tp Tape[float64]
	x := NewParam[float64](2, 3, 6, 6).FillNormal(rng, 0, 1)
	if y := tp.ResizeBicubic(x, 6, 6); !slices.Equal(y.Data, x.Data) {
		t.Errorf("same-size bicubic resize changed the image")
	}
	c := New[float64](1, 1, 6, 6)
	for i := range c.Data {
		c.Data[i] = 0.5
	}
	for _, v := range tp.ResizeBicubic(c, 11, 4).Data {
		if math.Abs(v-0.5) > 1e-15 {
			t.Fatalf("constant 0.5 became %v", v)
		}
	}
	q := New[float64](2, 3, 1, 4).FillNormal(rng, 0, 1)
	k := New[float64](2, 3, 1, 4).FillNormal(rng, 0, 1)
	v := New[float64](2, 3, 1, 4).FillNormal(rng, 0, 1)
	if out := tp.CrossAttention(q, k, v, 0.5); !slices.Equal(out.Data, v.Data) {
		t.Errorf("CrossAttention over one key = %v, want v %v", out.Data, v.Data)
	}
}
