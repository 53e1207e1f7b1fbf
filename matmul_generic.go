// This file holds the plain-Go GEMM micro-kernel: the twin of the assembly
// kernels, always compiled, used by -tags noasm builds and on CPUs without
// AVX2+FMA, and cross-checked against them in matmul_test.go. It runs inside
// the same packed driver (gemmPacked in matmul.go).

package loope

// gemmKernel2x4 is the gemmKernel micro-kernel for a 2x4 tile: 8 scalar
// accumulators, the largest tile that does not spill on amd64 (a 4x4 tile
// measured slower; gemm-perf.md §2, b3 vs b4).
func gemmKernel2x4[T Float](np, kc int, a, b, c []T, ldc int, add bool) {
	b = b[:4*kc]
	for i := range np {
		ap := a[i*2*kc : (i+1)*2*kc]
		bp := b
		var c00, c01, c02, c03, c10, c11, c12, c13 T
		for len(ap) >= 2 && len(bp) >= 4 {
			a0, a1 := ap[0], ap[1]
			b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
			c00 += a0 * b0
			c01 += a0 * b1
			c02 += a0 * b2
			c03 += a0 * b3
			c10 += a1 * b0
			c11 += a1 * b1
			c12 += a1 * b2
			c13 += a1 * b3
			ap, bp = ap[2:], bp[4:]
		}
		r0 := c[2*i*ldc : 2*i*ldc+4]
		r1 := c[(2*i+1)*ldc : (2*i+1)*ldc+4]
		if add {
			r0[0], r0[1], r0[2], r0[3] = r0[0]+c00, r0[1]+c01, r0[2]+c02, r0[3]+c03
			r1[0], r1[1], r1[2], r1[3] = r1[0]+c10, r1[1]+c11, r1[2]+c12, r1[3]+c13
		} else {
			r0[0], r0[1], r0[2], r0[3] = c00, c01, c02, c03
			r1[0], r1[1], r1[2], r1[3] = c10, c11, c12, c13
		}
	}
}

// The plain-Go kernels use the assembly kernels' cache blocking (mc, nc
// rounded to the 2x4 tile).
var (
	goKernelF32 = gemmKernel[float32]{name: "go-2x4", mr: 2, nr: 4, mc: 144, kc: 256, kcMax: 768, nc: 4080, parMin: parMinFlops, fn: gemmKernel2x4[float32]}
	goKernelF64 = gemmKernel[float64]{name: "go-2x4", mr: 2, nr: 4, mc: 72, kc: 256, kcMax: 768, nc: 2040, parMin: parMinFlops, fn: gemmKernel2x4[float64]}
)

// goKernelFor returns the plain-Go kernel for T.
func goKernelFor[T Float]() *gemmKernel[T] {
	var z T
	switch any(z).(type) {
	case float32:
		return any(&goKernelF32).(*gemmKernel[T])
	case float64:
		return any(&goKernelF64).(*gemmKernel[T])
	}
	return &gemmKernel[T]{name: "go-2x4", mr: 2, nr: 4, mc: 72, kc: 256, kcMax: 768, nc: 2040, parMin: parMinFlops, fn: gemmKernel2x4[T]}
}
