// This file holds the GEMM entry points every op uses, C (+)= op(A)·op(B) on
// row-major slices with leading dimensions, single and batched, and the one
// packed driver they all run: a GotoBLAS/BLIS 5-loop blocking around a
// register-tile micro-kernel (AVX2 assembly in matmul_amd64.s, plain Go in
// matmul_generic.go); the packing is in matmul_pack.go. Design:
// docs/gemm.md; measurements: docs/benchmarks.md.
//
// Loops, outermost first (B̂, Â are the packed copies):
//
//	jc: columns of C in blocks of NC   (B̂ block KC x NC lives in L3/L2)
//	pc: depth in blocks of KC          (pack B̂; the first block stores, later ones add)
//	ic: rows of C in blocks of MC      (pack Â, MC x KC, lives in L2)
//	jr: columns in panels of NR        (one B̂ panel, KC x NR, lives in L1)
//	ir: rows in panels of MR           (micro-kernel: MR x NR tile of C in registers)
//
// Transposes are handled only by packing, so NN, NT, TN and TT share one
// path. Edge tiles are computed into a scratch tile and merged. Kernels with
// in-place variants (float32 AVX2) skip packing Â when the column block is
// narrow (gemmDirect, directMaxNF32): full row panels then read A where it
// lies, row-major or transposed, and only the m % MR remainder is packed.
//
// Parallelism splits C into fixed parts (row ranges on multiples of MR, or
// column ranges on multiples of NR): each part is a serial packed GEMM on
// its own buffers. A product with a small C and a long depth (a weight
// gradient dW += dYᵀ·X over all token rows) is split over depth instead
// (gemmKSplit): fixed depth chunks, each a serial packed GEMM into its own
// partial C, added into C in chunk order. Both splits depend on the shapes
// only (the depth split not even on the thread count), so every element of
// C is computed by the same sequence of operations whatever the thread count
// or scheduling, and results are bit-identical for any Threads().

package loope

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// gemm computes C = op(A)·op(B), or C += op(A)·op(B) when acc is true.
// op(A) is (m, k): A is stored (m, k) with row stride lda, or (k, m) when
// transA. op(B) is (k, n): B is stored (k, n) with row stride ldb, or (n, k)
// when transB. C is (m, n) with row stride ldc. Large products are split over
// Threads() goroutines.
func gemm[T Float](transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int, acc bool) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	gemmWith(kernelFor[T](), Threads(), transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
}

// gemmBatched runs batch independent GEMMs; operand i starts at i*strideA,
// i*strideB, i*strideC. Each product runs on one goroutine, and products
// are split over goroutines in fixed contiguous ranges (a single product is
// split like gemm).
func gemmBatched[T Float](transA, transB bool, batch, m, n, k int,
	a []T, strideA, lda int, b []T, strideB, ldb int, c []T, strideC, ldc int, acc bool) {
	if batch < 0 || strideA < 0 || strideB < 0 || strideC < 0 {
		panic(fmt.Sprintf("loope: gemmBatched: bad arguments batch=%d strideA=%d strideB=%d strideC=%d", batch, strideA, strideB, strideC))
	}
	if batch == 0 {
		return
	}
	last := batch - 1 // the item reaching furthest into each slice
	if len(a) < last*strideA || len(b) < last*strideB || len(c) < last*strideC {
		panic(fmt.Sprintf("loope: gemmBatched: slices too short: batch=%d len(a)=%d strideA=%d len(b)=%d strideB=%d len(c)=%d strideC=%d",
			batch, len(a), strideA, len(b), strideB, len(c), strideC))
	}
	checkGemm(transA, transB, m, n, k, len(a)-last*strideA, lda, len(b)-last*strideB, ldb, len(c)-last*strideC, ldc)
	kn := kernelFor[T]()
	if batch == 1 {
		gemmWith(kn, Threads(), transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
		return
	}
	parts := min(Threads(), batch)
	if float64(batch)*gemmFlops(m, n, k) < kn.parMin {
		parts = 1
	}
	if parts <= 1 {
		buf := getGemmBuf[T]()
		for i := range batch {
			gemmOne(kn, buf, transA, transB, m, n, k, a[i*strideA:], lda, b[i*strideB:], ldb, c[i*strideC:], ldc, acc)
		}
		putGemmBuf(buf)
		return
	}
	j := getGemmJob[T]()
	*j = gemmJob[T]{kn: kn, transA: transA, transB: transB, acc: acc, m: m, n: n, k: k,
		a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
		batch: batch, strideA: strideA, strideB: strideB, strideC: strideC, parts: parts, threads: parts}
	runTask(j, min(j.threads, j.parts)-1)
	putGemmJob(j)
}

// gemmSerial is gemm on the calling goroutine only.
func gemmSerial[T Float](transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int, acc bool) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	gemmWith(kernelFor[T](), 1, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
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

// gemmKernel is a register-tile micro-kernel with the cache blocking the
// packed driver uses around it.
type gemmKernel[T Float] struct {
	name   string
	mr, nr int     // tile rows and columns
	mc     int     // rows of an Â block (multiple of mr): Â (mc x kc) stays in L2
	kc     int     // depth of a block when k > kcMax; the last block is not shorter than the others
	kcMax  int     // k <= kcMax runs as one block, so C is written once
	nc     int     // columns of a B̂ block (multiple of nr) at depth kc; scaled by kc/depth
	parMin float64 // smallest product (2mnk) split over goroutines
	// fn computes np row panels, for i in [0, np):
	//	C[i*mr : i*mr+mr, 0:nr] (+)= Â_i·B̂
	// where Â_i = a[i*mr*kc:] is k-major (mr values per k), b is one k-major
	// panel (nr values per k), C has row stride ldc, and add chooses += over =.
	// Products are summed in k order.
	fn func(np, kc int, a, b, c []T, ldc int, add bool)
	// rowFn and colFn, when not nil (mr = 6, nr = 16 only), are fn reading
	// A in place and B with a row stride: for i in [0, np),
	//	C[i*mr : i*mr+mr, 0:nr] (+)= A_i·B,  B(p, j) = b[p*ldb+j]
	// with A_i(r, p) = a[(i*mr+r)*lda+p] (rowFn: A row-major) or
	// a[p*lda+i*mr+r] (colFn: A k-major, a transposed operand; lda = mr,
	// np = 1 is a packed Â panel). Products are summed in k order.
	rowFn, colFn func(np, kc int, a []T, lda int, b []T, ldb int, c []T, ldc int, add bool)
	// directMaxN[0] (A row-major) and directMaxN[1] (transA): gemmPacked
	// reads A in place instead of packing it when the column block is at
	// most this wide (see directMaxNF32).
	directMaxN [2]int
	// kSplitDepth and kSplitMaxMN choose the split over depth (gemmKChunks):
	// a product with m*n <= kSplitMaxMN and k >= 2*kSplitDepth runs as an
	// even number of depth chunks of at most kSplitDepth. kSplitDepth 0
	// never splits.
	kSplitDepth, kSplitMaxMN int
	// directBMaxM: when A is read in place, op(B) is not transposed and
	// n % nr == 0, B is read in place too (no B̂) for m at most this (see
	// directBMaxMF32).
	directBMaxM int
	// kcTN, when not 0, replaces kc for TN products (transA, not transB),
	// where both operands are often read in place (see kcTNF32).
	kcTN int
}

// kernelFor returns the micro-kernel for T: the assembly one when the CPU
// has it, else the plain-Go twin.
func kernelFor[T Float]() *gemmKernel[T] {
	var z T
	var kn any
	switch any(z).(type) {
	case float32:
		if k := archKernelF32(); k != nil {
			kn = k
		} else {
			kn = &goKernelF32
		}
	case float64:
		if k := archKernelF64(); k != nil {
			kn = k
		} else {
			kn = &goKernelF64
		}
	}
	if k, ok := kn.(*gemmKernel[T]); ok {
		return k
	}
	return goKernelFor[T]() // a named float type: plain Go
}

// parMinFlops is the default gemmKernel.parMin: about 20-40 µs on one
// core, well above the cost of waking a helper goroutine.
const parMinFlops = 1 << 22

func gemmFlops(m, n, k int) float64 { return 2 * float64(m) * float64(n) * float64(k) }

// gemmWith is gemm with an explicit kernel and thread count (tests use it to
// cross-check kernels and splits). The arguments are already checked.
func gemmWith[T Float](kn *gemmKernel[T], threads int, transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int, acc bool) {
	if m == 0 || n == 0 || k == 0 {
		gemmOne(kn, nil, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
		return
	}
	if chunks := gemmKChunks(kn, m, n, k); chunks > 1 {
		gemmKSplit(kn, threads, chunks, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
		return
	}
	parts, splitM, step, reuseB := gemmSplit(kn, threads, m, n, k)
	if parts <= 1 {
		buf := getGemmBuf[T]()
		gemmOne(kn, buf, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
		putGemmBuf(buf)
		return
	}
	j := getGemmJob[T]()
	*j = gemmJob[T]{kn: kn, transA: transA, transB: transB, acc: acc, m: m, n: n, k: k,
		a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, parts: parts, threads: threads, splitM: splitM, step: step, reuseB: reuseB}
	runTask(j, min(j.threads, j.parts)-1)
	putGemmJob(j)
}

// gemmOne is one serial GEMM of any size (buf may be nil when m, n or k is 0).
func gemmOne[T Float](kn *gemmKernel[T], buf *gemmBuf[T], transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int, acc bool) {
	switch {
	case m == 0 || n == 0:
	case k == 0:
		if !acc {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
	default:
		gemmPacked(kn, buf, false, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
	}
}

// gemmSplit chooses the fixed parts of C for threads goroutines. It splits
// the longer of m and n: splitting rows makes every part pack all of B
// (k x n), splitting columns makes every part pack all of A (m x k), so
// splitting the longer side duplicates the smaller operand.
//
// When rows are split and B̂ is a single block (k <= kcMax, n <= the column
// block), a goroutine packs B̂ once and reuses it for every part it runs
// (reuseB). Then C is cut into about 4 parts per goroutine, so a goroutine
// slowed down by other load on the machine runs fewer of them. Otherwise
// there is one part per goroutine.
func gemmSplit[T Float](kn *gemmKernel[T], threads, m, n, k int) (parts int, splitM bool, step int, reuseB bool) {
	if threads <= 1 || gemmFlops(m, n, k) < kn.parMin {
		return 1, false, 0, false
	}
	if m >= n {
		kcb, ncb := gemmBlocks(kn, false, false, n, k) // kcb == k does not depend on the transposes
		reuseB = kcb == k && ncb >= n
		per := 1
		if reuseB {
			per = 4
		}
		step = roundUp(ceilDiv(m, per*threads), kn.mr)
		return ceilDiv(m, step), true, step, reuseB
	}
	step = roundUp(ceilDiv(n, threads), kn.nr)
	return ceilDiv(n, step), false, step, false
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
func roundUp(a, b int) int { return ceilDiv(a, b) * b }

// gemmKChunks returns how many depth chunks gemmKSplit cuts a product
// into, or 1 to run it whole. It depends on the shapes only, never on the
// thread count, so the result bits do not either. The count is even, so two
// goroutines get equal shares, and at most maxKChunks, which bounds the
// partial products to (maxKChunks-1)*kSplitMaxMN elements (longer chunks
// beyond that depth).
func gemmKChunks[T Float](kn *gemmKernel[T], m, n, k int) int {
	d := kn.kSplitDepth
	if d <= 0 || k < 2*d || m*n > kn.kSplitMaxMN || gemmFlops(m, n, k) < kn.parMin {
		return 1
	}
	return min(roundUp(ceilDiv(k, d), 2), maxKChunks)
}

const maxKChunks = 16

// gemmKSplit computes C (+)= op(A)·op(B) for m, n, k > 0 as chunks depth
// chunks: chunk i covers depth [i*k/chunks, (i+1)*k/chunks) and is a serial
// packed GEMM, chunk 0 into C itself (with acc), chunk i > 0 into its own
// partial product P_i. Then C += P_1, += P_2, ... in chunk order. Chunks
// run on up to threads goroutines; the sum runs row ranges in parallel.
//
// Against gemmSplit's parts (each row part reads, and may pack, all of B;
// each column part all of A), a chunk reads its slices of A and B once, and
// its C stays in cache.
func gemmKSplit[T Float](kn *gemmKernel[T], threads, chunks int, transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int, acc bool) {
	j := getGemmKJob[T]()
	partial := j.partial
	*j = gemmKJob[T]{kn: kn, transA: transA, transB: transB, acc: acc, m: m, n: n, k: k,
		a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, chunks: chunks}
	j.partial = growBuf(&partial, (chunks-1)*m*n)
	runTask(j, min(threads, chunks)-1)
	if grain := max(1, 1<<13/(n*(chunks-1))); threads > 1 && m >= 2*grain {
		parallelRun(m, grain, j)
	} else {
		j.run(0, m)
	}
	putGemmKJob(j)
}

// gemmKJob is one gemmKSplit: the product, its chunking, the partial
// products (kept across pooling) and the next chunk to run.
type gemmKJob[T Float] struct {
	kn                  *gemmKernel[T]
	transA, transB, acc bool
	m, n, k             int
	a, b, c             []T
	lda, ldb, ldc       int
	chunks              int
	partial             []T // P_i (m x n, row stride n) at (i-1)*m*n
	next                atomic.Int32
}

var gemmKJobPools [2]sync.Pool // [0] float32, [1] float64

func getGemmKJob[T Float]() *gemmKJob[T] {
	if i := poolIndex[T](); i >= 0 {
		if j, ok := gemmKJobPools[i].Get().(*gemmKJob[T]); ok {
			return j
		}
	}
	return new(gemmKJob[T])
}

func putGemmKJob[T Float](j *gemmKJob[T]) {
	j.a, j.b, j.c = nil, nil, nil
	if i := poolIndex[T](); i >= 0 {
		gemmKJobPools[i].Put(j)
	}
}

// work runs chunks until none is left.
func (j *gemmKJob[T]) work() {
	buf := getGemmBuf[T]()
	mn := j.m * j.n
	for {
		i := int(j.next.Add(1)) - 1
		if i >= j.chunks {
			break
		}
		lo, hi := i*j.k/j.chunks, (i+1)*j.k/j.chunks
		ao, bo := lo, lo*j.ldb // where depth lo starts in A and B
		if j.transA {
			ao = lo * j.lda
		}
		if j.transB {
			bo = lo
		}
		a, b := j.a[ao:], j.b[bo:]
		if i == 0 {
			gemmPacked(j.kn, buf, false, j.transA, j.transB, j.m, j.n, hi-lo, a, j.lda, b, j.ldb, j.c, j.ldc, j.acc)
		} else {
			gemmPacked(j.kn, buf, false, j.transA, j.transB, j.m, j.n, hi-lo, a, j.lda, b, j.ldb, j.partial[(i-1)*mn:i*mn], j.n, false)
		}
	}
	putGemmBuf(buf)
}

// run adds the partial products into rows [lo, hi) of C, in chunk order.
func (j *gemmKJob[T]) run(lo, hi int) {
	n, mn := j.n, j.m*j.n
	for r := lo; r < hi; r++ {
		dst := j.c[r*j.ldc : r*j.ldc+n]
		for i := 1; i < j.chunks; i++ {
			src := j.partial[(i-1)*mn+r*n : (i-1)*mn+r*n+n]
			for q, v := range src {
				dst[q] += v
			}
		}
	}
}

// gemmBlocks returns the depth and column block sizes for depth k. The
// depth blocks depend on the transposes and k only, never on which part of
// C is computed: they fix the order in which C sums its products.
func gemmBlocks[T Float](kn *gemmKernel[T], transA, transB bool, n, k int) (kcb, ncb int) {
	kcb = k
	if k > kn.kcMax {
		kc := kn.kc
		if transA && !transB && kn.kcTN > 0 {
			kc = kn.kcTN
		}
		kcb = ceilDiv(k, ceilDiv(k, kc))
	}
	// Keep the B̂ block near kc*nc elements whatever its depth.
	ncb = max(kn.nc*kn.kc/kcb/kn.nr*kn.nr, kn.nr)
	return kcb, min(ncb, roundUp(n, kn.nr))
}

// gemmPacked is the serial packed driver: C (+)= op(A)·op(B) for m, n, k > 0
// (see the file comment for the loops). With packedB, buf.b already holds
// B̂ for this op(B), which must be a single block (see gemmSplit). It
// reports whether buf.b holds B̂ on return (B read in place leaves it as
// it was).
func gemmPacked[T Float](kn *gemmKernel[T], buf *gemmBuf[T], packedB bool, transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int, acc bool) bool {
	mr, nr, mcb := kn.mr, kn.nr, kn.mc
	kcb, ncb := gemmBlocks(kn, transA, transB, n, k)
	direct := kn.rowFn != nil && min(ncb, n) <= kn.directMaxN[b2i(transA)]
	if direct && !packedB && !transB && n%nr == 0 && m <= kn.directBMaxM {
		gemmInPlace(kn, buf, transA, m, n, k, kcb, a, lda, b, ldb, c, ldc, acc)
		return false
	}
	pa := growBuf(&buf.a, min(mcb, roundUp(m, mr))*kcb)
	pb := growBuf(&buf.b, ncb*kcb)
	tile := growBuf(&buf.tile, mr*nr)
	// Element (i, p) of op(A) is a[i*ars+p*acs]; element (p, j) of op(B) is b[j*brs+p*bcs].
	ars, acs := lda, 1
	if transA {
		ars, acs = 1, lda
	}
	brs, bcs := 1, ldb
	if transB {
		brs, bcs = ldb, 1
	}
	for jc := 0; jc < n; jc += ncb {
		nn := min(ncb, n-jc)
		for pc := 0; pc < k; pc += kcb {
			kk := min(kcb, k-pc)
			add := acc || pc > 0
			if !packedB {
				packPanels(pb, b[jc*brs+pc*bcs:], nn, kk, nr, brs, bcs)
			}
			for ic := 0; ic < m; ic += mcb {
				mm := min(mcb, m-ic)
				if direct {
					gemmDirect(kn, buf, transA, mm, nn, kk, a[ic*ars+pc*acs:], lda, pb, nr*kk, nr, c[ic*ldc+jc:], ldc, add)
					continue
				}
				packPanels(pa, a[ic*ars+pc*acs:], mm, kk, mr, ars, acs)
				full := mm / mr
				for jr := 0; jr < nn; jr += nr {
					bp := pb[jr*kk : (jr+nr)*kk]
					cc := c[ic*ldc+jc+jr:]
					w := min(nr, nn-jr)
					if w == nr && full > 0 {
						kn.fn(full, kk, pa, bp, cc, ldc, add)
					}
					first := full
					if w < nr {
						first = 0
					}
					for ip := first; ip*mr < mm; ip++ {
						kn.fn(1, kk, pa[ip*mr*kk:], bp, tile, nr, false)
						mergeTile(cc[ip*mr*ldc:], ldc, tile, nr, min(mr, mm-ip*mr), w, add)
					}
				}
			}
		}
	}
	return true
}

// gemmInPlace is gemmPacked with neither operand packed: A and B (k x n,
// row stride ldb, n % nr == 0) are read where they lie, in depth blocks of
// kcb and row blocks of mc. Only the m % mr remainder rows of A are packed.
func gemmInPlace[T Float](kn *gemmKernel[T], buf *gemmBuf[T], transA bool, m, n, k, kcb int, a []T, lda int, b []T, ldb int, c []T, ldc int, acc bool) {
	ars, acs := lda, 1
	if transA {
		ars, acs = 1, lda
	}
	for pc := 0; pc < k; pc += kcb {
		kk := min(kcb, k-pc)
		add := acc || pc > 0
		for ic := 0; ic < m; ic += kn.mc {
			gemmDirect(kn, buf, transA, min(kn.mc, m-ic), n, kk, a[ic*ars+pc*acs:], lda, b[pc*ldb:], kn.nr, ldb, c[ic*ldc:], ldc, add)
		}
	}
}

// directMaxNF32 is directMaxN of the float32 6x16 kernels: A is read in
// place when a column block is at most 256 wide. Reading A in place saves
// packing it but feeds every kernel call from strided rows, so it pays only
// when a packed element would feed few column panels (n/16)
// (docs/benchmarks.md §3.1).
var directMaxNF32 = [2]int{256, 256}

// directBMaxMF32 is directBMaxM of the float32 6x16 kernels: B is read in
// place as well for parts of at most 256 rows. That saves packing B̂, which
// pays when a B̂ panel would feed few row panels (m/6), as in the weight
// gradients (TN, m = nOut, k = all token rows) (docs/benchmarks.md §3.2).
var directBMaxMF32 = 256

// kcTNF32 is kcTN of the float32 6x16 kernels: TN products use depth
// blocks of 128. They are the weight gradients, mostly run with both
// operands in place, and at depth 128 the strided rows a kernel call walks
// stay in L1 from one row panel to the next; other products keep 256
// (docs/benchmarks.md §3.3).
var kcTNF32 = 128

// kSplitF32 is kSplitDepth, kSplitMaxMN of the float32 6x16 kernels: a
// product with m*n <= 65536 and k >= 6144 is split over depth in an even
// number of chunks of at most 3072 (k = 12608: 6 chunks of 2101). The gain
// is in the small weight gradients, whose row or column parts would
// otherwise each read all of B or A; for larger C the partial products cost
// more than they save (docs/benchmarks.md §3.4).
var kSplitF32 = [2]int{3072, 1 << 16}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// gemmDirect computes C (+)= op(A)·B for m, n, k > 0 without packing A:
// full panels of mr rows run kn.rowFn on A row-major with row stride lda
// (or kn.colFn when transA: A stored (k, m) with row stride lda). B comes
// in panels of nr columns: panel q holds B(p, q*nr+j) at b[q*bps+p*ldb+j],
// readable for all nr columns even past n (a zero-padded packed B̂ panel,
// or an in-place B with n % nr == 0). The m % mr remainder rows are packed,
// zero-padded, into buf.a; tiles cut by n go through buf.tile.
func gemmDirect[T Float](kn *gemmKernel[T], buf *gemmBuf[T], transA bool, m, n, k int, a []T, lda int, b []T, bps, ldb int, c []T, ldc int, add bool) {
	mr, nr := kn.mr, kn.nr
	ars, acs, fn := lda, 1, kn.rowFn
	if transA {
		ars, acs, fn = 1, lda, kn.colFn
	}
	full, rem := m/mr, m%mr
	var pad []T
	if rem > 0 {
		pad = growBuf(&buf.a, mr*k)
		packPanels(pad, a[full*mr*ars:], rem, k, mr, ars, acs)
	}
	tile := growBuf(&buf.tile, mr*nr)
	for jr, q := 0, 0; jr < n; jr, q = jr+nr, q+1 {
		bp, cc := b[q*bps:], c[jr:]
		w := min(nr, n-jr)
		if w == nr {
			fn(full, k, a, lda, bp, ldb, cc, ldc, add)
		} else {
			for ip := range full {
				fn(1, k, a[ip*mr*ars:], lda, bp, ldb, tile, nr, false)
				mergeTile(cc[ip*mr*ldc:], ldc, tile, nr, mr, w, add)
			}
		}
		if rem > 0 {
			kn.colFn(1, k, pad, mr, bp, ldb, tile, nr, false)
			mergeTile(cc[full*mr*ldc:], ldc, tile, nr, rem, w, add)
		}
	}
}

// mergeTile adds (or stores) the top-left rows x cols of tile (row stride nr)
// into c (row stride ldc).
func mergeTile[T Float](c []T, ldc int, tile []T, nr, rows, cols int, add bool) {
	for r := range rows {
		dst, src := c[r*ldc:r*ldc+cols], tile[r*nr:r*nr+cols]
		if add {
			for j, v := range src {
				dst[j] += v
			}
		} else {
			copy(dst, src)
		}
	}
}

var gemmJobPools [2]sync.Pool // [0] float32, [1] float64

// gemmJob is one GEMM (batch == 0) or batched GEMM split into parts. Part
// boundaries are fixed by the arguments and the thread count; which
// goroutine runs a part does not change its result.
type gemmJob[T Float] struct {
	kn                  *gemmKernel[T]
	transA, transB, acc bool
	m, n, k             int
	a, b, c             []T
	lda, ldb, ldc       int
	parts               int
	threads             int  // goroutines to run the parts on
	splitM              bool // single: parts are row ranges (else column ranges)
	step                int  // single: rows or columns per part
	reuseB              bool // single: B̂ is one block, packed once per goroutine
	batch               int  // batched: parts are contiguous ranges of [0, batch)
	strideA             int
	strideB             int
	strideC             int
	next                atomic.Int32 // next part to run
}

func getGemmJob[T Float]() *gemmJob[T] {
	if i := poolIndex[T](); i >= 0 {
		if j, ok := gemmJobPools[i].Get().(*gemmJob[T]); ok {
			return j
		}
	}
	return new(gemmJob[T])
}

func putGemmJob[T Float](j *gemmJob[T]) {
	j.a, j.b, j.c = nil, nil, nil
	if i := poolIndex[T](); i >= 0 {
		gemmJobPools[i].Put(j)
	}
}

// work runs parts until none is left.
func (j *gemmJob[T]) work() {
	buf := getGemmBuf[T]()
	packedB := false
	for {
		i := int(j.next.Add(1)) - 1
		if i >= j.parts {
			break
		}
		packedB = j.runPart(i, buf, packedB) && j.reuseB
	}
	putGemmBuf(buf)
}

// runPart runs part i and reports whether buf.b now holds B̂ (see gemmPacked).
func (j *gemmJob[T]) runPart(i int, buf *gemmBuf[T], packedB bool) bool {
	if j.batch > 0 {
		for t := i * j.batch / j.parts; t < (i+1)*j.batch/j.parts; t++ {
			gemmOne(j.kn, buf, j.transA, j.transB, j.m, j.n, j.k,
				j.a[t*j.strideA:], j.lda, j.b[t*j.strideB:], j.ldb, j.c[t*j.strideC:], j.ldc, j.acc)
		}
		return false
	}
	lo := i * j.step
	a, b, c, m, n := j.a, j.b, j.c, j.m, j.n
	if j.splitM {
		m = min(j.step, j.m-lo)
		if j.transA {
			a = a[lo:]
		} else {
			a = a[lo*j.lda:]
		}
		c = c[lo*j.ldc:]
	} else {
		n = min(j.step, j.n-lo)
		if j.transB {
			b = b[lo*j.ldb:]
		} else {
			b = b[lo:]
		}
		c = c[lo:]
	}
	return gemmPacked(j.kn, buf, packedB, j.transA, j.transB, m, n, j.k, a, j.lda, b, j.ldb, c, j.ldc, j.acc)
}
