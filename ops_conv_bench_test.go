package loope

// Benchmarks of Conv2d at the shapes the `small` preset trains with (batch
// 64, image 28, patch 2, so a 14×14 grid): LOOPE's five convolutions of
// [img, rowmap, colmap] (loope.go convs) and the ViT patch embedding
// (vit.go), float32, forward + backward on a reused tape, reporting the
// process CPU time per op (user + system, all threads) beside wall time.

import (
	"math/rand/v2"
	"testing"
)

// conv2dSmallCases are the Conv2d calls of one `small` LOOPE training step.
// xGrad says whether the input needs a gradient: the first LOOPE conv and the
// patch embedding read the images (and constant coordinate maps) only.
var conv2dSmallCases = []struct {
	name                string
	x, w                []int
	stride, pad, groups int
	xGrad               bool
}{
	{"loope1-5to32-k2s2", []int{64, 5, 28, 28}, []int{32, 5, 2, 2}, 2, 0, 1, false},
	{"loope2-32to16-k5p2", []int{64, 32, 14, 14}, []int{16, 32, 5, 5}, 1, 2, 1, true},
	{"loope3-16to8-k5p2", []int{64, 16, 14, 14}, []int{8, 16, 5, 5}, 1, 2, 1, true},
	{"loope4-8to4-k5p2", []int{64, 8, 14, 14}, []int{4, 8, 5, 5}, 1, 2, 1, true},
	{"loope5-4to1-k5p2", []int{64, 4, 14, 14}, []int{1, 4, 5, 5}, 1, 2, 1, true},
	{"patch-3to64-k2s2", []int{64, 3, 28, 28}, []int{64, 3, 2, 2}, 2, 0, 1, false},
}

func BenchmarkConv2dSmall(b *testing.B) {
	for _, c := range conv2dSmallCases {
		b.Run("conv="+c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			x := New[float32](c.x...).FillUniform(rng, -1, 1)
			if c.xGrad {
				x = NewParam[float32](c.x...).FillUniform(rng, -1, 1)
			}
			w := NewParam[float32](c.w...).FillUniform(rng, -1, 1)
			bias := NewParam[float32](c.w[0]).FillUniform(rng, -1, 1)
			var tp Tape[float32]
			var seed []float32
			step := func() {
				tp.Reset()
				out := tp.Conv2d(x, w, bias, c.stride, c.pad, c.groups)
				if seed == nil {
					seed = New[float32](out.Shape...).FillUniform(rng, -1, 1).Data
				}
				tp.backwardFrom(out, seed)
			}
			step() // warm-up: the tape's arena reaches its steady state
			b.ReportAllocs()
			cpu0 := processCPUTime()
			for b.Loop() {
				step()
			}
			if cpu := processCPUTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			}
		})
	}
}
