package loope

import (
	"math/rand/v2"
	"testing"
)

// TestTakeAlongLastValues checks the op against the defining loop.
func TestTakeAlongLastValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := New[float64](2, 3, 4, 5).FillUniform(rng, -1, 1)
	const cols = 6
	idx := make([]int, 4*cols)
	for i := range idx {
		idx[i] = rng.IntN(5)
	}
	var tp Tape[float64]
	out := tp.TakeAlongLast(x, idx, cols)
	if want := []int{2, 3, 4, cols}; !sameShape(out.Shape, want) {
		t.Fatalf("shape %v, want %v", out.Shape, want)
	}
	for o := range 6 {
		for m := range 4 {
			for j := range cols {
				got, want := out.Data[(o*4+m)*cols+j], x.Data[(o*4+m)*5+idx[m*cols+j]]
				if got != want {
					t.Fatalf("out[%d, %d, %d] = %v, want %v", o, m, j, got, want)
				}
			}
		}
	}
}

func TestTakeAlongLastPanics(t *testing.T) {
	var tp Tape[float64]
	x := New[float64](2, 3)
	for name, f := range map[string]func(){
		"length": func() { tp.TakeAlongLast(x, []int{0, 1, 2}, 1) },
		"range":  func() { tp.TakeAlongLast(x, []int{0, 3}, 1) },
		"rank":   func() { tp.TakeAlongLast(New[float64](3), []int{0}, 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
