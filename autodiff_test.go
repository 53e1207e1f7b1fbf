package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Tape behaviour: no-grad mode, gradient accumulation, Reset determinism and
// the steady-state allocation count of a training step.

// mlp is a two-layer classifier: Linear → GELU → Linear → CrossEntropy.
type mlp[T Float] struct {
	w1, b1, w2, b2 *Tensor[T] // (H, In), (H), (K, H), (K)
	x              *Tensor[T] // (B, In) fixed batch
	labels         []int      // (B)
}

func newMLP[T Float](seed uint64, batch, in, hidden, classes int) *mlp[T] {
	rng := rand.New(rand.NewPCG(seed, 0))
	m := &mlp[T]{
		w1: NewParam[T](hidden, in).FillNormal(rng, 0, 1/math.Sqrt(float64(in))),
		b1: NewParam[T](hidden).FillNormal(rng, 0, 0.1),
		w2: NewParam[T](classes, hidden).FillNormal(rng, 0, 1/math.Sqrt(float64(hidden))),
		b2: NewParam[T](classes).FillNormal(rng, 0, 0.1),
		x:  New[T](batch, in).FillNormal(rng, 0, 1),
	}
	for range batch {
		m.labels = append(m.labels, rng.IntN(classes))
	}
	return m
}

func (m *mlp[T]) params() []*Tensor[T] { return []*Tensor[T]{m.w1, m.b1, m.w2, m.b2} }

// loss builds the forward on tp and returns the scalar loss.
func (m *mlp[T]) loss(tp *Tape[T]) *Tensor[T] {
	h := tp.GELU(tp.Linear(m.x, m.w1, m.b1))
	return tp.CrossEntropy(tp.Linear(h, m.w2, m.b2), m.labels, 0.1)
}

// step runs one SGD step: Reset, ZeroGrad, forward, Backward, p −= lr·dp.
func (m *mlp[T]) step(tp *Tape[T], params []*Tensor[T], lr T) T {
	tp.Reset()
	ZeroGrad(params)
	l := m.loss(tp)
	tp.Backward(l)
	for _, p := range params {
		for i, g := range p.Grad {
			p.Data[i] -= lr * g
		}
	}
	return l.Data[0]
}

func TestNoGradRecordsNothing(t *testing.T) {
	m := newMLP[float64](1, 4, 5, 6, 3)
	var tp Tape[float64]
	tp.NoGrad = true
	h := tp.GELU(tp.Linear(m.x, m.w1, m.b1))
	y := tp.Softmax(tp.Add(h, m.b1))
	l := m.loss(&tp)
	if tp.Len() != 0 {
		t.Errorf("no-grad tape recorded %d ops", tp.Len())
	}
	for _, o := range []*Tensor[float64]{h, y, l} {
		if o.Grad != nil {
			t.Errorf("no-grad output %v has a Grad", o.Shape)
		}
	}
	// The same forward with recording gives the same loss.
	var tp2 Tape[float64]
	if l2 := m.loss(&tp2); tp2.Len() == 0 || l2.Data[0] != l.Data[0] {
		t.Errorf("recorded loss %v (%d ops), no-grad loss %v", l2.Data[0], tp2.Len(), l.Data[0])
	}
}

func TestBackwardAccumulates(t *testing.T) {
	m := newMLP[float64](2, 4, 5, 6, 3)
	var tp Tape[float64]
	tp.Backward(m.loss(&tp))
	once := make([][]float64, 0, 4)
	for _, p := range m.params() {
		once = append(once, append([]float64(nil), p.Grad...))
	}
	tp.Reset()
	tp.Backward(m.loss(&tp)) // no ZeroGrad: gradients add up
	for k, p := range m.params() {
		for i, g := range p.Grad {
			if math.Abs(g-2*once[k][i]) > 1e-15*math.Abs(g) {
				t.Fatalf("param %d elem %d: after two backwards %v, want 2×%v", k, i, g, once[k][i])
			}
		}
	}
}

func TestResetRebuildIdentical(t *testing.T) {
	m := newMLP[float32](3, 8, 5, 16, 4)
	var tp Tape[float32]
	var losses [2]float32
	var grads [2][][]float32
	for run := range 2 {
		tp.Reset()
		ZeroGrad(m.params())
		l := m.loss(&tp)
		tp.Backward(l)
		losses[run] = l.Data[0]
		for _, p := range m.params() {
			grads[run] = append(grads[run], append([]float32(nil), p.Grad...))
		}
	}
	if losses[0] != losses[1] {
		t.Errorf("loss %v then %v after Reset", losses[0], losses[1])
	}
	for k := range grads[0] {
		for i := range grads[0][k] {
			if grads[0][k][i] != grads[1][k][i] {
				t.Fatalf("param %d elem %d: grad %v then %v after Reset", k, i, grads[0][k][i], grads[1][k][i])
			}
		}
	}
}

// TestMLPTrains checks the SGD loop actually fits the fixed batch.
func TestMLPTrains(t *testing.T) {
	m := newMLP[float32](4, 16, 8, 32, 4)
	var tp Tape[float32]
	params := m.params()
	first := m.step(&tp, params, 0.5)
	var last float32
	for range 100 {
		last = m.step(&tp, params, 0.5)
	}
	// Label smoothing 0.1 with K = 4 bounds the loss below by the entropy
	// of the smoothed target, so "fitted" means well under the first loss.
	if !(last < first/3) {
		t.Errorf("loss %v after 100 steps, started at %v", last, first)
	}
}

// mlpB, mlpIn, mlpH, mlpK size the MLP of the allocation test and benchmark; small
// enough that no kernel reaches parallelFor's threshold.
const mlpB, mlpIn, mlpH, mlpK = 32, 64, 128, 10

// TestMLPStepAllocs checks that a steady-state training step allocates
// nothing: tensors, buffers, nodes and shapes come from the arena, and
// backward ops are empty structs stored in an interface (no closure).
func TestMLPStepAllocs(t *testing.T) {
	m := newMLP[float32](5, mlpB, mlpIn, mlpH, mlpK)
	var tp Tape[float32]
	params := m.params()
	m.step(&tp, params, 0.01) // warm the arena
	ops := tp.Len()
	allocs := testing.AllocsPerRun(20, func() { m.step(&tp, params, 0.01) })
	if allocs > 0 {
		t.Errorf("steady-state MLP step (%d ops) allocates %v times, want 0", ops, allocs)
	}
	t.Logf("allocs per steady-state step: %v (%d recorded ops)", allocs, ops)
}

func BenchmarkMLPStep(b *testing.B) {
	m := newMLP[float32](5, mlpB, mlpIn, mlpH, mlpK)
	var tp Tape[float32]
	params := m.params()
	m.step(&tp, params, 0.01)
	b.ReportAllocs()
	for b.Loop() {
		m.step(&tp, params, 0.01)
	}
}

// TestLazyGradients checks the lazy gradient storage of newTensor: a deep
// chain keeps only a few gradient buffers alive at once, an output no loss
// depends on costs no storage and passes no gradient, a view of an
// intermediate shares its source's gradient, and the result equals a
// hand-computed one.
func TestLazyGradients(t *testing.T) {
	const depth, n = 40, 64
	w := NewParam[float64](1)
	w.Data[0] = 1.01
	x := NewParam[float64](n)
	for i := range x.Data {
		x.Data[i] = float64(i%7) - 3
	}
	var tp Tape[float64]
	for step := range 2 { // the second step reuses the first step's buffers
		tp.Reset()
		ZeroGrad([]*Tensor[float64]{w, x})
		h := x
		for range depth {
			h = tp.Mul(h, w) // h·w, broadcast
		}
		unused := tp.Scale(h, 2) // no loss depends on it
		v := tp.Reshape(h, 8, 8)
		loss := tp.Sum(tp.Reshape(tp.Scale(v, 3), n))
		tp.Backward(loss)
		got := len(tp.gradFree) // buffers made so far: free ones plus those still held
		for _, l := range tp.gradLive {
			if !tp.isLazy(l.Grad) {
				got++
			}
		}
		if got > 4 {
			t.Errorf("step %d: %d gradient buffers for a chain of %d ops, want a few", step, got, depth)
		}
		if !tp.isLazy(unused.Grad) {
			t.Errorf("step %d: an unused output's gradient was materialized", step)
		}
		// d loss/dx_i = 3·w^depth; d loss/dw = 3·depth·w^(depth−1)·Σx.
		wd := math.Pow(w.Data[0], depth)
		for i, g := range x.Grad {
			if math.Abs(g-3*wd) > 1e-12*wd {
				t.Fatalf("step %d: dx[%d] = %g, want %g", step, i, g, 3*wd)
			}
		}
		var sx float64
		for _, v := range x.Data {
			sx += v
		}
		if want := 3 * depth * math.Pow(w.Data[0], depth-1) * sx; math.Abs(w.Grad[0]-want) > 1e-9*math.Abs(want)+1e-12 {
			t.Errorf("step %d: dw = %g, want %g", step, w.Grad[0], want)
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
