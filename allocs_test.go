package loope

import (
	"math/rand/v2"
	"testing"
)

// Benchmarks and an allocation bound for the element-wise, reduction,
// shape and loss ops, at ViT-like float32 sizes (B=8, N=64, D=192).

// opsStep runs forward and backward through a chain using every
// non-allocating op of ops_broadcast/activation/reduce/shape/loss on tp.
func opsStep(tp *Tape[float32], x, bias, g *Tensor[float32], labels []int) {
	tp.Reset()
	h := tp.AddBias(x, bias)                   // (B, N, D)
	h = tp.Mul(h, tp.MeanAxis(h, -1, true))    // (B, N, D)·(B, N, 1)
	h = tp.Div(tp.GELU(h), tp.AddScalar(g, 2)) // (B, N, D)/(D)
	a := tp.Reshape(h, 8, 64, 3, 64)           // (B, N, 3, 64) view
	a = tp.Permute(a, 0, 2, 1, 3)              // (B, 3, N, 64)
	s := tp.Softmax(tp.Transpose(a, -1, -2))   // (B, 3, 64, N)
	c := tp.Concat(1, tp.Slice(s, 1, 0, 1), s) // (B, 4, 64, N)
	c = tp.Gather(c, 1, []int{3, 0})           // (B, 2, 64, N)
	r := tp.Sub(tp.Exp(tp.Scale(c, 0.1)), tp.Tanh(tp.Sin(tp.Cos(c))))
	logits := tp.Reshape(tp.SumAxis(tp.Sigmoid(tp.ReLU(r)), 2, false), 8*2, 64)
	l := tp.Add(tp.CrossEntropy(logits, labels, 0.1), tp.Log(tp.Sum(tp.Exp(logits))))
	tp.Backward(tp.Mean(l))
}

func newOpsStep() (x, bias, g *Tensor[float32], labels []int) {
	rng := rand.New(rand.NewPCG(11, 0))
	x = NewParam[float32](8, 64, 192).FillNormal(rng, 0, 1)
	bias = NewParam[float32](192).FillNormal(rng, 0, 1)
	g = NewParam[float32](192).FillUniform(rng, 0, 1)
	for range 16 {
		labels = append(labels, rng.IntN(64))
	}
	return
}

// TestOpsStepAllocs checks that the steady state of opsStep allocates
// nothing on 1 thread; with 2 threads the parallelFor closures and
// goroutines of the kernels that split still allocate (logged).
func TestOpsStepAllocs(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(1)
	x, bias, g, labels := newOpsStep()
	var tp Tape[float32]
	opsStep(&tp, x, bias, g, labels)
	ops := tp.Len()
	allocs := testing.AllocsPerRun(5, func() { opsStep(&tp, x, bias, g, labels) })
	if allocs > 0 {
		t.Errorf("steady-state step (%d ops, 1 thread) allocates %v times, want 0", ops, allocs)
	}
	t.Logf("1 thread: %v allocs per step, %d recorded ops", allocs, ops)
	SetThreads(2)
	t.Logf("2 threads: %v allocs per step", testing.AllocsPerRun(5, func() { opsStep(&tp, x, bias, g, labels) }))
}

func BenchmarkOpsStep(b *testing.B) {
	x, bias, g, labels := newOpsStep()
	var tp Tape[float32]
	opsStep(&tp, x, bias, g, labels)
	b.ReportAllocs()
	for b.Loop() {
		opsStep(&tp, x, bias, g, labels)
	}
}
