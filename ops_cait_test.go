package loope

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCaitOpsIdentities: HeadMix with the identity mix and zero bias,
// and LayerScale with γ = 0, return their input; ClassAttention over a
// single key returns its value (the softmax of one logit is 1).
func TestCaitOpsIdentities(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var tp Tape[float64]
	x := NewParam[float64](2, 3, 4, 5).FillNormal(rng, 0, 1)
	w, bias := New[float64](3, 3), New[float64](3)
	for h := range 3 {
		w.Data[h*3+h] = 1
	}
	if y := tp.HeadMix(x, w, bias); !slices.Equal(y.Data, x.Data) {
		t.Errorf("HeadMix with the identity changed x")
	}
	y := New[float64](2, 4, 5).FillNormal(rng, 0, 1)
	x3 := New[float64](2, 4, 5).FillNormal(rng, 0, 1)
	if out := tp.LayerScale(x3, y, New[float64](5)); !slices.Equal(out.Data, x3.Data) {
		t.Errorf("LayerScale with γ = 0 is not x")
	}
	q := New[float64](2, 3, 1, 4).FillNormal(rng, 0, 1)
	k := New[float64](2, 3, 1, 4).FillNormal(rng, 0, 1)
	v := New[float64](2, 3, 1, 4).FillNormal(rng, 0, 1)
	if out := tp.ClassAttention(q, k, v, 0.5); !slices.Equal(out.Data, v.Data) {
		t.Errorf("ClassAttention over one key = %v, want v %v", out.Data, v.Data)
	}
}
