// This file holds the float32 transcendental kernels of the hot ops: e^x
// (softmax in attention) and the normal CDF Φ (exact GELU and its
// derivative). float64 ops keep math.Exp and math.Erf, so float64 goldens
// and gradient checks are unaffected; float32 ops switch to these.
//
// Each kernel is plain Go here and, where the CPU has AVX2 and FMA, also an
// assembly twin (fastmath_amd64.s) that evaluates the same formulas eight
// lanes at a time. fastmath_test.go measures both against math.Exp and
// math.Erfc and checks the twins against each other.
//
// exp32 is Cephes expf (S. L. Moshier, Cephes Math Library 2.2, expf.c):
// n = round(x·log2 e), r = x − n·ln 2 in two parts (C1 = 0.693359375 has
// few bits, so n·C1 is exact), e^r by a degree-7 polynomial whose first
// two terms are 1 + r, then scaling by 2^n through the exponent bits.
// Inputs are clamped to [−88, 89]: where n = −127 (x below about −87.68)
// the exponent field builds 0, so the result is 0; between that and
// ln(FLT_MIN) ≈ −87.34 results are subnormal (less precise, within FLT_MIN);
// above ln(FLT_MAX) ≈ 88.72 the final doubling overflows to +Inf; NaN
// gives NaN.
//
// erfc32 is the Chebyshev fit of Numerical Recipes in C, 2nd ed., §6.2
// (erfcc): with t = 1/(1 + z/2), erfc(z) = t·exp(−z² − 1.26551223 + t·P(t))
// for z ≥ 0, fractional error below 1.2e-7 everywhere in exact arithmetic;
// erfc(−z) = 2 − erfc(z). One branch-free formula for every z is what makes
// it suit SIMD. Φ(x) = erfc(−x/√2)/2 then has relative error near 1e-7 in
// float32 for |x| up to a few units, growing as the rounding of the
// exponent argument (about ulp(x²/2)) for large |x|.

package loope

import "math"

// Cephes expf constants.
const (
	exp32Log2e = 1.44269504088896341
	exp32C1    = 0.693359375    // ln 2, high part (exact in few bits)
	exp32C2    = -2.12194440e-4 // ln 2 − C1
	exp32Lo    = -88.0          // clamp: n ≥ −127 (whose 2^n builds as 0)
	exp32Hi    = 89.0           // clamp: n ≤ 128; e^89 overflows to +Inf
	exp32P0    = 1.9875691500e-4
	exp32P1    = 1.3981999507e-3
	exp32P2    = 8.3334519073e-3
	exp32P3    = 4.1665795894e-2
	exp32P4    = 1.6666665459e-1
	exp32P5    = 5.0000001201e-1
)

// exp32 returns e^x in float32 (Cephes expf, see the file comment), with
// the clamping and scaling of the vector kernels so that both agree.
func exp32(x float32) float32 {
	if x != x {
		return x
	}
	xc := min(max(x, exp32Lo), exp32Hi)
	n := float32(math.RoundToEven(float64(xc * exp32Log2e)))
	r := xc - n*exp32C1
	r -= n * exp32C2
	p := float32(exp32P0)
	p = p*r + exp32P1
	p = p*r + exp32P2
	p = p*r + exp32P3
	p = p*r + exp32P4
	p = p*r + exp32P5
	p = p*(r*r) + r + 1
	// Scale by 2^n, n in [−127, 128], through the exponent field: n = −127
	// gives the bits of 0 (so inputs below −88 flush to 0), and for n > 0
	// the product takes 2^(n−1) and then doubles, so n = 128 overflows in
	// the arithmetic (to +Inf when it must), not in the field.
	ni := int32(n)
	if ni > 0 {
		p *= math.Float32frombits(uint32(ni-1+127) << 23)
		return p + p
	}
	return p * math.Float32frombits(uint32(ni+127)<<23)
}

// Numerical Recipes erfcc coefficients, t⁰ first.
var erfc32Coef = [10]float32{
	-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
	0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277,
}

// erfcAbs32 returns erfc(|z|) (Numerical Recipes erfcc, see the file
// comment) and a² for a = |z|.
func erfcAbs32(z float32) (erfc, a2 float32) {
	a := math.Float32frombits(math.Float32bits(z) &^ (1 << 31))
	t := 1 / (1 + 0.5*a)
	c := &erfc32Coef
	p := c[9]
	for i := 8; i >= 0; i-- {
		p = p*t + c[i]
	}
	a2 = a * a
	return t * exp32(p-a2), a2
}

// erfc32 returns erfc(z) = 1 − erf(z) in float32.
func erfc32(z float32) float32 {
	e, _ := erfcAbs32(z)
	if z < 0 {
		return 2 - e
	}
	return e
}

// Normal-distribution constants.
const (
	negInvSqrt2 = -0.7071067811865476 // −1/√2
	invSqrt2Pi  = 0.3989422804014327  // 1/√(2π)
)

// phi32 returns the standard normal CDF Φ(x) = erfc(−x/√2)/2 and a² =
// x²/2 (as rounded in the kernels; φ(x) = e^(−a²)/√(2π)). The choice
// between h = erfc(|z|)/2 and 1 − h follows the sign bit of x, as the
// vector blend does.
func phi32(x float32) (cdf, a2 float32) {
	e, a2 := erfcAbs32(x * negInvSqrt2)
	h := 0.5 * e
	if math.Float32bits(x)>>31 != 0 {
		return h, a2
	}
	return 1 - h, a2
}

// softmaxRow32 replaces r by softmax(r) (float32 softmaxRow): shift by the
// row maximum, exp32, divide by the sum.
func softmaxRow32(r []float32) {
	if archFastMath && len(r) > 0 {
		softmaxRowAVX2(&r[0], len(r), &fmConst)
		return
	}
	softmaxRow32Go(r)
}

// softmaxRow32Go is softmaxRow32 in plain Go; the sum runs in eight
// partial sums reduced as the vector kernel does.
func softmaxRow32Go(r []float32) {
	if len(r) == 0 {
		return
	}
	mx := r[0]
	for _, v := range r[1:] {
		mx = max(mx, v)
	}
	var lanes [8]float32
	for j, v := range r {
		e := exp32(v - mx)
		r[j] = e
		lanes[j%8] += e
	}
	inv := 1 / sumLanes(&lanes)
	for j := range r {
		r[j] *= inv
	}
}

// softmaxBackRow32 is the float32 softmax backward of one attention row
// (float32 softmaxBackRow): with dot = Σ_c p[c]·d[c] (each product
// rounded) in eight partial sums reduced as sumLanes, it sets
// d[c] = p[c]·(d[c] − dot)·scale. d is at least as long as p.
func softmaxBackRow32(p, d []float32, scale float32) {
	d = d[:len(p)]
	if archFastMath && len(p) > 0 {
		softmaxBackRowAVX2(&p[0], &d[0], len(p), scale, &fmConst)
		return
	}
	softmaxBackRow32Go(p, d, scale)
}

// softmaxBackRow32Go is softmaxBackRow32 in plain Go.
func softmaxBackRow32Go(p, d []float32, scale float32) {
	d = d[:len(p)]
	var lanes [8]float32
	for c, pv := range p {
		lanes[c%8] += float32(pv * d[c]) // rounded product, no fused add: as VMULPS, VADDPS
	}
	dot := sumLanes(&lanes)
	for c, pv := range p {
		d[c] = pv * (d[c] - dot) * scale
	}
}

// sumLanes adds eight partial sums in the vector kernels' reduction order:
// upper half onto lower, then the 64-bit halves, then the last pair.
func sumLanes(l *[8]float32) float32 {
	var h [4]float32
	for i := range h {
		h[i] = l[i] + l[i+4]
	}
	return (h[0] + h[2]) + (h[1] + h[3])
}

// exp32s fills y = e^x (float32 Exp).
func exp32s(y, x []float32) {
	y = y[:len(x)]
	i := 0
	if archFastMath && len(x) >= 8 {
		i = len(x) &^ 7
		expAVX2(&y[0], &x[0], i, &fmConst)
	}
	for ; i < len(x); i++ {
		y[i] = exp32(x[i])
	}
}

// gelu32 fills y = x·Φ(x) (float32 geluForward).
func gelu32(y, x []float32) {
	y = y[:len(x)]
	i := 0
	if archFastMath && len(x) >= 8 {
		i = len(x) &^ 7
		geluAVX2(&y[0], &x[0], i, &fmConst)
	}
	gelu32Go(y[i:], x[i:])
}

// gelu32Go is gelu32 in plain Go.
func gelu32Go(y, x []float32) {
	y = y[:len(x)]
	for i, v := range x {
		cdf, _ := phi32(v)
		y[i] = v * cdf
	}
}

// geluDeriv32 fills y = x·Φ(x) and g = Φ(x) + x·φ(x), the GELU and its
// derivative, in one pass: the float32 GELU forward of a recording tape,
// whose backward then only adds g·dy (mulAdd32).
func geluDeriv32(y, g, x []float32) {
	y, g = y[:len(x)], g[:len(x)]
	i := 0
	if archFastMath && len(x) >= 8 {
		i = len(x) &^ 7
		geluDerivAVX2(&y[0], &g[0], &x[0], i, &fmConst)
	}
	geluDeriv32Go(y[i:], g[i:], x[i:])
}

// geluDeriv32Go is geluDeriv32 in plain Go.
func geluDeriv32Go(y, g, x []float32) {
	y, g = y[:len(x)], g[:len(x)]
	for i, v := range x {
		cdf, a2 := phi32(v)
		y[i] = v * cdf
		pdf := exp32(-a2) * invSqrt2Pi
		g[i] = cdf + v*pdf
	}
}

// mulAdd32 adds a⊙b into dst: dst[i] += a[i]·b[i].
func mulAdd32(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	if archFastMath && len(dst) >= 8 {
		i = len(dst) &^ 7
		mulAddAVX2(&dst[0], &a[0], &b[0], i)
	}
	for ; i < len(dst); i++ {
		dst[i] += a[i] * b[i]
	}
}

// Offsets (in rows of eight lanes) of the constants the vector kernels
// read from fmConst; fastmath_amd64.s mirrors them.
const (
	fmLog2e = iota
	fmC1
	fmC2
	fmLo
	fmHi
	fmP0
	fmP1
	fmP2
	fmP3
	fmP4
	fmP5
	fmOne
	fmHalf
	fmAbsMask
	fmSignMask
	fmNegInvSqrt2
	fmInvSqrt2Pi
	fmBias127
	fmNegInf
	fmErfc0                // ten rows: erfc32Coef[0..9]
	fmMask  = fmErfc0 + 10 // two rows: eight −1 then eight 0 (tail masks)
	fmRows  = fmMask + 2
)

// fmConst holds every constant of the vector kernels, each broadcast to
// eight lanes, built from the named constants above so that the Go and
// assembly kernels cannot drift apart.
var fmConst = func() (c [fmRows][8]float32) {
	set := func(row int, v float32) {
		for i := range c[row] {
			c[row][i] = v
		}
	}
	bits := math.Float32frombits
	set(fmLog2e, exp32Log2e)
	set(fmC1, exp32C1)
	set(fmC2, exp32C2)
	set(fmLo, exp32Lo)
	set(fmHi, exp32Hi)
	for i, p := range []float32{exp32P0, exp32P1, exp32P2, exp32P3, exp32P4, exp32P5} {
		set(fmP0+i, p)
	}
	set(fmOne, 1)
	set(fmHalf, 0.5)
	set(fmAbsMask, bits(0x7fffffff))
	set(fmSignMask, bits(0x80000000))
	set(fmNegInvSqrt2, negInvSqrt2)
	set(fmInvSqrt2Pi, invSqrt2Pi)
	set(fmBias127, bits(127))
	set(fmNegInf, float32(math.Inf(-1)))
	for i, v := range erfc32Coef {
		set(fmErfc0+i, v)
	}
	set(fmMask, bits(0xffffffff))
	set(fmMask+1, 0)
	return c
}()
