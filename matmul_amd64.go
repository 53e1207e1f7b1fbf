//go:build amd64 && !noasm

// This file selects the AVX2+FMA GEMM micro-kernels in matmul_amd64.s at run
// time. The assembly is generated; edit gen_matmul_asm.go, not the .s file.

//go:generate go run gen_matmul_asm.go

package loope

// gemmKernel6x16F32 is, for i in [0, np), with Â_i = a[i*6*kc:] and
// C_i = c[i*6*ldc:] (kc >= 0, np >= 0):
//
//	for r := range 6 { for j := range 16 {
//		s := 0; for p := range kc { s += Â_i[p*6+r] * b[p*16+j] }  // FMA, k in order
//		if add { C_i[r*ldc+j] += s } else { C_i[r*ldc+j] = s }
//	}}
//
//go:noescape
func gemmKernel6x16F32(np, kc int, a, b, c *float32, ldc int, add bool)

// gemmKernel6x8F64 is gemmKernel6x16F32 for float64 with 8 columns.
//
//go:noescape
func gemmKernel6x8F64(np, kc int, a, b, c *float64, ldc int, add bool)

// gemmKernel6x16RowF32 is gemmKernel6x16F32 with A read in place, row-major
// with row stride lda, and B with row stride ldb: for i in [0, np),
//
//	C[i*6*ldc+r*ldc+j] (+)= Σ_p a[(i*6+r)*lda+p] * b[p*ldb+j]  (r < 6, j < 16)
//
//go:noescape
func gemmKernel6x16RowF32(np, kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, add bool)

// gemmKernel6x16ColF32 is gemmKernel6x16RowF32 with A read k-major (a
// transposed operand): A(i*6+r, p) = a[p*lda+i*6+r].
//
//go:noescape
func gemmKernel6x16ColF32(np, kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, add bool)

// cpuid executes CPUID with EAX=leaf, ECX=sub.
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// xgetbv0 reads XCR0 (which register states the OS saves).
func xgetbv0() (eax, edx uint32)

// hasAVX2FMA reports whether the CPU and OS support AVX2 and FMA3.
var hasAVX2FMA = detectAVX2FMA()

func detectAVX2FMA() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&6 != 6 { // XMM and YMM state enabled
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0 // AVX2
}

// archKernelF32 is the AVX2+FMA float32 kernel, or nil when the CPU lacks it.
// AVX-512 is not used: on Zen 4 it is double-pumped and a 12x32 AVX-512
// kernel measured slower than this one (docs/benchmarks.md §1, x3 vs x4).
func archKernelF32() *gemmKernel[float32] {
	if !hasAVX2FMA {
		return nil
	}
	return &avx2F32
}

// archKernelF64 is the AVX2+FMA float64 kernel, or nil when the CPU lacks it.
func archKernelF64() *gemmKernel[float64] {
	if !hasAVX2FMA {
		return nil
	}
	return &avx2F64
}

var avx2F32 = gemmKernel[float32]{name: "avx2-6x16", mr: 6, nr: 16, mc: 144, kc: 256, nc: 4080, kcMax: 768, parMin: parMinFlops,
	directMaxN: directMaxNF32, directBMaxM: directBMaxMF32, kcTN: kcTNF32, kSplitDepth: kSplitF32[0], kSplitMaxMN: kSplitF32[1],
	fn: func(np, kc int, a, b, c []float32, ldc int, add bool) {
		_, _ = a[np*6*kc-1], b[kc*16-1]
		_ = c[(np*6-1)*ldc+15]
		gemmKernel6x16F32(np, kc, &a[0], &b[0], &c[0], ldc, add)
	},
	rowFn: func(np, kc int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, add bool) {
		if np == 0 {
			return
		}
		_ = c[(np*6-1)*ldc+15]
		var ap, bp *float32
		if kc > 0 {
			_, _ = a[(np*6-1)*lda+kc-1], b[(kc-1)*ldb+15]
			ap, bp = &a[0], &b[0]
		}
		gemmKernel6x16RowF32(np, kc, ap, lda, bp, ldb, &c[0], ldc, add)
	},
	colFn: func(np, kc int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, add bool) {
		if np == 0 {
			return
		}
		_ = c[(np*6-1)*ldc+15]
		var ap, bp *float32
		if kc > 0 {
			_, _ = a[(kc-1)*lda+np*6-1], b[(kc-1)*ldb+15]
			ap, bp = &a[0], &b[0]
		}
		gemmKernel6x16ColF32(np, kc, ap, lda, bp, ldb, &c[0], ldc, add)
	}}

var avx2F64 = gemmKernel[float64]{name: "avx2-6x8", mr: 6, nr: 8, mc: 72, kc: 256, nc: 2040, kcMax: 768, parMin: parMinFlops,
	fn: func(np, kc int, a, b, c []float64, ldc int, add bool) {
		_, _ = a[np*6*kc-1], b[kc*8-1]
		_ = c[(np*6-1)*ldc+7]
		gemmKernel6x8F64(np, kc, &a[0], &b[0], &c[0], ldc, add)
	}}
