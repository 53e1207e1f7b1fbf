package loope

import (
	"math/rand/v2"
	"testing"
)

// TestTransposeSplit checks the batch split of the tiled transpose
// (forward and backward) against the definition, for 1, 2 and 3 threads.
func TestTransposeSplit(t *testing.T) {
	const b, m, n = 40, 33, 29 // b·m·n ≥ 2·parGrain: the parallel path
	rng := rand.New(rand.NewPCG(4, 4))
	x := NewParam[float32](b, m, n).FillNormal(rng, 0, 1)
	g := make([]float32, b*m*n)
	for i := range g {
		g[i] = float32(rng.NormFloat64())
	}
	for _, th := range []int{1, 2, 3} {
		withThreads(th, func() {
			ZeroGrad([]*Tensor[float32]{x})
			var tp Tape[float32]
			y := tp.Transpose(x, 1, 2) // (b, n, m)
			tp.backwardFrom(y, g)
			for bi := range b {
				for i := range m {
					for c := range n {
						src, dst := (bi*m+i)*n+c, (bi*n+c)*m+i
						if y.Data[dst] != x.Data[src] || x.Grad[src] != g[dst] {
							t.Fatalf("threads %d: item %d (%d, %d): y %v grad %v, want %v %v",
								th, bi, i, c, y.Data[dst], x.Grad[src], x.Data[src], g[dst])
						}
					}
				}
			}
		})
	}
}

func TestShapeOpValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	var tp Tape[float64]
	// Permute against an explicit index loop, on a shape big enough to
	// cross the 32-wide tiles of the last-two-axes fast path.
	x := randTensor(rng, 2, 33, 40)
	for _, perm := range [][]int{{0, 2, 1}, {1, 0, 2}, {2, 1, 0}, {1, 2, 0}} {
		y := tp.Permute(x, perm...)
		for i := range 2 {
			for j := range 33 {
				for k := range 40 {
					src := [3]int{i, j, k}
					if got, want := y.At(src[perm[0]], src[perm[1]], src[perm[2]]), x.At(i, j, k); got != want {
						t.Fatalf("perm %v at %v: %v, want %v", perm, src, got, want)
					}
				}
			}
		}
	}
	if y := tp.Transpose(x, 0, -1); !sameShape(y.Shape, []int{40, 33, 2}) || y.At(5, 7, 1) != x.At(1, 7, 5) {
		t.Errorf("Transpose(0, -1): shape %v", y.Shape)
	}
	// Split then Concat is the identity.
	parts := tp.Split(x, 1, 10, 0, 23)
	if !sameShape(parts[1].Shape, []int{2, 0, 40}) || !sameShape(parts[2].Shape, []int{2, 23, 40}) {
		t.Fatalf("Split shapes %v %v", parts[1].Shape, parts[2].Shape)
	}
	back := tp.Concat(-2, parts...)
	for i, v := range x.Data {
		if back.Data[i] != v {
			t.Fatalf("Concat(Split(x)) differs at %d", i)
		}
	}
	g := tp.Gather(x, -1, []int{39, 0, 39})
	if !sameShape(g.Shape, []int{2, 33, 3}) || g.At(1, 4, 0) != x.At(1, 4, 39) || g.At(1, 4, 1) != x.At(1, 4, 0) {
		t.Errorf("Gather wrong: shape %v", g.Shape)
	}
	mustPanic(t, "loope: Gather: index 40 out of range", func() { tp.Gather(x, 2, []int{40}) })
	mustPanic(t, "loope: Slice: range [3, 2)", func() { tp.Slice(x, 0, 3, 2) })
	mustPanic(t, "loope: Split: sizes [1 2]", func() { tp.Split(x, 0, 1, 2) })
	mustPanic(t, "loope: Permute: permutation [0 0 1]", func() { tp.Permute(x, 0, 0, 1) })
	mustPanic(t, "loope: Concat: shape [2 33 41]", func() { tp.Concat(1, x, New[float64](2, 33, 41)) })
}

func TestReshapeView(t *testing.T) {
	var tp Tape[float64]
	p := NewParam[float64](2, 6)
	for i := range p.Data {
		p.Data[i] = float64(i)
	}
	v := tp.Reshape(p, 3, -1)
	if !sameShape(v.Shape, []int{3, 4}) || &v.Data[0] != &p.Data[0] || &v.Grad[0] != &p.Grad[0] {
		t.Fatalf("Reshape is not a view: shape %v", v.Shape)
	}
	if tp.Len() != 0 {
		t.Errorf("Reshape recorded %d ops, want 0", tp.Len())
	}
	mustPanic(t, "loope: Reshape: cannot reshape [2 6] into [5 -1]", func() { tp.Reshape(p, 5, -1) })
	mustPanic(t, "loope: Reshape: bad shape [-1 -1]", func() { tp.Reshape(p, -1, -1) })
	// The arena must never write into a view's storage: after Reset, build
	// a step of ops whose outputs match the view's size and check that p is
	// untouched.
	want := append([]float64(nil), p.Data...)
	for step := range 3 {
		tp.Reset()
		if step == 0 {
			tp.Reshape(p, 12)
		}
		a := tp.New(12)
		b := tp.AddScalar(tp.Reshape(a, 3, 4), 7)
		tp.Backward(tp.Sum(tp.Mul(b, b)))
		for i, w := range want {
			if p.Data[i] != w || p.Grad[i] != 0 {
				t.Fatalf("step %d: p changed at %d: data %v grad %v", step, i, p.Data[i], p.Grad[i])
			}
		}
	}
	tp.NoGrad = true
	if v := tp.Reshape(p, 12); v.Grad != nil {
		t.Error("Reshape in no-grad mode carries a Grad")
	}
}
