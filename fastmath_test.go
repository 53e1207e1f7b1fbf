package loope

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// ulpDiff returns |got − want| in units of the float32 spacing at want
// (want rounded to float32, at least the smallest normal's spacing).
func ulpDiff(got float32, want float64) float64 {
	w := float32(want)
	a := math.Abs(float64(w))
	a = math.Max(a, float64(math.SmallestNonzeroFloat32)*(1<<23)) // FLT_MIN
	ulp := float64(math.Nextafter32(float32(a), float32(math.Inf(1)))) - float64(float32(a))
	return math.Abs(float64(got)-want) / ulp
}

// TestExp32 measures exp32 and the vector kernel against math.Exp over
// [−87.3, 88.7] (normal results): at most 2 ulp. Below the smallest
// normal the kernels flush to 0 or return a subnormal within FLT_MIN.
func TestExp32(t *testing.T) {
	const lo, hi = -87.33, 88.72
	n := 1 << 18
	x := make([]float32, n)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range x {
		if i%2 == 0 {
			x[i] = float32(lo + (hi-lo)*float64(i)/float64(n))
		} else {
			x[i] = float32(lo + (hi-lo)*rng.Float64())
		}
	}
	y := make([]float32, n)
	exp32s(y, x)
	var worst, worstV float64
	for i, v := range x {
		want := math.Exp(float64(v))
		for _, got := range []float32{exp32(v), y[i]} {
			if d := ulpDiff(got, want); d > worst {
				worst, worstV = d, float64(v)
			}
		}
	}
	t.Logf("exp32: max error %.2f ulp (at x = %g) over [%g, %g]", worst, worstV, lo, hi)
	if worst > 2 {
		t.Errorf("exp32 error %.2f ulp at x = %g, want <= 2", worst, worstV)
	}
	flt := float64(math.SmallestNonzeroFloat32) * (1 << 23)
	special := []struct {
		x    float32
		want float64
		tol  float64
	}{
		{0, 1, 0}, {-87.5, math.Exp(-87.5), flt}, {-88, 0, flt}, {-100, 0, 0},
		{float32(math.Inf(-1)), 0, 0}, {88.7, math.Exp(float64(float32(88.7))), 2.4e-7 * math.Exp(88.7)},
		{88.73, math.Inf(1), 0}, {100, math.Inf(1), 0}, {float32(math.Inf(1)), math.Inf(1), 0},
	}
	xs := make([]float32, 8*len(special))
	for i, s := range special {
		xs[8*i] = s.x
	}
	ys := make([]float32, len(xs))
	exp32s(ys, xs)
	for i, s := range special {
		for _, got := range []float32{exp32(s.x), ys[8*i]} {
			if !(float64(got) == s.want || math.Abs(float64(got)-s.want) <= s.tol) {
				t.Errorf("exp32(%g) = %g, want %g (±%g)", s.x, got, s.want, s.tol)
			}
		}
	}
	nan := float32(math.NaN())
	if g := exp32(nan); g == g {
		t.Errorf("exp32(NaN) = %g", g)
	}
	xs[0] = nan
	exp32s(ys, xs)
	if ys[0] == ys[0] {
		t.Errorf("vector exp(NaN) = %g", ys[0])
	}
}

// erfcTol is the relative error allowed for erfc32(z): the 1.2e-7 of the
// Numerical Recipes fit plus the float32 rounding of the exponent argument
// −z² + P(t) (about ulp(z² + 2), i.e. 1.2e-7·(z² + 2)) and a few ulp of
// the surrounding products.
func erfcTol(z float64) float64 { return 1.2e-7 + 1.2e-7*(z*z+2) + 4*6e-8 }

// TestErfc32 measures erfc32 against math.Erfc over [−9, 9], and erf =
// 1 − erfc against math.Erf (absolute error) over the same range.
func TestErfc32(t *testing.T) {
	var worst, worstZ, worstErf float64
	for i := -90000; i <= 90000; i++ {
		z := float32(float64(i) / 10000)
		want := math.Erfc(float64(z))
		got := float64(erfc32(z))
		rel := math.Abs(got-want) / want
		if rel/erfcTol(float64(z)) > worst/erfcTol(worstZ) {
			worst, worstZ = rel, float64(z)
		}
		// erf = 1 − erfc: the error of erfc plus one rounding near 1.
		d := math.Abs((1 - got) - math.Erf(float64(z)))
		worstErf = math.Max(worstErf, d)
		if d > want*erfcTol(float64(z))+6e-8 {
			t.Errorf("erf = 1 − erfc32(%g): absolute error %.3g", z, d)
		}
	}
	t.Logf("erfc32: worst relative error %.3g at z = %g (allowed there %.3g); erf = 1 − erfc32: max absolute error %.3g",
		worst, worstZ, erfcTol(worstZ), worstErf)
	if worst > erfcTol(worstZ) {
		t.Errorf("erfc32 relative error %.3g at z = %g, want <= %.3g", worst, worstZ, erfcTol(worstZ))
	}
}

// TestGELU32 checks gelu32 and geluDeriv32 (vector and Go paths) against
// float64 references over x in [−12, 12]. Φ is relative-accurate like
// erfc (tolerance erfcTol(z) at z = x/√2, plus 2.4e-7·z² for the rounding
// of z itself, which the exponent −z² doubles: float32(1/√2) and x·(1/√2)
// are both rounded; plus a few ulp for the products). The
// derivative Φ + x·φ cancels for x < 0 (it crosses zero near x = −0.75),
// so it is compared absolutely against the scale of its two terms.
func TestGELU32(t *testing.T) {
	n := 240001
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(-12 + 24*float64(i)/float64(n-1))
	}
	for _, path := range []string{"dispatch", "go"} {
		y, yd, dx := make([]float32, n), make([]float32, n), make([]float32, n)
		if path == "go" {
			gelu32Go(y, x)
			geluDeriv32Go(yd, dx, x)
		} else {
			gelu32(y, x)
			geluDeriv32(yd, dx, x)
		}
		for i := range y {
			if math.Float32bits(yd[i]) != math.Float32bits(y[i]) {
				t.Fatalf("%s: geluDeriv32's GELU %v at x = %v differs from gelu32's %v", path, yd[i], x[i], y[i])
			}
		}
		x64, ones := make([]float64, n), make([]float64, n)
		for i, v := range x {
			x64[i], ones[i] = float64(v), 1
		}
		ry, rd := make([]float64, n), make([]float64, n)
		RefGELUForward(ry, x64)
		RefGELUBackward(rd, ones, x64)
		var worstY, worstD float64
		for i, v := range x {
			f, wy, wd := float64(v), ry[i], rd[i]
			z := f / math.Sqrt2
			tol := erfcTol(z) + 2.4e-7*z*z + 3e-7
			if e := math.Abs(float64(y[i])-wy) / math.Abs(wy); wy != 0 && e/tol > worstY {
				worstY = e / tol
			}
			scale := 0.5*math.Erfc(-f/math.Sqrt2) + math.Abs(f)*math.Exp(-0.5*f*f)/math.Sqrt(2*math.Pi)
			if e := math.Abs(float64(dx[i])-wd) / scale; e/tol > worstD {
				worstD = e / tol
			}
		}
		t.Logf("%s: worst GELU error %.2f of tolerance, worst derivative error %.2f of tolerance", path, worstY, worstD)
		if worstY > 1 || worstD > 1 {
			t.Errorf("%s: GELU error %.2f, derivative error %.2f of tolerance", path, worstY, worstD)
		}
	}
}

// TestFastMathCrossCheck compares the vector kernels with their Go twins on
// random data of lengths around the 8-lane blocks, with guard values after
// each slice that must stay untouched (masked tails must not write past n).
func TestFastMathCrossCheck(t *testing.T) {
	if !archFastMath {
		t.Skip("no assembly kernels in this build or on this CPU")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	lens := []int{1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 64, 197, 1000}
	for _, n := range lens {
		for _, scale := range []float64{0.1, 3, 30} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(scale * rng.NormFloat64())
			}
			a, b := make([]float32, n+8), make([]float32, n)
			for i := range a[n:] {
				a[n+i] = fmGuard
			}
			// softmax
			copy(a, x)
			copy(b, x)
			softmaxRowAVX2(&a[0], n, &fmConst)
			softmaxRow32Go(b)
			compareTwins(t, "softmax", n, scale, a, b, 4, 0)
			// softmax backward on those probabilities: the twins bit for
			// bit, and both within the worst-case float32 error of the
			// float64 result (n·ε·Σ|p·d| for the sum, 3ε for the rest)
			pr, d := append([]float32(nil), b...), make([]float32, n)
			var dot, absDot float64
			for i := range d {
				d[i] = float32(rng.NormFloat64())
				dot += float64(pr[i]) * float64(d[i])
				absDot += math.Abs(float64(pr[i]) * float64(d[i]))
			}
			copy(a, d)
			copy(b, d)
			softmaxBackRowAVX2(&pr[0], &a[0], n, 0.25, &fmConst)
			softmaxBackRow32Go(pr, b, 0.25)
			compareTwins(t, "softmaxBack", n, scale, a, b, 0, 0)
			const eps = 0x1p-24
			for i, v := range b {
				want := float64(pr[i]) * (float64(d[i]) - dot) * 0.25
				tol := float64(pr[i]) * 0.25 * (float64(n)*eps*absDot + 3*eps*(math.Abs(float64(d[i]))+math.Abs(dot)))
				if math.Abs(float64(v)-want) > tol {
					t.Fatalf("softmaxBack n=%d [%d]: %v, float64 %v (tolerance %g)", n, i, v, want, tol)
				}
			}
			// exp (the vector part only takes whole blocks)
			m := n &^ 7
			if m > 0 {
				clear(a[:n])
				expAVX2(&a[0], &x[0], m, &fmConst)
				for i := range m {
					b[i] = exp32(x[i])
				}
				compareTwins(t, "exp", m, scale, a[:m+8], b[:m], 2, 0)
				// GELU
				geluAVX2(&a[0], &x[0], m, &fmConst)
				gelu32Go(b[:m], x[:m])
				compareTwins(t, "gelu", m, scale, a[:m+8], b[:m], 8, 1e-7)
				// GELU with its derivative; its y is geluAVX2's bit for bit
				ga, gb := make([]float32, m+8), make([]float32, m)
				for i := range ga[m:] {
					ga[m+i] = fmGuard
				}
				geluDerivAVX2(&a[0], &ga[0], &x[0], m, &fmConst)
				geluDeriv32Go(b[:m], gb, x[:m])
				compareTwins(t, "geluDeriv y", m, scale, a[:m+8], b[:m], 8, 1e-7)
				compareTwins(t, "geluDeriv g", m, scale, ga, gb, 8, 2e-6)
				ref := make([]float32, m)
				geluAVX2(&ref[0], &x[0], m, &fmConst)
				for i := range m {
					if math.Float32bits(a[i]) != math.Float32bits(ref[i]) {
						t.Fatalf("geluDerivAVX2 n=%d: y[%d] = %v, geluAVX2 %v", m, i, a[i], ref[i])
					}
				}
				// mulAdd: dst += g·dy, one fused multiply-add, so
				// exactly float32(dst + g·dy) with g·dy exact in float64
				dy := make([]float32, m)
				for i := range dy {
					dy[i] = float32(rng.NormFloat64())
				}
				for i := range m {
					a[i] = 0.5
				}
				mulAddAVX2(&a[0], &ga[0], &dy[0], m)
				for i := range m {
					if want := fma32(ga[i], dy[i], 0.5); math.Float32bits(a[i]) != math.Float32bits(want) {
						t.Fatalf("mulAddAVX2 n=%d: [%d] = %v, fused %v", m, i, a[i], want)
					}
				}
				for i, v := range a[m : m+8] {
					if v != fmGuard && v != 0 {
						t.Fatalf("mulAddAVX2 n=%d wrote past the end at %d", m, m+i)
					}
				}
			}
		}
	}
}

// fmGuard marks slots past the end that kernels must not write.
const fmGuard = 12345

// compareTwins checks a[:len(b)] against b within ulps float32 ulps or
// abs absolutely, and that a's 8 trailing guard values are intact.
func compareTwins(t *testing.T, name string, n int, scale float64, a, b []float32, ulps, abs float64) {
	t.Helper()
	for i, w := range b {
		if d := ulpDiff(a[i], float64(w)); d > ulps && math.Abs(float64(a[i]-w)) > abs {
			t.Errorf("%s n=%d scale=%g: element %d: asm %g, go %g (%.1f ulp)", name, n, scale, i, a[i], w, d)
			return
		}
	}
	for i, v := range a[len(b):] {
		if v != fmGuard && v != 0 { // guard (or a cleared spare slot)
			t.Errorf("%s n=%d: wrote past the end at %d: %g", name, n, len(b)+i, v)
			return
		}
	}
}

// BenchmarkFastMath times the float32 kernels per element against the
// float64 math versions they replace.
func BenchmarkFastMath(b *testing.B) {
	n := 4096
	rng := rand.New(rand.NewPCG(1, 1))
	x, y, dx := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(3 * rng.NormFloat64())
	}
	run := func(name string, f func()) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				f()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/elem")
		})
	}
	run("softmax197/fast", func() {
		for o := 0; o+197 <= n; o += 197 {
			copy(y[o:o+197], x[o:o+197])
			softmaxRow32(y[o : o+197])
		}
	})
	run("softmax197/math", func() {
		for o := 0; o+197 <= n; o += 197 {
			copy(y[o:o+197], x[o:o+197])
			softmaxRowMath(y[o : o+197])
		}
	})
	run("gelu/fast", func() { gelu32(y, x) })
	run("gelu/go", func() { gelu32Go(y, x) })
	run("gelu/math", func() {
		for i, v := range x {
			f := float64(v)
			y[i] = float32(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
		}
	})
	run("geluDeriv/fast", func() { geluDeriv32(y, dx, x) })
	run("geluDeriv/go", func() { geluDeriv32Go(y, dx, x) })
}

// fma32 is a·b + c rounded once to float32 (nearest even), as one FMA
// instruction computes it: the exact sum in math/big, then one rounding.
func fma32(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(400).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}
