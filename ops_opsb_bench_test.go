package loope

// Benchmarks of the opsb ops at ViT-Tiny sizes (docs/pe-zoo.md §0: 224/16, N = 197,
// D = 192, H = 3, Dh = 64) with a batch of 8, float32, forward + backward on a
// reused tape (so allocs/op shows the steady state).

import (
	"math/rand/v2"
	"testing"
)

func benchOpsb(b *testing.B, shapes [][]int, build func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32]) {
	rng := rand.New(rand.NewPCG(1, 2))
	in := make([]*Tensor[float32], len(shapes))
	for i, s := range shapes {
		in[i] = NewParam[float32](s...).FillUniform(rng, -1, 1)
	}
	var tp Tape[float32]
	var seed []float32
	for b.Loop() {
		tp.Reset()
		out := build(&tp, in)
		if seed == nil {
			seed = New[float32](out.Shape...).FillUniform(rng, -1, 1).Data
		}
		tp.backwardFrom(out, seed)
	}
}

func BenchmarkLayerNorm(b *testing.B) {
	b.ReportAllocs()
	benchOpsb(b, [][]int{{8, 197, 192}, {192}, {192}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.LayerNorm(in[0], in[1], in[2], 1e-6)
	})
}

func BenchmarkAttention(b *testing.B) {
	b.ReportAllocs()
	s := []int{8, 3, 197, 64}
	benchOpsb(b, [][]int{s, s, s}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.Attention(in[0], in[1], in[2], nil, 0.125)
	})
}

func BenchmarkAttentionSharedBias(b *testing.B) {
	b.ReportAllocs()
	s := []int{8, 3, 197, 64}
	benchOpsb(b, [][]int{s, s, s, {3, 197, 197}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.Attention(in[0], in[1], in[2], in[3], 0.125)
	})
}

func BenchmarkRotate(b *testing.B) {
	b.ReportAllocs()
	benchOpsb(b, [][]int{{8, 3, 197, 64}, {3, 196, 32}, {3, 196, 32}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.Rotate(in[0], in[1], in[2], 1)
	})
}

func BenchmarkConv2dPatchify(b *testing.B) {
	b.ReportAllocs()
	benchOpsb(b, [][]int{{8, 3, 224, 224}, {192, 3, 16, 16}, {192}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.Conv2d(in[0], in[1], in[2], 16, 0, 1)
	})
}

func BenchmarkConv2dDepthwise3x3(b *testing.B) {
	b.ReportAllocs()
	benchOpsb(b, [][]int{{8, 192, 14, 14}, {192, 1, 3, 3}, {192}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.Conv2d(in[0], in[1], in[2], 1, 1, 192)
	})
}

func BenchmarkConv2d5x5(b *testing.B) {
	b.ReportAllocs()
	benchOpsb(b, [][]int{{8, 16, 14, 14}, {16, 16, 5, 5}, {16}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.Conv2d(in[0], in[1], in[2], 1, 2, 1)
	})
}

func BenchmarkBatchNorm2d(b *testing.B) {
	b.ReportAllocs()
	rm, rv := New[float32](16), New[float32](16).FillUniform(rand.New(rand.NewPCG(3, 3)), 0.5, 1.5)
	benchOpsb(b, [][]int{{8, 16, 14, 14}, {16}, {16}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.BatchNorm2d(in[0], in[1], in[2], rm, rv, 0.1, 1e-5, true)
	})
}
