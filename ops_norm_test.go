package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

// layerNormRef64 runs the reference layer's LayerNorm (RefLayerNormForward,
// RefLayerNormBackward) on float32 inputs widened to float64: it returns y
// and, for output gradient g, dx, dγ, dβ.
func layerNormRef64(x, gamma, beta, g []float32, rows, d int, eps float64) (y, dx, dg, db []float64) {
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
	for _, sz := range rowColSizes {
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

func TestLayerNormForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	x, g, b := randOf[float64](rng, 3, 4, 7), randOf[float64](rng, 7), randOf[float64](rng, 7)
	for i := range x.Data[:7] { // a row with a large offset: the two-pass variance must not cancel
		x.Data[i] = 1e4 + x.Data[i]
	}
	var tp Tape[float64]
	y := tp.LayerNorm(x, g, b, 1e-6)
	want := make([]float64, x.Size())
	for r := range 12 {
		row := x.Data[r*7 : (r+1)*7]
		mu := 0.0
		for _, v := range row {
			mu += v / 7
		}
		vr := 0.0
		for _, v := range row {
			vr += (v - mu) * (v - mu) / 7
		}
		for j, v := range row {
			want[r*7+j] = (v-mu)/math.Sqrt(vr+1e-6)*g.Data[j] + b.Data[j]
		}
	}
	if d := maxDiff(y.Data, want); d > 1e-9 {
		t.Errorf("LayerNorm vs reference: max |diff| %g", d)
	}
}

func TestBatchNorm2dForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 1))
	const B, C, H, W, mom, eps = 3, 2, 2, 3, 0.1, 1e-5
	x, g, b := randOf[float64](rng, B, C, H, W), randOf[float64](rng, C), randOf[float64](rng, C)
	rm0, rv0 := []float64{0.3, -0.1}, []float64{0.7, 1.4}
	for _, training := range []bool{true, false} {
		rm, rv := FromData(append([]float64(nil), rm0...), C), FromData(append([]float64(nil), rv0...), C)
		var tp Tape[float64]
		y := tp.BatchNorm2d(x, g, b, rm, rv, mom, eps, training)
		for c := range C {
			var vals []float64
			for bi := range B {
				vals = append(vals, x.Data[(bi*C+c)*H*W:(bi*C+c+1)*H*W]...)
			}
			n := float64(len(vals))
			mu, vb := 0.0, 0.0
			for _, v := range vals {
				mu += v / n
			}
			for _, v := range vals {
				vb += (v - mu) * (v - mu) / n
			}
			wantRM, wantRV := (1-mom)*rm0[c]+mom*mu, (1-mom)*rv0[c]+mom*vb*n/(n-1)
			useM, useV := mu, vb
			if !training {
				wantRM, wantRV, useM, useV = rm0[c], rv0[c], rm0[c], rv0[c]
			}
			if math.Abs(rm.Data[c]-wantRM) > 1e-12 || math.Abs(rv.Data[c]-wantRV) > 1e-12 {
				t.Errorf("training=%v channel %d: running stats %g, %g, want %g, %g", training, c, rm.Data[c], rv.Data[c], wantRM, wantRV)
			}
			for bi := range B {
				for i := range H * W {
					o := (bi*C+c)*H*W + i
					want := (x.Data[o]-useM)/math.Sqrt(useV+eps)*g.Data[c] + b.Data[c]
					if math.Abs(y.Data[o]-want) > 1e-12 {
						t.Fatalf("training=%v elem %d: %g, want %g", training, o, y.Data[o], want)
					}
				}
			}
		}
	}
}

func BenchmarkLayerNorm(b *testing.B) {
	b.ReportAllocs()
	benchOp(b, [][]int{{8, 197, 192}, {192}, {192}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.LayerNorm(in[0], in[1], in[2], 1e-6)
	})
}

func BenchmarkBatchNorm2d(b *testing.B) {
	b.ReportAllocs()
	rm, rv := New[float32](16), New[float32](16).FillUniform(rand.New(rand.NewPCG(3, 3)), 0.5, 1.5)
	benchOp(b, [][]int{{8, 16, 14, 14}, {16}, {16}}, func(tp *Tape[float32], in []*Tensor[float32]) *Tensor[float32] {
		return tp.BatchNorm2d(in[0], in[1], in[2], rm, rv, 0.1, 1e-5, true)
	})
}
