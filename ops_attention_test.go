package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestAttentionForward(t *testing.T) {
	const B, H, N, Dh, scale = 2, 3, 5, 4, 0.5
	rng := rand.New(rand.NewPCG(3, 1))
	q, k, v := randOf[float64](rng, B, H, N, Dh), randOf[float64](rng, B, H, N, Dh), randOf[float64](rng, B, H, N, Dh)
	for _, bshape := range [][]int{nil, {H, N, N}, {B, H, N, N}} {
		var bias *Tensor[float64]
		if bshape != nil {
			bias = randOf[float64](rng, bshape...)
		}
		// Unfused: (q·scale)·kᵀ with BatchMatMul, bias, softmax, ·v.
		var tp Tape[float64]
		qs := q.Clone()
		for i := range qs.Data {
			qs.Data[i] *= scale
		}
		s := tp.BatchMatMul(qs, k, false, true)
		for i := range s.Data {
			if bias != nil {
				s.Data[i] += bias.Data[i%bias.Size()]
			}
		}
		RefSoftmax(s.Data, s.Data, N)
		want := tp.BatchMatMul(s, v, false, false)
		got := tp.Attention(q, k, v, bias, scale)
		if d := maxDiff(got.Data, want.Data); d > 1e-14 {
			t.Errorf("bias %v: fused vs unfused max |diff| %g", bshape, d)
		}
	}
}

// TestHeadsMatchPermute checks QKVHeads and MergeHeads against the
// Reshape/Permute/Split chain they replace (timm's view of the same copy),
// values and gradients, bit for bit, on a small shape (serial) and a large
// one (split over threads).
func TestHeadsMatchPermute(t *testing.T) {
	for _, sz := range []struct{ b, n, h, dh int }{{2, 3, 2, 4}, {8, 65, 4, 32}} {
		b, n, h, dh := sz.b, sz.n, sz.h, sz.dh
		d := h * dh
		rng := rand.New(rand.NewPCG(7, uint64(n)))
		x := NewParam[float32](b, n, 3*d).FillNormal(rng, 0, 1)
		seed := New[float32](4, b, h, n, dh).FillNormal(rng, 0, 1)
		run := func(fused bool) (vals, grad []float32) {
			x.ZeroGrad()
			var tp Tape[float32]
			var q, k, v *Tensor[float32]
			if fused {
				q, k, v = tp.QKVHeads(x, h)
			} else {
				p := tp.Split(tp.Permute(tp.Reshape(x, b, n, 3, h, dh), 2, 0, 3, 1, 4), 0, 1, 1, 1)
				q, k, v = tp.Reshape(p[0], b, h, n, dh), tp.Reshape(p[1], b, h, n, dh), tp.Reshape(p[2], b, h, n, dh)
			}
			// Mix the heads through MergeHeads (or its Permute) so both ops are covered.
			var m *Tensor[float32]
			if fused {
				m = tp.MergeHeads(tp.Mul(q, k))
			} else {
				m = tp.Reshape(tp.Permute(tp.Mul(q, k), 0, 2, 1, 3), b, n, d)
			}
			r := func(a *Tensor[float32]) *Tensor[float32] { return tp.Reshape(a, 1, b, h, n, dh) }
			out := tp.Concat(0, r(q), r(k), r(v), r(m))
			tp.backwardFrom(out, seed.Data)
			return slices.Clone(out.Data), slices.Clone(x.Grad)
		}
		fv, fg := run(true)
		pv, pg := run(false)
		if !slices.Equal(fv, pv) || !slices.Equal(fg, pg) {
			t.Errorf("size %v: QKVHeads/MergeHeads differ from the Permute path (values equal %v, grads equal %v)",
				sz, slices.Equal(fv, pv), slices.Equal(fg, pg))
		}
	}
}

// runAttentionWith runs Attention forward and backward (seeded with a random
// output gradient) with the float32 fast-path kernel set to kn, or, with kn
// nil, on the gemmSerial path with A always packed (so that gemmDirect is not
// on the reference path), and returns the output followed by the gradients
// of q, k, v and bias (which start nonzero). biasMode is 0 (none), 1 (H, N, N) or 2 (B, H, N, N).
func runAttentionWith(kn *gemmKernel[float32], b, h, n, dh, biasMode int, seed uint64) []float32 {
	defer func(k *gemmKernel[float32]) { attentionKernelF32 = k }(attentionKernelF32)
	attentionKernelF32 = kn
	if kn == nil {
		sel := kernelFor[float32]()
		defer func(d [2]int) { sel.directMaxN = d }(sel.directMaxN)
		sel.directMaxN = [2]int{}
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	in := []*Tensor[float32]{NewParam[float32](b, h, n, dh), NewParam[float32](b, h, n, dh), NewParam[float32](b, h, n, dh)}
	switch biasMode {
	case 1:
		in = append(in, NewParam[float32](h, n, n))
	case 2:
		in = append(in, NewParam[float32](b, h, n, n))
	}
	for _, x := range in {
		x.FillUniform(rng, -2, 2)
		for i := range x.Grad { // gradients accumulate: start from nonzero values
			x.Grad[i] = float32(2*rng.Float64() - 1)
		}
	}
	var bias *Tensor[float32]
	if biasMode > 0 {
		bias = in[3]
	}
	var tp Tape[float32]
	out := tp.Attention(in[0], in[1], in[2], bias, 1/math.Sqrt(float64(dh)))
	g := New[float32](out.Shape...).FillUniform(rng, -1, 1)
	tp.backwardFrom(out, g.Data)
	res := append([]float32(nil), out.Data...)
	for _, x := range in {
		res = append(res, x.Grad...)
	}
	return res
}

// TestAttentionFastPath compares the float32 fast path (in-place kernels,
// Dh % 16 == 0), with the assembly kernel when present and with its plain-Go
// twin, against the packed path on the output and every gradient: within
// 1e-5 of the largest magnitude of each result, over token counts around
// the 6-row tile and the 16-column panel and the `small` preset's 197.
func TestAttentionFastPath(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(2)
	kns := []*gemmKernel[float32]{goKernel6x16For[float32]()}
	if attentionKernelF32 != nil {
		kns = append(kns, attentionKernelF32)
	}
	for _, n := range []int{1, 5, 6, 7, 17, 197} {
		for _, dh := range []int{16, 32, 64} {
			for biasMode := range 3 {
				b, h := 2, 3
				if n*n*dh > 1<<20 {
					b, h = 1, 2
				}
				seed := uint64(n*1000 + dh*10 + biasMode)
				want := runAttentionWith(nil, b, h, n, dh, biasMode, seed)
				scale := 0.0
				for _, v := range want {
					scale = max(scale, math.Abs(float64(v)))
				}
				for _, kn := range kns {
					name := fmt.Sprintf("%s n=%d dh=%d bias=%d", kn.name, n, dh, biasMode)
					got := runAttentionWith(kn, b, h, n, dh, biasMode, seed)
					if len(got) != len(want) {
						t.Fatalf("%s: %d results, want %d", name, len(got), len(want))
					}
					for i := range got {
						if d := math.Abs(float64(got[i] - want[i])); !(d <= 1e-5*scale) {
							t.Fatalf("%s: result %d = %v, packed path %v (|diff| %g, max |value| %g)", name, i, got[i], want[i], d, scale)
						}
					}
				}
			}
		}
	}
}

// TestAttentionKernelChoice checks which products take the fast path.
func TestAttentionKernelChoice(t *testing.T) {
	defer func(k *gemmKernel[float32]) { attentionKernelF32 = k }(attentionKernelF32)
	attentionKernelF32 = goKernel6x16For[float32]()
	for _, c := range []struct {
		n, dh int
		fast  bool
	}{{197, 16, true}, {197, 64, true}, {1, 32, true}, {197, 8, false}, {197, 24, false}, {0, 16, false}, {5, 0, false}} {
		if got := attentionKernel[float32](c.n, c.dh) != nil; got != c.fast {
			t.Errorf("n=%d dh=%d: fast path %v, want %v", c.n, c.dh, got, c.fast)
		}
	}
	if attentionKernel[float64](197, 16) != nil {
		t.Error("float64: fast path chosen, want the packed path")
	}
}

// BenchmarkAttentionPaths times Attention forward + backward at the `small`
// preset's shape (B = 64, H = 4, N = 197, Dh = 16) on the packed path and
// on the float32 fast path, reporting the process CPU time per op.
func BenchmarkAttentionPaths(b *testing.B) {
	s := []int{64, 4, 197, 16}
	for _, c := range []struct {
		name string
		kn   *gemmKernel[float32]
	}{{"path=packed", nil}, {"path=fast", attentionKernelF32}} {
		b.Run(c.name, func(b *testing.B) {
			if c.name == "path=fast" && c.kn == nil {
				b.Skip("no in-place kernel in this build or on this CPU")
			}
			defer func(k *gemmKernel[float32]) { attentionKernelF32 = k }(attentionKernelF32)
			attentionKernelF32 = c.kn
			cpu0 := processCPUTime()
			benchOp(b, [][]int{s, s, s}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
				return tp.Attention(in[0], in[1], in[2], nil, 0.25)
			})
			b.ReportMetric((processCPUTime()-cpu0).Seconds()*1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// TestAttentionFastPathThreads checks that the fast path gives bit-identical
// outputs and gradients on 1, 2 and 3 threads.
func TestAttentionFastPathThreads(t *testing.T) {
	defer SetThreads(Threads())
	kn := attentionKernelF32
	if kn == nil {
		kn = goKernel6x16For[float32]()
	}
	for _, biasMode := range []int{0, 1, 2} {
		var ref []float32
		for _, th := range []int{1, 2, 3} {
			SetThreads(th)
			got := runAttentionWith(kn, 3, 2, 23, 32, biasMode, 9)
			if ref == nil {
				ref = got
				continue
			}
			for i := range got {
				if !sameBits(got[i], ref[i]) {
					t.Fatalf("bias=%d threads=%d: result %d = %v, threads=1 %v", biasMode, th, i, got[i], ref[i])
				}
			}
		}
	}
}

func BenchmarkAttention(b *testing.B) {
	b.ReportAllocs()
	s := []int{8, 3, 197, 64}
	benchOp(b, [][]int{s, s, s}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.Attention(in[0], in[1], in[2], nil, 0.125)
	})
}

func BenchmarkAttentionSharedBias(b *testing.B) {
	b.ReportAllocs()
	s := []int{8, 3, 197, 64}
	benchOp(b, [][]int{s, s, s, {3, 197, 197}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.Attention(in[0], in[1], in[2], in[3], 0.125)
	})
}
