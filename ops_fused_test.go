package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// runAttentionQKV runs attention on a fused qkv (B, N, 3·D) forward and
// backward (seeded with a random output gradient): attentionQKV when fused,
// else MergeHeads(Attention(QKVHeads(qkv))). It returns the output, the qkv
// gradient (zero before the backward, as for the ViT's Linear output) and
// the bias gradient (nonzero before: Attention adds into it in place), as
// float64 values of T (exact). biasMode is 0 (none), 1 (H, N, N), 2
// (B, H, N, N) or 3 (H, N, N) without a gradient; qkvGrad false gives qkv
// no gradient.
func runAttentionQKV[T Float](fused bool, b, n, h, dh, biasMode int, qkvGrad bool, seed uint64) []float64 {
	var tp Tape[T]
	return runAttentionQKVOn(&tp, false, fused, b, n, h, dh, biasMode, qkvGrad, seed)
}

// runAttentionQKVOn is runAttentionQKV on tp; poison fills the inputs with
// NaN instead.
func runAttentionQKVOn[T Float](tp *Tape[T], poison, fused bool, b, n, h, dh, biasMode int, qkvGrad bool, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 5))
	d := h * dh
	qkv := New[T](b, n, 3*d)
	if qkvGrad {
		qkv = NewParam[T](b, n, 3*d)
	}
	qkv.FillUniform(rng, -2, 2)
	var bias *Tensor[T]
	switch biasMode {
	case 1:
		bias = NewParam[T](h, n, n)
	case 2:
		bias = NewParam[T](b, h, n, n)
	case 3:
		bias = New[T](h, n, n)
	}
	if bias != nil {
		bias.FillUniform(rng, -1, 1)
		for i := range bias.Grad {
			bias.Grad[i] = T(2*rng.Float64() - 1)
		}
	}
	if poison {
		for _, x := range []*Tensor[T]{qkv, bias} {
			if x != nil {
				for i := range x.Data {
					x.Data[i] = T(math.NaN())
				}
			}
		}
	}
	scale := 1 / math.Sqrt(float64(dh))
	var out *Tensor[T]
	if fused {
		out = tp.attentionQKV(qkv, bias, h, scale)
	} else {
		q, k, v := tp.QKVHeads(qkv, h)
		out = tp.MergeHeads(tp.Attention(q, k, v, bias, scale))
	}
	var res []float64
	for _, v := range out.Data {
		res = append(res, float64(v))
	}
	if out.Grad == nil {
		return res
	}
	g := New[T](out.Shape...).FillUniform(rng, -1, 1)
	tp.backwardFrom(out, g.Data)
	for _, v := range qkv.Grad {
		res = append(res, float64(v))
	}
	if bias != nil {
		for _, v := range bias.Grad {
			res = append(res, float64(v))
		}
	}
	return res
}

// requireSameBits fails unless got and want hold the same values bit for bit.
func requireSameBits(t *testing.T, name string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d results, want %d", name, len(got), len(want))
	}
	for i := range got {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			t.Fatalf("%s: result %d = %v, want %v (bit for bit)", name, i, got[i], want[i])
		}
	}
}

// withAttentionKernel runs f with the float32 attention kernel set to kn.
func withAttentionKernel(kn *gemmKernel[float32], f func()) {
	defer func(k *gemmKernel[float32]) { attentionKernelF32 = k }(attentionKernelF32)
	attentionKernelF32 = kn
	f()
}

// TestAttentionQKVMatchesComposition checks attentionQKV against
// MergeHeads(Attention(QKVHeads(qkv))): the same bits for the output and
// the qkv and bias gradients, for float32 (fast path with the assembly
// kernel when present and its plain-Go twin, and the packed path) and
// float64, without a bias, with a shared or per-item learnable bias and a
// fixed one, n ∈ {1, 5, 17, 197} and dh ∈ {16, 32, 64} (and an odd dh,
// which takes the packed path).
func TestAttentionQKVMatchesComposition(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(2)
	kns := map[string]*gemmKernel[float32]{"go-twin": goKernel6x16For[float32](), "packed": nil}
	if attentionKernelF32 != nil {
		kns["asm"] = attentionKernelF32
	}
	for _, n := range []int{1, 5, 17, 197} {
		for _, dh := range []int{16, 32, 64, 6} {
			for biasMode := range 4 {
				b, h := 2, 3
				if n*n*dh > 1<<20 {
					b, h = 2, 2
				}
				seed := uint64(n*1000 + dh*10 + biasMode)
				for kname, kn := range kns {
					withAttentionKernel(kn, func() {
						name := fmt.Sprintf("float32 %s n=%d dh=%d bias=%d", kname, n, dh, biasMode)
						requireSameBits(t, name, runAttentionQKV[float32](true, b, n, h, dh, biasMode, true, seed),
							runAttentionQKV[float32](false, b, n, h, dh, biasMode, true, seed))
					})
				}
				name := fmt.Sprintf("float64 n=%d dh=%d bias=%d", n, dh, biasMode)
				requireSameBits(t, name, runAttentionQKV[float64](true, b, n, h, dh, biasMode, true, seed),
					runAttentionQKV[float64](false, b, n, h, dh, biasMode, true, seed))
			}
		}
	}
	// Only the bias learns; and a no-grad tape.
	for _, biasMode := range []int{1, 2} {
		requireSameBits(t, fmt.Sprintf("no qkv gradient, bias=%d", biasMode), runAttentionQKV[float32](true, 2, 17, 2, 16, biasMode, false, 9),
			runAttentionQKV[float32](false, 2, 17, 2, 16, biasMode, false, 9))
	}
	requireSameBits(t, "forward only", runAttentionQKV[float32](true, 2, 17, 2, 16, 0, false, 9),
		runAttentionQKV[float32](false, 2, 17, 2, 16, 0, false, 9))
}

// TestAttentionQKVThreads checks that 1, 2 and 3 threads give the same
// bits (output and gradients) on the `small` preset's shape (197 tokens,
// 4 heads of 16) and on ti16's heads (3 of 64) with a shared bias.
func TestAttentionQKVThreads(t *testing.T) {
	defer SetThreads(Threads())
	for _, c := range []struct{ b, n, h, dh, biasMode int }{{4, 197, 4, 16, 0}, {2, 50, 3, 64, 1}, {3, 17, 2, 16, 2}} {
		SetThreads(1)
		want := runAttentionQKV[float32](true, c.b, c.n, c.h, c.dh, c.biasMode, true, 4)
		for _, th := range []int{2, 3} {
			SetThreads(th)
			requireSameBits(t, fmt.Sprintf("%+v threads=%d", c, th), runAttentionQKV[float32](true, c.b, c.n, c.h, c.dh, c.biasMode, true, 4), want)
		}
	}
}

// TestAttentionQKVPoisonedArena checks that attentionQKV and Attention
// write every arena buffer they take unzeroed before reading it: a tape
// whose previous step ran on NaN inputs gives the bits of a fresh tape.
func TestAttentionQKVPoisonedArena(t *testing.T) {
	for _, fused := range []bool{true, false} {
		for biasMode := range 3 {
			var tp Tape[float32]
			runAttentionQKVOn(&tp, true, fused, 2, 17, 2, 16, biasMode, true, 6)
			tp.Reset()
			got := runAttentionQKVOn(&tp, false, fused, 2, 17, 2, 16, biasMode, true, 6)
			requireSameBits(t, fmt.Sprintf("fused=%v bias=%d", fused, biasMode), got, runAttentionQKV[float32](fused, 2, 17, 2, 16, biasMode, true, 6))
		}
	}
}

// TestAttentionQKVGrad is the float64 central-difference gradient check of
// attentionQKV (qkv (2, 3, 12): D = 4, two heads of 2) without a bias and
// with each bias shape.
func TestAttentionQKVGrad(t *testing.T) {
	for i, bias := range [][]int{nil, {2, 3, 3}, {2, 2, 3, 3}} {
		shapes := [][]int{{2, 3, 12}}
		if bias != nil {
			shapes = append(shapes, bias)
		}
		checkGradCase(t, gradCase{name: fmt.Sprintf("attentionQKV/bias%v", bias), shapes: shapes,
			build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
				var b *Tensor[float64]
				if len(in) > 1 {
					b = in[1]
				}
				return tp.attentionQKV(in[0], b, 2, 0.5)
			}}, uint64(20+i))
	}
}

// TestAttentionQKVShapePanics checks the shape errors.
func TestAttentionQKVShapePanics(t *testing.T) {
	var tp Tape[float32]
	for _, c := range []struct {
		qkv, bias []int
		heads     int
	}{{[]int{2, 3, 10}, nil, 2}, {[]int{2, 3}, nil, 1}, {[]int{2, 3, 12}, nil, 0}, {[]int{2, 3, 12}, []int{3, 3, 3}, 2}} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("attentionQKV(%v, bias %v, heads %d) did not panic", c.qkv, c.bias, c.heads)
				}
			}()
			var bias *Tensor[float32]
			if c.bias != nil {
				bias = New[float32](c.bias...)
			}
			tp.attentionQKV(New[float32](c.qkv...), bias, c.heads, 1)
		}()
	}
}

// TestPlainQK checks plainQK against every registered PE's hooks: a PE it
// names must return q and k unchanged from RotateQK and build its
// attention bias without q in every layer; a PE whose RotateQK is the
// identity and that it does not name must be irpe-ctx (the one bias that
// reads q), so a new PE that could take the fast path is not missed.
func TestPlainQK(t *testing.T) {
	for _, name := range PENames() {
		cfg := peTestConfig(PEConfig{Name: name})
		cfg.Depth = 2
		pe, err := newPosEmb[float64](cfg, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n, h, dh := cfg.Tokens(), cfg.Heads, cfg.Dim/cfg.Heads
		identity := true
		for layer := range cfg.Depth {
			var tp Tape[float64]
			q, k := tp.New(2, h, n, dh), tp.New(2, h, n, dh)
			rq, rk := pe.RotateQK(&tp, layer, q, k)
			identity = identity && rq == q && rk == k
			if plainQK(pe) {
				if rq != q || rk != k {
					t.Errorf("%s: plainQK, but RotateQK of layer %d is not the identity", name, layer)
				}
				if ai, ok := pe.(attnInputPE[float64]); ok { // PaPE reads the block input instead
					ai.attnInput(&tp, layer, tp.New(2, n, cfg.Dim))
				}
				pe.AttnBias(&tp, layer, nil) // must not read q
			}
		}
		if identity && !plainQK(pe) && name != "irpe-ctx" {
			t.Errorf("%s: RotateQK is the identity but plainQK is false (add it to plainQK if AttnBias does not read q)", name)
		}
	}
}

// TestViTFusions checks that a ViT forward and backward with the fusions
// newFusedOps picks gives the same bits as with every fusion off (the
// plain composition: QKVHeads, RotateQK, Attention, MergeHeads; GELU of a
// Linear; Add of a Linear) for the logits and every parameter gradient,
// for every PE, float32 and float64, 1 and 2 threads.
func TestViTFusions(t *testing.T) {
	defer SetThreads(Threads())
	defer func(s bool) { noFusion = s }(noFusion)
	for _, name := range PENames() {
		cfg := peTestConfig(PEConfig{Name: name})
		cfg.Dim, cfg.Depth = 32, 2 // two heads of 16: the float32 fast path
		for _, th := range []int{1, 2} {
			SetThreads(th)
			run32 := func(split bool) []float64 { noFusion = split; return vitStepBits[float32](t, cfg) }
			requireSameBits(t, fmt.Sprintf("%s float32 threads=%d", name, th), run32(false), run32(true))
			run64 := func(split bool) []float64 { noFusion = split; return vitStepBits[float64](t, cfg) }
			requireSameBits(t, fmt.Sprintf("%s float64 threads=%d", name, th), run64(false), run64(true))
		}
	}
}

// vitStepBits runs a seeded ViT forward and backward (from a random
// projection of the logits) and returns the logits and every parameter
// gradient.
func vitStepBits[T Float](t *testing.T, cfg Config) []float64 {
	t.Helper()
	m, err := NewViT[T](cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	img := New[T](2, cfg.Channels, cfg.Image, cfg.Image).FillUniform(rng, -1, 1)
	var tp Tape[T]
	logits := m.Forward(&tp, img)
	g := New[T](logits.Shape...).FillUniform(rng, -1, 1)
	tp.backwardFrom(logits, g.Data)
	var res []float64
	for _, v := range logits.Data {
		res = append(res, float64(v))
	}
	for _, p := range m.Trainable() {
		for _, v := range p.Grad {
			res = append(res, float64(v))
		}
	}
	return res
}

// BenchmarkAttentionQKV times attention forward and backward on a fused
// qkv of the `small` preset (B 64, 197 tokens, 4 heads of 16) and ti16's
// heads (B 8, 197 tokens, 3 heads of 64): path=fused is attentionQKV,
// path=split MergeHeads(Attention(QKVHeads(qkv))).
func BenchmarkAttentionQKV(b *testing.B) {
	for _, c := range []struct {
		name        string
		b, n, h, dh int
	}{{"small", 64, 197, 4, 16}, {"ti16heads", 8, 197, 3, 64}} {
		for _, fused := range []bool{true, false} {
			path := map[bool]string{true: "fused", false: "split"}[fused]
			b.Run(c.name+"/path="+path, func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				qkv := NewParam[float32](c.b, c.n, 3*c.h*c.dh).FillUniform(rng, -1, 1)
				g := New[float32](c.b, c.n, c.h*c.dh).FillUniform(rng, -1, 1)
				var tp Tape[float32]
				scale := 1 / math.Sqrt(float64(c.dh))
				for b.Loop() {
					tp.Reset()
					var out *Tensor[float32]
					if fused {
						out = tp.attentionQKV(qkv, nil, c.h, scale)
					} else {
						q, k, v := tp.QKVHeads(qkv, c.h)
						out = tp.MergeHeads(tp.Attention(q, k, v, nil, scale))
					}
					tp.backwardFrom(out, g.Data)
				}
			})
		}
	}
}

// TestLinearGELUFused checks linearGELU against tp.GELU(tp.Linear(...)):
// the same bits for the value and every gradient (float32, 1, 2 and 3
// threads, a poisoned arena on reuse, and on a no-grad tape), and a
// float64 central-difference gradient check.
func TestLinearGELUFused(t *testing.T) {
	for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 7}, {37, 13, 9}, {544, 64, 128}, {1000, 16, 67}} {
		m, nIn, nOut := sz[0], sz[1], sz[2]
		rng := rand.New(rand.NewPCG(uint64(m), uint64(nOut)))
		x := NewParam[float32](m, nIn).FillNormal(rng, 0, 1)
		w := NewParam[float32](nOut, nIn).FillNormal(rng, 0, 0.5)
		bias := NewParam[float32](nOut).FillNormal(rng, 0, 1)
		dy := make([]float32, m*nOut)
		for i := range dy {
			dy[i] = float32(rng.NormFloat64())
		}
		ps := []*Tensor[float32]{x, w, bias}
		run := func(tp *Tape[float32], fused bool) []float32 {
			tp.Reset()
			ZeroGrad(ps)
			var y *Tensor[float32]
			if fused {
				y = tp.linearGELU(x, w, bias)
			} else {
				y = tp.GELU(tp.Linear(x, w, bias))
			}
			out := append([]float32(nil), y.Data...)
			if y.Grad != nil {
				tp.backwardFrom(y, dy)
				for _, p := range ps {
					out = append(out, p.Grad...)
				}
			}
			return out
		}
		var ref []float32
		withThreads(1, func() {
			var tp Tape[float32]
			ref = run(&tp, false)
		})
		same := func(what string, got []float32, n int) {
			if len(got) != n {
				t.Fatalf("%v %s: %d values, want %d", sz, what, len(got), n)
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
					t.Errorf("%v %s: element %d differs from GELU(Linear)", sz, what, i)
					return
				}
			}
		}
		for _, th := range []int{1, 2, 3} {
			withThreads(th, func() {
				var tp Tape[float32]
				same("threads "+string(rune('0'+th)), run(&tp, true), len(ref))
				poisonArena(&tp)
				for i := range tp.bufs {
					b := tp.bufs[i][:cap(tp.bufs[i])]
					for k := range b {
						b[k] = float32(math.NaN())
					}
				}
				same("poisoned, threads "+string(rune('0'+th)), run(&tp, true), len(ref))
			})
		}
		tp := Tape[float32]{NoGrad: true}
		same("no-grad", run(&tp, true), m*nOut)
	}
	checkGradCase(t, gradCase{name: "linearGELU", shapes: [][]int{{2, 3, 4}, {5, 4}, {5}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.linearGELU(in[0], in[1], in[2])
		}}, 11)
}

// TestLinearAddFused checks linearAdd against tp.Add(x, tp.Linear(a, w,
// bias)): the same bits for the value and every gradient (float32; 1, 2
// and 3 threads; a poisoned arena on reuse; a no-grad tape; x, a or w
// without a gradient), and a float64 central-difference gradient check.
func TestLinearAddFused(t *testing.T) {
	for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 7}, {37, 13, 9}, {544, 128, 64}, {1000, 67, 16}} {
		m, nIn, nOut := sz[0], sz[1], sz[2]
		rng := rand.New(rand.NewPCG(uint64(m), uint64(nIn)))
		x := NewParam[float32](m, nOut).FillNormal(rng, 0, 1)
		a := NewParam[float32](m, nIn).FillNormal(rng, 0, 1)
		w := NewParam[float32](nOut, nIn).FillNormal(rng, 0, 0.5)
		bias := NewParam[float32](nOut).FillNormal(rng, 0, 1)
		dy := make([]float32, m*nOut)
		for i := range dy {
			dy[i] = float32(rng.NormFloat64())
		}
		for mask := range 4 { // bit 0: x without gradient, bit 1: a and w without
			ps := []*Tensor[float32]{x, a, w, bias}
			for _, p := range ps {
				p.Grad = make([]float32, len(p.Data))
			}
			if mask&1 != 0 {
				x.Grad = nil
			}
			if mask&2 != 0 {
				a.Grad, w.Grad = nil, nil
			}
			run := func(tp *Tape[float32], fused bool) []float32 {
				tp.Reset()
				ZeroGrad(ps)
				var y *Tensor[float32]
				if fused {
					y = tp.linearAdd(x, a, w, bias)
				} else {
					y = tp.Add(x, tp.Linear(a, w, bias))
				}
				out := append([]float32(nil), y.Data...)
				if y.Grad != nil {
					tp.backwardFrom(y, dy)
					for _, p := range ps {
						out = append(out, p.Grad...)
					}
				}
				return out
			}
			var ref []float32
			withThreads(1, func() {
				var tp Tape[float32]
				ref = run(&tp, false)
			})
			same := func(what string, got []float32, n int) {
				if len(got) != n {
					t.Fatalf("%v mask %d %s: %d values, want %d", sz, mask, what, len(got), n)
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
						t.Errorf("%v mask %d %s: element %d differs from Add(x, Linear)", sz, mask, what, i)
						return
					}
				}
			}
			for _, th := range []int{1, 2, 3} {
				withThreads(th, func() {
					var tp Tape[float32]
					same("threads "+string(rune('0'+th)), run(&tp, true), len(ref))
					poisonArena(&tp)
					same("poisoned, threads "+string(rune('0'+th)), run(&tp, true), len(ref))
				})
			}
			tp := Tape[float32]{NoGrad: true}
			same("no-grad", run(&tp, true), m*nOut)
		}
	}
	checkGradCase(t, gradCase{name: "linearAdd", shapes: [][]int{{2, 3, 5}, {2, 3, 4}, {5, 4}, {5}},
		build: func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
			return tp.linearAdd(in[0], in[1], in[2], in[3])
		}}, 12)
}
