// This file holds the plain-Go GEMM micro-kernel: the twin of the assembly
// kernels, always compiled, used by -tags noasm builds and on CPUs without
// AVX2+FMA, and cross-checked against them in matmul_test.go. It runs inside
// the same packed driver (gemmPacked in matmul.go).

package loope

// gemmKernel2x4 is the gemmKernel micro-kernel for a 2x4 tile: 8 scalar
// accumulators, the largest tile that does not spill on amd64 (a 4x4 tile
// measured slower; docs/benchmarks.md §1, b3 vs b4).
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

// gemmKernel6x16Row is the plain-Go twin of the in-place assembly kernel
// gemmKernel6x16RowF32 (see gemmKernel.rowFn): for i in [0, np),
// C[6i+r, j] (+)= Σ_p a[(6i+r)*lda+p]·b[p*ldb+j], r < 6, j < 16, p in order.
func gemmKernel6x16Row[T Float](np, kc int, a []T, lda int, b []T, ldb int, c []T, ldc int, add bool) {
	gemmKernel6x16InPlace(np, kc, a, lda, 1, 6*lda, b, ldb, c, ldc, add)
}

// gemmKernel6x16Col is the plain-Go twin of gemmKernel6x16ColF32 (see
// gemmKernel.colFn): gemmKernel6x16Row with A(6i+r, p) = a[p*lda+6i+r].
func gemmKernel6x16Col[T Float](np, kc int, a []T, lda int, b []T, ldb int, c []T, ldc int, add bool) {
	gemmKernel6x16InPlace(np, kc, a, 1, lda, 6, b, ldb, c, ldc, add)
}

// gemmKernel6x16InPlace is, for i in [0, np), C[6i+r, j] (+)= Σ_p
// a[i*ps+r*rs+p*cs]·b[p*ldb+j] for r < 6, j < 16, summed in p order.
func gemmKernel6x16InPlace[T Float](np, kc int, a []T, rs, cs, ps int, b []T, ldb int, c []T, ldc int, add bool) {
	for i := range np {
		var acc [6][16]T
		var ap []T
		if kc > 0 { // a may be empty when kc = 0
			ap = a[i*ps:]
		}
		for p := range kc {
			br := (*[16]T)(b[p*ldb:])
			for r := range 6 {
				x := ap[r*rs+p*cs]
				for j, y := range br {
					acc[r][j] += x * y
				}
			}
		}
		for r := range 6 {
			dst := (*[16]T)(c[(6*i+r)*ldc:])
			if add {
				for j, v := range acc[r] {
					dst[j] += v
				}
			} else {
				*dst = acc[r]
			}
		}
	}
}

// gemmKernel6x16 is the plain-Go twin of gemmKernel6x16F32: the packed
// kernel (gemmKernel.fn) as gemmKernel6x16Col on each k-major Â panel.
func gemmKernel6x16[T Float](np, kc int, a, b, c []T, ldc int, add bool) {
	for i := range np {
		gemmKernel6x16Col(1, kc, a[i*6*kc:], 6, b, 16, c[i*6*ldc:], ldc, add)
	}
}

// goKernel6x16For returns a plain-Go kernel with the assembly float32
// kernel's tile, blocking, in-place variants and depth split, so tests run
// the driver's in-place paths (gemmDirect, gemmInPlace, the attention fast
// path) and gemmKSplit in every build. It is too slow for production use.
func goKernel6x16For[T Float]() *gemmKernel[T] {
	return &gemmKernel[T]{name: "go-6x16", mr: 6, nr: 16, mc: 144, kc: 256, kcMax: 768, nc: 4080, parMin: parMinFlops,
		directMaxN: directMaxNF32, directBMaxM: directBMaxMF32, kcTN: kcTNF32, kSplitDepth: kSplitF32[0], kSplitMaxMN: kSplitF32[1],
		fn: gemmKernel6x16[T], rowFn: gemmKernel6x16Row[T], colFn: gemmKernel6x16Col[T]}
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
