package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBiasGradChunks checks biasGrad against column sums in float64, and
// that its result is bit-identical for 1, 2 and 3 threads.
func TestBiasGradChunks(t *testing.T) {
	for _, sz := range rowColSizes {
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
