package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// BenchmarkTrainStep times one full training step (zero grads, forward,
// 6-bit BCE, backward, AdamW) of a preset at batch 64 (ti16 takes seconds
// per step and several GB: select it with -bench or -benchtime 3x), after one warm-up
// step, reporting images/s and the process CPU time per step (user +
// system, all threads: steadier than wall time on a shared machine).
func BenchmarkTrainStep(b *testing.B) {
	for _, c := range []struct {
		preset, pe      string
		batch, replicas int
	}{{"tiny", "learnable", 64, 1}, {"small", "learnable", 64, 1}, {"small", "loope", 64, 1}, {"ti16", "learnable", 64, 1},
		{"small", "learnable", 64, 2}, {"small", "learnable", 32, 1}, {"small", "learnable", 32, 2}, {"small", "learnable", 16, 2}, {"small", "loope", 32, 1}} {
		name := fmt.Sprintf("preset=%s/pe=%s/B=%d", c.preset, c.pe, c.batch)
		if c.replicas > 1 {
			name += fmt.Sprintf("/replicas=%d", c.replicas)
		}
		b.Run(name, func(b *testing.B) {
			cfg, _ := Preset(c.preset)
			cfg.PE.Name = c.pe
			m, err := NewViT[float32](cfg, 1)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			x := New[float32](c.batch, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rng, 0, 1)
			y := New[float32](c.batch, cfg.Classes)
			for i := range y.Data {
				y.Data[i] = float32(rng.IntN(2))
			}
			labels := make([]int, c.batch) // unused by BCE
			opt := NewAdamW(m.Params(), 0.05)
			rs, err := newReplicaSet(m, c.replicas)
			if err != nil {
				b.Fatal(err)
			}
			step := func() {
				rs.step("bce", 0, x, y, labels)
				opt.Update(1e-3)
			}
			step() // warm-up: the tape's arena and the GEMM buffers reach their steady state
			b.ReportAllocs()
			cpu0 := processCPUTime()
			for b.Loop() {
				step()
			}
			b.ReportMetric(float64(c.batch*b.N)/b.Elapsed().Seconds(), "images/s")
			if cpu := processCPUTime() - cpu0; cpu > 0 {
				b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/step")
			}
		})
	}
}

// TestTimeTrainSteps checks that the timed steps train (the weights move)
// and that a non-finite loss is an error naming the step.
func TestTimeTrainSteps(t *testing.T) {
	cfg, _ := Preset("tiny")
	m, err := NewViT[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	x := New[float32](2, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rand.New(rand.NewPCG(1, 2)), 0, 1)
	y := New[float32](2, cfg.Classes)
	head := append([]float32(nil), m.HeadW.Data...)
	if dt, err := TimeTrainSteps(m, x, y, 1, 2); err != nil || dt <= 0 {
		t.Fatalf("TimeTrainSteps = %v, %v", dt, err)
	}
	if slices.Equal(head, m.HeadW.Data) {
		t.Error("the head weights did not move")
	}
	x.Data[0] = float32(math.NaN())
	if _, err := TimeTrainSteps(m, x, y, 0, 1); err == nil || !strings.Contains(err.Error(), "non-finite loss") {
		t.Errorf("NaN input: got %v", err)
	}
}
