package loope

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// replicaCfg is a small model with PE pe for the replica tests.
func replicaCfg(pe string) Config {
	return Config{Image: 8, Channels: 3, Patch: 2, Dim: 16, Depth: 2, Heads: 2, MLP: 24, Classes: 3, Eps: 1e-6, PE: PEConfig{Name: pe}}
}

// TestReplicaForward: for every PE, a replica computes what its model
// computes, bit for bit, after the model's values moved away from any
// initialisation (a PE keeping an input outside its params fails here).
func TestReplicaForward(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(1)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, pe := range PENames() {
		m, err := NewViT[float64](replicaCfg(pe), 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Params() {
			for i := range p.T.Data {
				if !p.Buffer {
					p.T.Data[i] += 0.1 * rng.NormFloat64()
				}
			}
		}
		r, err := replicaOf[float64](m)
		if err != nil {
			t.Fatal(pe, err)
		}
		x := New[float64](2, 3, 8, 8).FillNormal(rng, 0, 1)
		want := m.Forward(&Tape[float64]{NoGrad: true}, x)
		got := r.Forward(&Tape[float64]{NoGrad: true}, x)
		for i := range want.Data {
			if got.Data[i] != want.Data[i] {
				t.Fatalf("%s: replica logit %d = %v, model %v", pe, i, got.Data[i], want.Data[i])
			}
		}
		if rw := r.(*ViT[float64]).PatchW; rw.Grad == nil || &rw.Grad[0] == &m.PatchW.Grad[0] {
			t.Fatalf("%s: replica must own its gradients", pe)
		}
	}
}

// TestReplicaStep: three replicas give the gradient and loss of one model
// on the whole batch (float64, to rounding), the same bits on every run
// and for any thread count, and a model with batch statistics is refused.
func TestReplicaStep(t *testing.T) {
	defer SetThreads(Threads())
	cfg := replicaCfg("learnable")
	ds := brightSpot{n: 7, side: cfg.Image, ch: cfg.Channels}
	grads := func(replicas, threads int) (float64, [][]float64) {
		SetThreads(threads)
		m, err := NewViT[float64](cfg, 8)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := newReplicaSet(m, replicas)
		if err != nil {
			t.Fatal(err)
		}
		x, y, labels := newBatcher[float64](ds, cfg, 7).fill([]int{0, 1, 2, 3, 4, 5, 6})
		loss := rs.step("ce", 0.1, x, y, labels)
		var g [][]float64
		for _, p := range m.Trainable() {
			g = append(g, append([]float64(nil), p.Grad...))
		}
		if Threads() != threads {
			t.Fatalf("step left %d threads, want %d", Threads(), threads)
		}
		return loss, g
	}
	l1, g1 := grads(1, 1)
	l3, g3 := grads(3, 2)
	if math.Abs(l3-l1) > 1e-14 {
		t.Fatalf("loss: 3 replicas %v, one model %v", l3, l1)
	}
	var norm float64
	for i := range g1 {
		for e := range g1[i] {
			norm = max(norm, math.Abs(g1[i][e]))
			if d := math.Abs(g3[i][e] - g1[i][e]); d > 1e-14 {
				t.Fatalf("param %d element %d: 3 replicas %v, one model %v", i, e, g3[i][e], g1[i][e])
			}
		}
	}
	if norm == 0 {
		t.Fatal("zero gradient: the test checks nothing")
	}
	l3b, g3b := grads(3, 1)
	if l3b != l3 {
		t.Fatalf("loss with 1 thread %v, 2 threads %v", l3b, l3)
	}
	for i := range g3 {
		for e := range g3[i] {
			if g3b[i][e] != g3[i][e] {
				t.Fatalf("param %d element %d differs between thread counts", i, e)
			}
		}
	}

	m, _ := NewViT[float32](replicaCfg("loope"), 1)
	if _, err := newReplicaSet(m, 2); err == nil || !strings.Contains(err.Error(), "BatchNorm") {
		t.Fatalf("loope with 2 replicas: got %v, want a BatchNorm error", err)
	}
}

// TestTrainReplicas: a run with 2 replicas is reproducible bit for bit
// (TestTrainTinyLearns checks that it learns).
func TestTrainReplicas(t *testing.T) {
	cfg, tc := resumeCfg()
	ds := brightSpot{n: 40, side: cfg.Image, ch: cfg.Channels}
	tc.Steps, tc.CheckpointEvery, tc.Replicas = 40, 0, 2
	run := func() (EvalResult, []float32) {
		m, err := NewViT[float32](cfg, 4)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Train(m, ds, ds, tc)
		if err != nil {
			t.Fatal(err)
		}
		return res, append([]float32(nil), m.HeadW.Data...)
	}
	r1, w1 := run()
	r2, w2 := run()
	for i := range w1 {
		if w1[i] != w2[i] {
			t.Fatalf("head weight %d: %v then %v", i, w1[i], w2[i])
		}
	}
	if r1.Loss != r2.Loss || r1.Acc != r2.Acc {
		t.Fatalf("runs: %+v and %+v, want equal", r1, r2)
	}
	tc.Replicas = 41
	if err := tc.Validate(); err == nil {
		t.Fatal("more replicas than the batch passed Validate")
	}
}
