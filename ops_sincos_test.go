package loope

import (
	"math"
	"testing"
)

// The SinCos rows of gradCases live here, next to the op's other tests, so
// that branches adding ops do not edit the same lines of gradcheck_test.go.
func init() {
	gradCases = append(gradCases,
		gradCase{name: "SinCos", shapes: [][]int{{2, 3, 4}}, init: uniformInit(-4, 4), build: unaryCase((*Tape[float64]).SinCos)},
		gradCase{name: "SinCos/vector", shapes: [][]int{{5}}, init: uniformInit(-200, 200), build: unaryCase((*Tape[float64]).SinCos)},
	)
}

// TestSinCosValues: interleaved layout, shape (..., 2K), and agreement
// with Sinusoid1D when fed positions × Vaswani frequencies.
func TestSinCosValues(t *testing.T) {
	pos := []float64{0, 1, 5, 196.25}
	const dim = 8
	w := VaswaniFreqs(dim)
	x := New[float64](len(pos), dim/2)
	for p, v := range pos {
		for i, om := range w {
			x.Data[p*dim/2+i] = v * om
		}
	}
	var tp Tape[float64]
	y := tp.SinCos(x)
	if len(y.Shape) != 2 || y.Shape[0] != len(pos) || y.Shape[1] != dim {
		t.Fatalf("shape %v, want [%d %d]", y.Shape, len(pos), dim)
	}
	want := Sinusoid1D(pos, dim, nil)
	for i, v := range want {
		if math.Abs(y.Data[i]-v) > 1e-15 {
			t.Errorf("element %d: got %v, want %v", i, y.Data[i], v)
		}
	}
}

func TestSinCosScalarPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("SinCos of a rank-0 tensor did not panic")
		}
	}()
	var tp Tape[float64]
	tp.SinCos(New[float64]())
}
