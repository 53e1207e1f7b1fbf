package loope

import (
	"math"
	"testing"
)

func TestReduceValues(t *testing.T) {
	var tp Tape[float64]
	x := FromData([]float64{1, 2, 3, 4, 5, 6}, 2, 3)
	if s := tp.Sum(x); len(s.Shape) != 0 || s.Shape == nil || s.Data[0] != 21 {
		t.Errorf("Sum = %v (shape %#v), want 21 with shape []int{}", s.Data, s.Shape)
	}
	if m := tp.Mean(x); len(m.Shape) != 0 || m.Data[0] != 3.5 {
		t.Errorf("Mean = %v, want 3.5", m.Data)
	}
	for _, c := range []struct {
		got   *Tensor[float64]
		shape []int
		want  []float64
	}{
		{tp.SumAxis(x, 0, false), []int{3}, []float64{5, 7, 9}},
		{tp.SumAxis(x, -1, true), []int{2, 1}, []float64{6, 15}},
		{tp.MeanAxis(x, 1, false), []int{2}, []float64{2, 5}},
		{tp.MeanAxis(x, -2, true), []int{1, 3}, []float64{2.5, 3.5, 4.5}},
	} {
		if !sameShape(c.got.Shape, c.shape) {
			t.Errorf("shape %v, want %v", c.got.Shape, c.shape)
			continue
		}
		for i, w := range c.want {
			if c.got.Data[i] != w {
				t.Errorf("got %v, want %v", c.got.Data, c.want)
				break
			}
		}
	}
	mustPanic(t, "loope: SumAxis: axis 2 out of range", func() { tp.SumAxis(x, 2, false) })
}

func TestSoftmaxValues(t *testing.T) {
	var tp Tape[float64]
	// Row 0 is row 1 shifted by +1000 and row 2 by −1000: softmax is shift
	// invariant, so all three rows must agree, with no Inf or NaN.
	x := FromData([]float64{
		1, 2, 3, 0.5,
		1001, 1002, 1003, 1000.5,
		-999, -998, -997, -999.5,
	}, 3, 4)
	y := tp.Softmax(x)
	// Row 0 by the definition e^x_j / Σ e^x_k.
	z := math.Exp(1) + math.Exp(2) + math.Exp(3) + math.Exp(0.5)
	for r := range 3 {
		s := 0.0
		for j := range 4 {
			v := y.Data[r*4+j]
			if want := math.Exp(x.Data[j]) / z; math.IsNaN(v) || math.Abs(v-want) > 1e-15 {
				t.Errorf("row %d elem %d: %v, want %v", r, j, v, want)
			}
			s += v
		}
		if math.Abs(s-1) > 1e-15 {
			t.Errorf("row %d sums to %v", r, s)
		}
	}
	var tp32 Tape[float32]
	y32 := tp32.Softmax(FromData([]float32{1000, -1000, 0, 1000}, 2, 2))
	if y32.Data[0] != 1 || y32.Data[1] != 0 || y32.Data[2] != 0 || y32.Data[3] != 1 {
		t.Errorf("float32 Softmax of ±1000 = %v, want [1 0 0 1]", y32.Data)
	}
}
