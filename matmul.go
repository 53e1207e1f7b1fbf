// This file holds the GEMM entry points every op uses: C (+)= op(A)·op(B)
// on row-major slices with leading dimensions, single and batched.

package loope

import "fmt"

// gemm computes C = op(A)·op(B), or C += op(A)·op(B) when acc is true.
// op(A) is (m, k): A is stored (m, k) with row stride lda, or (k, m) when
// transA. op(B) is (k, n): B is stored (k, n) with row stride ldb, or (n, k)
// when transB. C is (m, n) with row stride ldc.
func gemm[T Float](transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int, acc bool) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	if !acc {
		for i := range m {
			clear(c[i*ldc : i*ldc+n])
		}
	}
	if k == 0 {
		return
	}
	gemmGeneric(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
}

// gemmBatched runs batch independent GEMMs; operand i starts at i*strideA,
// i*strideB, i*strideC. Each product runs on one goroutine, and products
// are split over goroutines in fixed contiguous ranges.
func gemmBatched[T Float](transA, transB bool, batch, m, n, k int,
	a []T, strideA, lda int, b []T, strideB, ldb int, c []T, strideC, ldc int, acc bool) {
	parallelFor(batch, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gemmSerial(transA, transB, m, n, k, a[i*strideA:], lda, b[i*strideB:], ldb, c[i*strideC:], ldc, acc)
		}
	})
}

// gemmSerial is gemm on the calling goroutine only.
func gemmSerial[T Float](transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int, acc bool) {
	gemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
}

// checkGemm panics if a slice is too short for the shapes and strides.
func checkGemm(transA, transB bool, m, n, k, na, lda, nb, ldb, nc, ldc int) {
	ra, ca := m, k
	if transA {
		ra, ca = k, m
	}
	rb, cb := k, n
	if transB {
		rb, cb = n, k
	}
	bad := m < 0 || n < 0 || k < 0 || lda < max(ca, 1) || ldb < max(cb, 1) || ldc < max(n, 1) ||
		(ra > 0 && ca > 0 && na < (ra-1)*lda+ca) ||
		(rb > 0 && cb > 0 && nb < (rb-1)*ldb+cb) ||
		(m > 0 && n > 0 && nc < (m-1)*ldc+n)
	if bad {
		panic(fmt.Sprintf("loope: gemm: bad arguments transA=%v transB=%v m=%d n=%d k=%d len(a)=%d lda=%d len(b)=%d ldb=%d len(c)=%d ldc=%d",
			transA, transB, m, n, k, na, lda, nb, ldb, nc, ldc))
	}
}
