package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBinaryFlatSplit checks the element split of same-shape and
// scalar-broadcast binary ops (parallel, 2 and 3 threads) against the
// single-run path (1 thread), bit for bit, forward and backward.
func TestBinaryFlatSplit(t *testing.T) {
	const n = 2*parGrain + 37 // odd, above the serial cut
	rng := rand.New(rand.NewPCG(9, 9))
	for op := range binaryNames {
		for _, bShape := range [][]int{{n}, {1}} {
			a := NewParam[float32](n).FillNormal(rng, 0, 1)
			b := NewParam[float32](bShape...).FillNormal(rng, 2, 0.1)
			g := make([]float32, n)
			for i := range g {
				g[i] = float32(rng.NormFloat64())
			}
			var ref []float32
			for _, th := range []int{1, 2, 3} {
				var got []float32
				withThreads(th, func() {
					ZeroGrad([]*Tensor[float32]{a, b})
					var tp Tape[float32]
					y := tp.binary(op, a, b)
					tp.backwardFrom(y, g)
					got = append(append(append([]float32(nil), y.Data...), a.Grad...), b.Grad...)
				})
				if th == 1 {
					ref = got
					continue
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
						t.Errorf("%s b%v: %d threads element %d %v, 1 thread %v", binaryNames[op], bShape, th, i, got[i], ref[i])
						break
					}
				}
			}
		}
	}
}

// naiveBroadcast computes op elementwise by explicit NumPy index mapping.
func naiveBroadcast(op int, a, b *Tensor[float64], out []int) []float64 {
	r := len(out)
	n := numel("test", out)
	res := make([]float64, n)
	idx := make([]int, r)
	for e := range n {
		rem := e
		for k := r - 1; k >= 0; k-- {
			idx[k] = rem % out[k]
			rem /= out[k]
		}
		at := func(t *Tensor[float64]) float64 {
			off := 0
			for k, d := range t.Shape {
				i := idx[k+r-len(t.Shape)]
				if d == 1 {
					i = 0
				}
				off = off*d + i
			}
			return t.Data[off]
		}
		x, y := at(a), at(b)
		switch op {
		case opAdd:
			res[e] = x + y
		case opSub:
			res[e] = x - y
		case opMul:
			res[e] = x * y
		default:
			res[e] = x / y
		}
	}
	return res
}

func TestBroadcastForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	cases := []struct{ a, b, out []int }{
		{[]int{2, 3, 4}, []int{2, 3, 4}, []int{2, 3, 4}},
		{[]int{2, 3, 4}, []int{4}, []int{2, 3, 4}},
		{[]int{2, 3, 4}, []int{3, 4}, []int{2, 3, 4}},
		{[]int{3, 4}, []int{2, 3, 4}, []int{2, 3, 4}},
		{[]int{2, 1, 4}, []int{3, 1}, []int{2, 3, 4}},
		{[]int{3, 1}, []int{1, 4}, []int{3, 4}},
		{[]int{}, []int{2, 3}, []int{2, 3}},
		{[]int{}, []int{}, []int{}},
		{[]int{1, 1}, []int{1}, []int{1, 1}},
		{[]int{2, 3, 4}, []int{2, 3, 1}, []int{2, 3, 4}},
		{[]int{2, 1, 3, 1, 2}, []int{4, 1, 5, 2}, []int{2, 4, 3, 5, 2}},
		{[]int{1, 5, 1, 6}, []int{7, 1, 3, 1}, []int{7, 5, 3, 6}},
		{[]int{0, 3}, []int{3}, []int{0, 3}},
	}
	for _, c := range cases {
		for op := range 4 {
			a, b := randTensor(rng, c.a...), randTensor(rng, c.b...)
			var tp Tape[float64]
			got := tp.binary(op, a, b)
			if !sameShape(got.Shape, c.out) {
				t.Fatalf("%s %v, %v: shape %v, want %v", binaryNames[op], c.a, c.b, got.Shape, c.out)
			}
			want := naiveBroadcast(op, a, b, c.out)
			for i := range want {
				if got.Data[i] != want[i] {
					t.Fatalf("%s %v, %v: elem %d = %v, want %v", binaryNames[op], c.a, c.b, i, got.Data[i], want[i])
				}
			}
		}
	}
	mustPanic(t, "loope: Add: cannot broadcast", func() {
		var tp Tape[float64]
		tp.Add(New[float64](2, 3), New[float64](2))
	})
	mustPanic(t, "loope: AddBias: shape mismatch", func() {
		var tp Tape[float64]
		tp.AddBias(New[float64](2, 3), New[float64](2))
	})
}

// TestParallelBitIdentical checks that kernels that split over threads
// give bit-identical values and gradients for 1 and 4 threads, on tensors
// large enough to take the parallel paths.
func TestParallelBitIdentical(t *testing.T) {
	defer SetThreads(Threads())
	run := func(threads int) (vals, grads [][]float32) {
		SetThreads(threads)
		rng := rand.New(rand.NewPCG(3, 3))
		x := NewParam[float32](8, 96, 64)
		x.FillNormal(rng, 0, 1)
		bias := NewParam[float32](64)
		bias.FillNormal(rng, 0, 1)
		rowScale := NewParam[float32](8, 96, 1)
		rowScale.FillNormal(rng, 1, 0.1)
		var tp Tape[float32]
		h := tp.GELU(tp.Mul(tp.AddBias(x, bias), rowScale))
		s := tp.Softmax(tp.Div(h, rowScale))
		y := tp.Sub(tp.Tanh(s), h)
		tp.Backward(tp.Mean(tp.Mul(y, y)))
		return [][]float32{h.Data, s.Data, y.Data}, [][]float32{x.Grad, bias.Grad, rowScale.Grad}
	}
	v1, g1 := run(1)
	v4, g4 := run(4)
	for k := range v1 {
		for i := range v1[k] {
			if math.Float32bits(v1[k][i]) != math.Float32bits(v4[k][i]) {
				t.Fatalf("value %d elem %d: %v (1 thread) vs %v (4 threads)", k, i, v1[k][i], v4[k][i])
			}
		}
	}
	for k := range g1 {
		for i := range g1[k] {
			if math.Float32bits(g1[k][i]) != math.Float32bits(g4[k][i]) {
				t.Fatalf("grad %d elem %d: %v (1 thread) vs %v (4 threads)", k, i, g1[k][i], g4[k][i])
			}
		}
	}
}

// BenchmarkBinary times the forward and backward of Add and Mul on the
// broadcast patterns a ViT uses.
func BenchmarkBinary(b *testing.B) {
	for _, c := range []struct {
		name string
		a, b []int
	}{
		{"same=8x64x192", []int{8, 64, 192}, []int{8, 64, 192}},
		{"suffix=8x64x192+192", []int{8, 64, 192}, []int{192}},
		{"suffix=8x64x192+64x192", []int{8, 64, 192}, []int{64, 192}},
		{"rowwise=8x64x192*8x64x1", []int{8, 64, 192}, []int{8, 64, 1}},
	} {
		rng := rand.New(rand.NewPCG(1, 2))
		x := NewParam[float32](c.a...).FillNormal(rng, 0, 1)
		y := NewParam[float32](c.b...).FillNormal(rng, 0, 1)
		var tp Tape[float32]
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(4 * 3 * len(x.Data)))
			for b.Loop() {
				tp.Reset()
				tp.Backward(tp.Sum(tp.Mul(tp.Add(x, y), y)))
			}
		})
	}
}
