//go:build amd64 && !noasm

// This file declares the AVX2+FMA twins (fastmath_amd64.s) of the float32
// kernels in fastmath.go and selects them when the CPU has AVX2 and FMA.

package loope

// archFastMath reports whether the assembly kernels below may run.
var archFastMath = hasAVX2FMA

// softmaxRowAVX2 is softmaxRow32 on r[0:n], n >= 1, with the constants c.
//
//go:noescape
func softmaxRowAVX2(r *float32, n int, c *[fmRows][8]float32)

// softmaxBackRowAVX2 is softmaxBackRow32Go on p[0:n], d[0:n], n >= 1.
//
//go:noescape
func softmaxBackRowAVX2(p, d *float32, n int, scale float32, c *[fmRows][8]float32)

// geluAVX2 is, for i in [0, n), n a multiple of 8:
//
//	cdf, _ := phi32(x[i]); y[i] = x[i] * cdf
//
//go:noescape
func geluAVX2(y, x *float32, n int, c *[fmRows][8]float32)

// geluDerivAVX2 is, for i in [0, n), n a multiple of 8:
//
//	cdf, a2 := phi32(x[i]); y[i] = x[i] * cdf; der[i] = cdf + x[i]*exp32(−a2)/√(2π)
//
//go:noescape
func geluDerivAVX2(y, der, x *float32, n int, c *[fmRows][8]float32)

// mulAddAVX2 is, for i in [0, n), n a multiple of 8: dst[i] += a[i] * b[i]
// (one fused multiply-add).
//
//go:noescape
func mulAddAVX2(dst, a, b *float32, n int)

// expAVX2 is, for i in [0, n), n a multiple of 8: y[i] = exp32(x[i]).
//
//go:noescape
func expAVX2(y, x *float32, n int, c *[fmRows][8]float32)
