// Tests of the fast paths of the non-GEMM parts of a training step: the
// chunked bias gradient, the fused LayerNorm kernels, the arena's unzeroed
// outputs, and a whole ViT step checked for bit-identical results across
// thread counts and across reuse of a poisoned arena.

package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ewSizes are (rows, cols) shapes for the reduction kernels: tiny, odd,
// and large enough (rows·cols ≥ 2·parGrain) to take the parallel paths.
var ewSizes = [][2]int{{1, 1}, {1, 7}, {3, 5}, {5, 1}, {37, 13}, {1000, 64}, {3001, 67}, {12608 / 8, 192}}

// withThreads runs f with Threads() = n and restores the previous setting.
func withThreads(n int, f func()) {
	prev := int(threads.Load())
	defer SetThreads(prev)
	SetThreads(n)
	f()
}

// TestBiasGradChunks checks biasGrad against column sums in float64, and
// that its result is bit-identical for 1, 2 and 3 threads.
func TestBiasGradChunks(t *testing.T) {
	for _, sz := range ewSizes {
		m, n := sz[0], sz[1]
		rng := rand.New(rand.NewPCG(uint64(m), uint64(n)))
		dy := make([]float32, m*n)
		for i := range dy {
			dy[i] = float32(rng.NormFloat64())
		}
		init := make([]float32, n)
		for i := range init {
			init[i] = float32(rng.NormFloat64())
		}
		var ref []float32
		for _, th := range []int{1, 2, 3} {
			db := append([]float32(nil), init...)
			part := make([]float32, rowChunks(m, n)*n)
			for i := range part {
				part[i] = float32(math.NaN()) // part may hold anything
			}
			withThreads(th, func() { biasGrad(db, dy, part, m, n) })
			if ref == nil {
				ref = db
				for c := range n {
					want, abs := float64(init[c]), math.Abs(float64(init[c]))
					for r := range m {
						want += float64(dy[r*n+c])
						abs += math.Abs(float64(dy[r*n+c]))
					}
					if d := math.Abs(float64(db[c]) - want); d > 1e-6*abs+1e-6 {
						t.Errorf("%dx%d: column %d sum %v, want %v", m, n, c, db[c], want)
					}
				}
				continue
			}
			for c := range n {
				if math.Float32bits(db[c]) != math.Float32bits(ref[c]) {
					t.Errorf("%dx%d: %d threads column %d %v, 1 thread %v", m, n, th, c, db[c], ref[c])
					break
				}
			}
		}
	}
}

// ewViT builds a small ViT whose every Linear, LayerNorm and GELU is big
// enough (with batch 32) to take the parallel paths.
func ewViT(t *testing.T) (*ViT[float32], *Tensor[float32], *Tensor[float32]) {
	cfg, err := Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Image, cfg.Depth, cfg.MLP = 8, 2, 128 // grid 4, N = 17, 544 rows
	m, err := NewViT[float32](cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	x := New[float32](32, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rng, 0, 1)
	y := New[float32](32, cfg.Classes)
	for i := range y.Data {
		y.Data[i] = float32(rng.IntN(2))
	}
	return m, x, y
}

// ewStep runs one forward and backward on tp and returns the loss and a
// copy of every parameter gradient.
func ewStep(tp *Tape[float32], m *ViT[float32], x, y *Tensor[float32]) (float32, [][]float32) {
	tp.Reset()
	ps := m.Trainable()
	ZeroGrad(ps)
	loss := tp.BCEWithLogits(m.Forward(tp, x), y)
	tp.Backward(loss)
	var gs [][]float32
	for _, p := range ps {
		gs = append(gs, append([]float32(nil), p.Grad...))
	}
	return loss.Data[0], gs
}

// TestViTStepDeterministic checks that a ViT training step gives
// bit-identical loss and gradients for 1, 2 and 3 threads, and again on a
// reused tape whose arena was filled with NaN first (ops that skip zeroing
// their output must write all of it).
func TestViTStepDeterministic(t *testing.T) {
	m, x, y := ewViT(t)
	var refLoss float32
	var ref [][]float32
	check := func(what string, loss float32, gs [][]float32) {
		if math.Float32bits(loss) != math.Float32bits(refLoss) {
			t.Errorf("%s: loss %v, want %v", what, loss, refLoss)
		}
		for k := range gs {
			for i := range gs[k] {
				if math.Float32bits(gs[k][i]) != math.Float32bits(ref[k][i]) {
					t.Errorf("%s: param %d elem %d grad %v, want %v", what, k, i, gs[k][i], ref[k][i])
					break
				}
			}
		}
	}
	withThreads(1, func() {
		var tp Tape[float32]
		refLoss, ref = ewStep(&tp, m, x, y)
	})
	if math.IsNaN(float64(refLoss)) {
		t.Fatal("loss is NaN")
	}
	for _, th := range []int{2, 3} {
		withThreads(th, func() {
			var tp Tape[float32]
			loss, gs := ewStep(&tp, m, x, y)
			check("threads "+string(rune('0'+th)), loss, gs)
			for _, p := range tp.pool {
				for i := range p.Data[:cap(p.Data)] {
					p.Data[:cap(p.Data)][i] = float32(math.NaN())
				}
			}
			for _, b := range tp.bufs {
				for i := range b[:cap(b)] {
					b[:cap(b)][i] = float32(math.NaN())
				}
			}
			loss, gs = ewStep(&tp, m, x, y)
			check("poisoned arena, threads "+string(rune('0'+th)), loss, gs)
		})
	}
}

// layerNormRef64 runs the reference layer's LayerNorm (RefLayerNormForward,
// RefLayerNormBackward) on float32 inputs widened to float64: it returns y
// and, for output gradient g, dx, dγ, dβ.
func layerNormRef64(x, gamma, beta, g []float32, rows, d int, eps float64) (y, dx, dg, db []float64) {
	wide := func(v []float32) []float64 {
		w := make([]float64, len(v))
		for i, e := range v {
			w[i] = float64(e)
		}
		return w
	}
	x64, gamma64 := wide(x), wide(gamma)
	mean, rstd := make([]float64, rows), make([]float64, rows)
	y, dx, dg, db = make([]float64, rows*d), make([]float64, rows*d), make([]float64, d), make([]float64, d)
	RefLayerNormForward(y, mean, rstd, x64, gamma64, wide(beta), rows, d, eps)
	RefLayerNormBackward(dx, dg, db, wide(g), x64, gamma64, mean, rstd, rows, d)
	return y, dx, dg, db
}

// TestLayerNormFused checks the LayerNorm kernels against layerNormRef64,
// with each of x, γ, β with or without a gradient, and that values and
// gradients are bit-identical for 1, 2 and 3 threads.
func TestLayerNormFused(t *testing.T) {
	const eps = 1e-6
	for _, sz := range ewSizes {
		rows, d := sz[0], sz[1]
		rng := rand.New(rand.NewPCG(uint64(rows), uint64(d)))
		rnd := func(n int, mean float64) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(mean + rng.NormFloat64())
			}
			return v
		}
		x, gamma, beta, g := rnd(rows*d, 0.5), rnd(d, 1), rnd(d, 0), rnd(rows*d, 0)
		y64, dx64, dg64, db64 := layerNormRef64(x, gamma, beta, g, rows, d, eps)
		for mask := 1; mask < 8; mask++ { // bit 0: x has a grad, 1: γ, 2: β
			var ref [4][]float32
			for _, th := range []int{1, 2, 3} {
				mk := func(data []float32, grad bool, shape ...int) *Tensor[float32] {
					t := New[float32](shape...)
					copy(t.Data, data)
					if grad {
						t.Grad = make([]float32, len(data))
						for i := range t.Grad {
							t.Grad[i] = 0.25 // backward adds to what is there
						}
					}
					return t
				}
				xt := mk(x, mask&1 != 0, rows, d)
				gt, bt := mk(gamma, mask&2 != 0, d), mk(beta, mask&4 != 0, d)
				var got [4][]float32
				withThreads(th, func() {
					var tp Tape[float32]
					yt := tp.LayerNorm(xt, gt, bt, eps)
					tp.backwardFrom(yt, g)
					got = [4][]float32{yt.Data, xt.Grad, gt.Grad, bt.Grad}
				})
				if th == 1 {
					ref = got
					for k, want := range [4][]float64{y64, dx64, dg64, db64} {
						if got[k] == nil {
							continue
						}
						off := float32(0.25)
						if k == 0 {
							off = 0
						}
						for i, w := range want {
							if e := math.Abs(float64(got[k][i]-off) - w); e > 1e-4*(1+math.Abs(w))*math.Sqrt(float64(rows)) {
								t.Errorf("%dx%d mask %d: output %d elem %d = %v, want %v", rows, d, mask, k, i, got[k][i]-off, w)
								break
							}
						}
					}
					continue
				}
				for k := range got {
					for i := range got[k] {
						if math.Float32bits(got[k][i]) != math.Float32bits(ref[k][i]) {
							t.Errorf("%dx%d mask %d: output %d elem %d: %d threads %v, 1 thread %v", rows, d, mask, k, i, th, got[k][i], ref[k][i])
							break
						}
					}
				}
			}
		}
	}
}

// poisonArena fills every arena tensor's Data (to capacity) with NaN, so an
// op that skips zeroing its output but leaves some of it unwritten shows.
func poisonArena(tp *Tape[float32]) {
	for _, p := range tp.pool {
		d := p.Data[:cap(p.Data)]
		for i := range d {
			d[i] = float32(math.NaN())
		}
	}
}

// TestUnzeroedOutputs runs every op whose output skips zeroing, on a tape
// whose arena was poisoned with NaN, and checks values and gradients
// against a fresh tape bit for bit.
func TestUnzeroedOutputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := NewParam[float32](3, 4, 5).FillNormal(rng, 0, 1)
	w := NewParam[float32](6, 5).FillNormal(rng, 0, 1)
	bias := NewParam[float32](6).FillNormal(rng, 0, 1)
	gamma := NewParam[float32](6).FillNormal(rng, 1, 0.1)
	beta := NewParam[float32](6).FillNormal(rng, 0, 1)
	run := func(tp *Tape[float32]) []float32 {
		tp.Reset()
		ZeroGrad([]*Tensor[float32]{x, w, bias, gamma, beta})
		h := tp.LayerNorm(tp.Linear(x, w, bias), gamma, beta, 1e-5) // (3, 4, 6)
		h = tp.Concat(1, tp.Slice(h, 1, 1, 3), tp.Gather(h, 1, []int{3, 0, 0}))
		h = tp.Permute(h, 2, 0, 1)                   // (6, 3, 5)
		h = tp.Transpose(tp.Scale(h, 0.5), 1, 2)     // (6, 5, 3)
		h = tp.Mul(tp.AddScalar(h, 0.25), tp.Exp(h)) // same shapes
		h = tp.Div(tp.Sub(tp.Sigmoid(h), tp.GELU(h)), tp.AddScalar(tp.Tanh(h), 3))
		loss := tp.Mean(tp.Mul(h, h))
		tp.Backward(loss)
		out := append([]float32(nil), h.Data...)
		for _, p := range []*Tensor[float32]{x, w, bias, gamma, beta} {
			out = append(out, p.Grad...)
		}
		return out
	}
	var fresh Tape[float32]
	ref := run(&fresh)
	var reused Tape[float32]
	run(&reused)
	poisonArena(&reused)
	got := run(&reused)
	for i := range ref {
		if math.IsNaN(float64(ref[i])) || math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
			t.Fatalf("element %d: %v on a poisoned arena, %v on a fresh tape", i, got[i], ref[i])
		}
	}
}

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

// TestGELUSavedDerivative checks that the float32 GELU of a recording tape,
// which saves its derivative in the forward, gives the same bits as the
// kernels without it (gelu32, then geluGrad32 in the backward), for 1, 2
// and 3 threads.
func TestGELUSavedDerivative(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 1000, 2*parGrain + 13} {
		rng := rand.New(rand.NewPCG(uint64(n), 1))
		x := NewParam[float32](n)
		x.FillNormal(rng, 0, 3)
		dy, dx0 := make([]float32, n), make([]float32, n)
		for i := range dy {
			dy[i], dx0[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		wantY, wantDx := make([]float32, n), append([]float32(nil), dx0...)
		gelu32(wantY, x.Data)
		geluGrad32(wantDx, dy, x.Data)
		for _, th := range []int{1, 2, 3} {
			withThreads(th, func() {
				copy(x.Grad, dx0)
				var tp Tape[float32]
				y := tp.GELU(x)
				if len(tp.nodes[0].saved) != 1 {
					t.Fatalf("n=%d: GELU saved %d buffers, want its derivative", n, len(tp.nodes[0].saved))
				}
				tp.backwardFrom(y, dy)
				for i := range n {
					if math.Float32bits(y.Data[i]) != math.Float32bits(wantY[i]) ||
						math.Float32bits(x.Grad[i]) != math.Float32bits(wantDx[i]) {
						t.Errorf("n=%d threads %d elem %d: y %v dx %v, want %v %v", n, th, i, y.Data[i], x.Grad[i], wantY[i], wantDx[i])
						break
					}
				}
			})
		}
	}
}

// BenchmarkLayerNormSmall times the LayerNorm forward and backward of the
// small preset (B = 64, N = 197, D = 64) on the current thread count.
func BenchmarkLayerNormSmall(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := NewParam[float32](64, 197, 64).FillNormal(rng, 0, 1)
	gamma := NewParam[float32](64).FillNormal(rng, 1, 0.1)
	beta := NewParam[float32](64).FillNormal(rng, 0, 1)
	g := make([]float32, len(x.Data))
	for i := range g {
		g[i] = float32(rng.NormFloat64())
	}
	var tp Tape[float32]
	for b.Loop() {
		tp.Reset()
		tp.backwardFrom(tp.LayerNorm(x, gamma, beta, 1e-6), g)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(g)), "ns/elem")
}

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

// adamRef is one Adam or AdamW step on every element, written per param as
// torch's single-tensor loop (the plain version of Adam.Update).
func adamRef(o *Adam[float32], lr float64) {
	o.Step++
	bc1 := 1 - math.Pow(o.Beta1, float64(o.Step))
	bc2 := 1 - math.Pow(o.Beta2, float64(o.Step))
	stepSize, bc2Sqrt := float32(lr/bc1), float32(math.Sqrt(bc2))
	b1, b2, eps := float32(o.Beta1), float32(o.Beta2), float32(o.Eps)
	for i, p := range o.params {
		wd := float32(0)
		if o.decay[i] {
			wd = float32(o.WeightDecay)
		}
		m, v := o.m[i], o.v[i]
		for k, g := range p.Grad {
			if o.Decoupled {
				p.Data[k] *= 1 - float32(lr)*wd
			} else if wd != 0 {
				g += wd * p.Data[k]
			}
			m[k] = m[k]*b1 + (1-b1)*g
			v[k] = v[k]*b2 + (1-b2)*g*g
			denom := float32(math.Sqrt(float64(v[k])))/bc2Sqrt + eps
			p.Data[k] -= stepSize * (m[k] / denom)
		}
	}
}

// TestAdamFlatSplit checks Adam.Update, which splits all params' elements
// as one range, against adamRef bit for bit, for AdamW and Adam with L2
// decay, params of sizes around the split (including empty ones), and
// 1, 2 and 3 threads.
func TestAdamFlatSplit(t *testing.T) {
	sizes := []int{3, 0, 40000, 1, 16384, 0, 777, 2 * parGrain}
	build := func() []NamedParam[float32] {
		rng := rand.New(rand.NewPCG(8, 8))
		var ps []NamedParam[float32]
		for i, n := range sizes {
			p := NewParam[float32](n).FillNormal(rng, 0, 1)
			for k := range p.Grad {
				p.Grad[k] = float32(rng.NormFloat64())
			}
			ps = append(ps, NamedParam[float32]{Name: string(rune('a' + i)), T: p, NoDecay: i%3 == 0})
		}
		return ps
	}
	for _, decoupled := range []bool{true, false} {
		ref := NewAdamW(build(), 0.05)
		ref.Decoupled = decoupled
		for range 3 {
			adamRef(ref, 1e-2)
		}
		for _, th := range []int{1, 2, 3} {
			o := NewAdamW(build(), 0.05)
			o.Decoupled = decoupled
			withThreads(th, func() {
				for range 3 {
					o.Update(1e-2)
				}
			})
			for i, p := range o.params {
				for k := range p.Data {
					if math.Float32bits(p.Data[k]) != math.Float32bits(ref.params[i].Data[k]) ||
						math.Float32bits(o.v[i][k]) != math.Float32bits(ref.v[i][k]) {
						t.Fatalf("decoupled %v threads %d: param %d elem %d: %v, want %v", decoupled, th, i, k, p.Data[k], ref.params[i].Data[k])
					}
				}
			}
		}
	}
}
