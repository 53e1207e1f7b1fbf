package loope

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkTrainStep times one full training step (zero grads, forward,
// 6-bit BCE, backward, AdamW) of a preset at batch 64, reporting images/s.
func BenchmarkTrainStep(b *testing.B) {
	for _, c := range []struct{ preset, pe string }{{"tiny", "learnable"}, {"small", "learnable"}} {
		b.Run("preset="+c.preset+"/pe="+c.pe+"/B=64", func(b *testing.B) {
			cfg, _ := Preset(c.preset)
			cfg.PE.Name = c.pe
			m, err := NewViT[float32](cfg, 1)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			x := New[float32](64, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rng, 0, 1)
			y := New[float32](64, cfg.Classes)
			for i := range y.Data {
				y.Data[i] = float32(rng.IntN(2))
			}
			opt := NewAdamW(m.Params(), 0.05)
			trainable := m.Trainable()
			var tp Tape[float32]
			b.ReportAllocs()
			for b.Loop() {
				tp.Reset()
				ZeroGrad(trainable)
				tp.Backward(tp.BCEWithLogits(m.Forward(&tp, x), y))
				opt.Update(1e-3)
			}
			b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
