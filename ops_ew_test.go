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
