package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestRotateForward(t *testing.T) {
	const B, H, N, Dh = 2, 3, 5, 6
	rng := rand.New(rand.NewPCG(4, 1))
	x := randOf[float64](rng, B, H, N, Dh)
	for _, hc := range []int{1, H} {
		for _, skip := range []int{0, 1} {
			nr := N - skip
			cos, sin := New[float64](hc, nr, Dh/2), New[float64](hc, nr, Dh/2)
			for i := range cos.Data {
				phi := 4 * rng.Float64()
				cos.Data[i], sin.Data[i] = math.Cos(phi), math.Sin(phi)
			}
			var tp Tape[float64]
			y := tp.Rotate(x, cos, sin, skip)
			for bi := range B {
				for h := range H {
					for n := range N {
						for j := range Dh / 2 {
							a, b := x.At(bi, h, n, 2*j), x.At(bi, h, n, 2*j+1)
							wa, wb := a, b
							if n >= skip {
								c, s := cos.At(h%hc, n-skip, j), sin.At(h%hc, n-skip, j)
								wa, wb = a*c-b*s, a*s+b*c
							}
							ga, gb := y.At(bi, h, n, 2*j), y.At(bi, h, n, 2*j+1)
							if math.Abs(ga-wa) > 1e-15 || math.Abs(gb-wb) > 1e-15 {
								t.Fatalf("Hc=%d skip=%d (%d,%d,%d,%d): (%g, %g), want (%g, %g)", hc, skip, bi, h, n, j, ga, gb, wa, wb)
							}
							// A rotation keeps the pair's length.
							if math.Abs(math.Hypot(ga, gb)-math.Hypot(a, b)) > 1e-14 {
								t.Fatalf("Hc=%d skip=%d: rotation changed a pair's norm", hc, skip)
							}
						}
					}
				}
			}
		}
	}
}

func BenchmarkRotate(b *testing.B) {
	b.ReportAllocs()
	benchOp(b, [][]int{{8, 3, 197, 64}, {3, 196, 32}, {3, 196, 32}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.Rotate(in[0], in[1], in[2], 1)
	})
}
