package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// gemmCase is one GEMM call: shapes, transposes, leading dimensions, acc.
type gemmCase struct {
	tA, tB        bool
	m, n, k       int
	lda, ldb, ldc int
	acc           bool
}

func (g gemmCase) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s/m=%d,n=%d,k=%d/ld=%d,%d,%d/acc=%v", t(g.tA), t(g.tB), g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.acc)
}

// dims returns the stored (rows, cols) of A, B and C.
func (g gemmCase) dims() (ra, ca, rb, cb int) {
	ra, ca, rb, cb = g.m, g.k, g.k, g.n
	if g.tA {
		ra, ca = ca, ra
	}
	if g.tB {
		rb, cb = cb, rb
	}
	return
}

// withLd sets each leading dimension to its width plus a pad drawn from
// {0, 0, 1, 5} (max 1), so gaps between rows are common but not universal.
func (g gemmCase) withLd(rng *rand.Rand) gemmCase {
	_, ca, _, cb := g.dims()
	pad := func() int { return []int{0, 0, 1, 5}[rng.IntN(4)] }
	g.lda, g.ldb, g.ldc = max(ca+pad(), 1), max(cb+pad(), 1), max(g.n+pad(), 1)
	return g
}

// guardNaN returns a NaN with a payload no arithmetic produces, for the
// padding around and between the rows of every operand.
func guardNaN[T Float]() T {
	var z T
	if _, ok := any(z).(float32); ok {
		return T(math.Float32frombits(0x7fc0dead))
	}
	return T(math.Float64frombits(0x7ff80000deadbeef))
}

func sameBits[T Float](x, y T) bool {
	if _, ok := any(x).(float32); ok {
		return math.Float32bits(float32(x)) == math.Float32bits(float32(y))
	}
	return math.Float64bits(float64(x)) == math.Float64bits(float64(y))
}

// guarded is a rows x cols matrix with row stride ld inside a buffer of
// guard NaNs: gpad of them before and after, and ld-cols between rows.
type guarded[T Float] struct {
	buf            []T
	rows, cols, ld int
	view           []T // the matrix as gemm sees it: exact length, capped capacity
	guardV         T
	origin         []T // buf after filling, to check that nothing else moved
}

const gpad = 37

func newGuarded[T Float](rows, cols, ld int, fill func() T) *guarded[T] {
	g := &guarded[T]{rows: rows, cols: cols, ld: ld, guardV: guardNaN[T]()}
	g.buf = make([]T, gpad+rows*ld+gpad)
	for i := range g.buf {
		g.buf[i] = g.guardV
	}
	for i := range rows {
		for j := range cols {
			g.buf[gpad+i*ld+j] = fill()
		}
	}
	n := 0
	if rows > 0 && cols > 0 {
		n = (rows-1)*ld + cols
	}
	g.view = g.buf[gpad : gpad+n : gpad+n]
	g.origin = append([]T(nil), g.buf...)
	return g
}

func (g *guarded[T]) at(i, j int) T { return g.buf[gpad+i*g.ld+j] }

// checkGuards fails if any guard element changed, or (inputs) any element.
func (g *guarded[T]) checkGuards(t *testing.T, name string, input bool) {
	t.Helper()
	for idx, v := range g.buf {
		off := idx - gpad
		inside := off >= 0 && off < g.rows*g.ld && off%g.ld < g.cols
		if inside && !input {
			continue
		}
		if !sameBits(v, g.origin[idx]) {
			t.Fatalf("%s: element %d (offset %d) changed from %v to %v", name, idx, off, g.origin[idx], v)
		}
	}
}

// refGemm returns op(A)·op(B) (+ C0 when acc) by the reference layer's
// RefGemm (float64 sums), and the magnitude |op(A)|·|op(B)| (+ |C0|) that
// bounds the rounding error of each element.
func refGemm[T Float](g gemmCase, a, b, c0 *guarded[T]) (ref, mag []float64) {
	dense := func(x *guarded[T], abs bool) []float64 {
		d := make([]float64, x.rows*x.cols)
		for i := range x.rows {
			for j := range x.cols {
				d[i*x.cols+j] = float64(x.at(i, j))
				if abs {
					d[i*x.cols+j] = math.Abs(d[i*x.cols+j])
				}
			}
		}
		return d
	}
	ref, mag = make([]float64, g.m*g.n), make([]float64, g.m*g.n)
	if g.acc {
		ref, mag = dense(c0, false), dense(c0, true)
	}
	RefGemm(ref, dense(a, false), dense(b, false), g.m, g.n, g.k, g.tA, g.tB)
	RefGemm(mag, dense(a, true), dense(b, true), g.m, g.n, g.k, g.tA, g.tB)
	return ref, mag
}

// unitRoundoff is u = 2^-24 (float32) or 2^-53 (float64).
func unitRoundoff[T Float]() float64 {
	var z T
	if _, ok := any(z).(float32); ok {
		return 0x1p-24
	}
	return 0x1p-53
}

// runGemmCase runs g with kernel kn on threads goroutines over NaN-guarded
// operands, checks guards and the error bound, and returns C (m*n values).
//
// Error bound: a k-term dot product plus C0 computed in any order with
// (fused or not) roundings has |ĉ - c| <= γ_{k+1}·(|C0| + Σ|a||b|), where
// γ_n = n·u/(1-n·u) (Higham, Accuracy and Stability of Numerical
// Algorithms, 2nd ed., eq. 3.5); we allow 2(k+2)u for the float64 reference.
func runGemmCase[T Float](t *testing.T, kn *gemmKernel[T], threads int, g gemmCase, seed uint64) []T {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	uni := func() T { return T(2*rng.Float64() - 1) }
	ra, ca, rb, cb := g.dims()
	a := newGuarded(ra, ca, g.lda, uni)
	b := newGuarded(rb, cb, g.ldb, uni)
	cInit := uni
	if !g.acc { // C must be ignored: fill it with NaN
		cInit = guardNaN[T]
	}
	c := newGuarded(g.m, g.n, g.ldc, cInit)
	ref, mag := refGemm(g, a, b, c)
	gemmWith(kn, threads, g.tA, g.tB, g.m, g.n, g.k, a.view, g.lda, b.view, g.ldb, c.view, g.ldc, g.acc)
	name := fmt.Sprintf("%s/threads=%d/%v", kn.name, threads, g)
	a.checkGuards(t, name+": A", true)
	b.checkGuards(t, name+": B", true)
	c.checkGuards(t, name+": C", false)
	tol := 2 * float64(g.k+2) * unitRoundoff[T]()
	out := make([]T, g.m*g.n)
	for i := range g.m {
		for j := range g.n {
			got := c.at(i, j)
			want := ref[i*g.n+j]
			if d := math.Abs(float64(got) - want); !(d <= tol*mag[i*g.n+j]) {
				t.Fatalf("%s: C[%d,%d] = %v, want %v (|diff| %.3g > bound %.3g)", name, i, j, got, want, d, tol*mag[i*g.n+j])
			}
			out[i*g.n+j] = got
		}
	}
	return out
}

// testKernels returns the kernels to check for T: the selected one (asm when
// available), the plain-Go twins (2x4, and 6x16 with the in-place
// variants), and all of them with tiny blocks (depth 3 for TN), no minimum
// size for splitting, and a depth split of products with m*n <= 200 and k >= 10 in
// chunks of at most 5, so small shapes cross every blocking boundary and
// every parallel split. Kernels that can read A in place also come as
// "/direct" (A and, where possible, B always in place), "/directA" (only
// A) and "/packed" (never) copies.
func testKernels[T Float]() []*gemmKernel[T] {
	ks := []*gemmKernel[T]{kernelFor[T]()}
	if g := goKernelFor[T](); g != ks[0] {
		ks = append(ks, g)
	}
	ks = append(ks, goKernel6x16For[T]())
	for _, k := range ks[:len(ks):len(ks)] {
		s := *k
		s.name += "/small-blocks"
		s.mc, s.kc, s.kcMax, s.nc, s.parMin = 2*k.mr, 5, 7, 3*k.nr, 0
		s.kSplitDepth, s.kSplitMaxMN, s.kcTN = 5, 200, 3
		ks = append(ks, &s)
	}
	for _, k := range ks[:len(ks):len(ks)] {
		if k.rowFn == nil {
			continue
		}
		for _, v := range []struct {
			name        string
			maxN, bMaxM int
		}{{"/direct", math.MaxInt, math.MaxInt}, {"/directA", math.MaxInt, 0}, {"/packed", 0, 0}} {
			s := *k
			s.name += v.name
			s.directMaxN, s.directBMaxM = [2]int{v.maxN, v.maxN}, v.bMaxM
			ks = append(ks, &s)
		}
	}
	return ks
}

// boundaryDims returns sizes around a block size b with tile t: 0, 1, t±1,
// b±1, 2b+t+1 (deduplicated, non-negative).
func boundaryDims(t, b int) []int {
	seen := map[int]bool{}
	var out []int
	for _, v := range []int{0, 1, t - 1, t, t + 1, b - 1, b, b + 1, 2*b + t + 1} {
		if v >= 0 && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

var allTrans = [4][2]bool{{false, false}, {false, true}, {true, false}, {true, true}}

// TestGemmBoundaries runs every kernel (tiny blocks) on the product of sizes
// around mr, nr, mc, nc and kc, kcMax: each shape with one of the four
// transposes and acc true/false in turn, with leading dimensions sometimes
// wider than the matrix, on 1 and 3 goroutines (bit-identical results).
func TestGemmBoundaries(t *testing.T) {
	t.Run("f32", testGemmBoundaries[float32])
	t.Run("f64", testGemmBoundaries[float64])
}

func testGemmBoundaries[T Float](t *testing.T) {
	for _, kn := range testKernels[T]() {
		if kn.kc != 5 {
			continue
		}
		t.Run(kn.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			ks := []int{0, 1, 4, 5, 6, 7, 8, 11, 16}
			variant := 0
			for _, m := range boundaryDims(kn.mr, kn.mc) {
				for _, n := range boundaryDims(kn.nr, kn.nc) {
					for _, k := range ks {
						tr := allTrans[variant%4]
						g := gemmCase{tA: tr[0], tB: tr[1], m: m, n: n, k: k, acc: variant/4%2 == 1}.withLd(rng)
						variant++
						seed := rng.Uint64()
						c1 := runGemmCase(t, kn, 1, g, seed)
						c3 := runGemmCase(t, kn, 3, g, seed)
						for i := range c1 {
							if !sameBits(c1[i], c3[i]) {
								t.Fatalf("%v: threads 1 and 3 differ at %d: %v vs %v", g, i, c1[i], c3[i])
							}
						}
					}
				}
			}
		})
	}
}

// TestGemmRealBlocks crosses the production block sizes one dimension at a
// time (the others small and odd), with every transpose and acc.
func TestGemmRealBlocks(t *testing.T) {
	t.Run("f32", testGemmRealBlocks[float32])
	t.Run("f64", testGemmRealBlocks[float64])
}

func testGemmRealBlocks[T Float](t *testing.T) {
	for _, kn := range testKernels[T]() {
		if kn.kc == 5 {
			continue
		}
		t.Run(kn.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			mr, nr := kn.mr, kn.nr
			var shapes [][3]int // m, n, k
			for _, m := range []int{kn.mc - 1, kn.mc + 1, 2*kn.mc + mr + 1} {
				shapes = append(shapes, [3]int{m, nr + 3, 9})
			}
			for _, k := range []int{kn.kcMax, kn.kcMax + 1} {
				shapes = append(shapes, [3]int{mr + 1, nr + 1, k})
			}
			for _, n := range []int{kn.nc - 1, kn.nc + 1} {
				shapes = append(shapes, [3]int{mr - 1, n, 3})
			}
			// k > kcMax shrinks the depth block to 257 and widens nothing:
			// the column block shrinks to nc*kc/257 rounded to nr.
			_, ncb := gemmBlocks(kn, false, false, 1<<20, kn.kcMax+1)
			shapes = append(shapes, [3]int{2, ncb + 1, kn.kcMax + 1})
			if testing.Short() {
				shapes = shapes[:3]
			}
			for _, s := range shapes {
				for v := range 8 {
					if s[0]*s[1]*s[2] > 1<<20 && v%3 != 0 { // big: NN, TT, TN+acc (v = 0, 3, 6)
						continue
					}
					tr := allTrans[v%4]
					g := gemmCase{tA: tr[0], tB: tr[1], m: s[0], n: s[1], k: s[2], acc: v >= 4}.withLd(rng)
					runGemmCase(t, kn, 2, g, rng.Uint64())
				}
			}
		})
	}
}

// TestGemmKernelsAgree runs the selected kernel and the plain-Go twin on the
// same inputs and compares them directly (both also pass the error bound).
func TestGemmKernelsAgree(t *testing.T) {
	t.Run("f32", testGemmKernelsAgree[float32])
	t.Run("f64", testGemmKernelsAgree[float64])
}

func testGemmKernelsAgree[T Float](t *testing.T) {
	ks := testKernels[T]()
	fast, twin := ks[0], goKernelFor[T]()
	if fast == twin {
		t.Skip("no assembly kernel in this build or on this CPU")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{1, 1, 1}, {7, 17, 33}, {13, 31, 300}, {150, 40, 64}, {65, 65, 64}} {
		for v := range 8 {
			tr := allTrans[v%4]
			g := gemmCase{tA: tr[0], tB: tr[1], m: s[0], n: s[1], k: s[2], acc: v >= 4}.withLd(rng)
			seed := rng.Uint64()
			x := runGemmCase(t, fast, 1, g, seed)
			y := runGemmCase(t, twin, 1, g, seed)
			tol := 4 * float64(g.k+2) * unitRoundoff[T]() * float64(g.k+1) // |x|,|y| <= k+1 for inputs in [-1,1]
			for i := range x {
				if d := math.Abs(float64(x[i]) - float64(y[i])); d > tol {
					t.Fatalf("%v: %s and %s differ at %d: %v vs %v", g, fast.name, twin.name, i, x[i], y[i])
				}
			}
		}
	}
}

// TestGemmGonum checks float64 gemm against gonum's mat.Dense.Mul, an
// independent implementation, with strided views and all transposes.
func TestGemmGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	dense := func(rows, cols, ld int, data []float64) *mat.Dense {
		var d mat.Dense
		d.SetRawMatrix(blas64.General{Rows: rows, Cols: cols, Stride: ld, Data: data})
		return &d
	}
	for _, s := range [][3]int{{1, 1, 1}, {5, 3, 2}, {37, 29, 41}, {200, 70, 300}, {64, 300, 129}} {
		for _, tr := range allTrans {
			g := gemmCase{tA: tr[0], tB: tr[1], m: s[0], n: s[1], k: s[2]}.withLd(rng)
			ra, ca, rb, cb := g.dims()
			uni := func() float64 { return 2*rng.Float64() - 1 }
			a, b := newGuarded(ra, ca, g.lda, uni), newGuarded(rb, cb, g.ldb, uni)
			c := newGuarded(g.m, g.n, g.ldc, guardNaN[float64])
			gemm(g.tA, g.tB, g.m, g.n, g.k, a.view, g.lda, b.view, g.ldb, c.view, g.ldc, false)
			var opA, opB mat.Matrix = dense(ra, ca, g.lda, a.view), dense(rb, cb, g.ldb, b.view)
			if g.tA {
				opA = opA.T()
			}
			if g.tB {
				opB = opB.T()
			}
			var want mat.Dense
			want.Mul(opA, opB)
			if got := dense(g.m, g.n, g.ldc, c.view); !mat.EqualApprox(got, &want, 1e-12) {
				t.Fatalf("%v: gemm and gonum mat.Mul differ:\n%v\n%v", g, mat.Formatted(got), mat.Formatted(&want))
			}
		}
	}
}

// TestGemmDeterministic checks that the threaded path gives the same bits
// on repeated runs and for 1 and 2 threads, on shapes split by rows and by
// columns.
func TestGemmDeterministic(t *testing.T) {
	defer SetThreads(Threads())
	rng := rand.New(rand.NewPCG(10, 11))
	for _, s := range [][3]int{{300, 200, 100}, {40, 700, 300}} {
		m, n, k := s[0], s[1], s[2]
		a, b := make([]float32, m*k), make([]float32, k*n)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		run := func(threads int) []float32 {
			SetThreads(threads)
			c := make([]float32, m*n)
			gemm(true, false, m, n, k, a, m, b, n, c, n, false)
			return c
		}
		if p, _, _, _ := gemmSplit(kernelFor[float32](), 2, m, n, k); p < 2 {
			t.Fatalf("m=%d n=%d k=%d: want a split, got %d parts", m, n, k, p)
		}
		c2, c2b, c1 := run(2), run(2), run(1)
		for i := range c1 {
			if c2[i] != c2b[i] || c1[i] != c2[i] {
				t.Fatalf("m=%d n=%d k=%d: element %d differs: threads=2 %v, again %v, threads=1 %v", m, n, k, i, c2[i], c2b[i], c1[i])
			}
		}
	}
}

// TestGemmKSplit checks the split over depth (gemmKSplit) on shapes like
// the `small` preset's weight gradients (dW += dYᵀ·X: TN, m = nOut, n =
// nIn, k = token rows) and two odd ones (n % nr != 0, so B is packed; NT),
// with the kernels' chunking scaled down (chunks of at most 1000 instead of
// kSplitF32's depth, so 4 chunks of about 800, each several depth blocks): on 1, 2
// and 3 goroutines the results have the same bits and are within the
// error bound of runGemmCase, with and without acc.
func TestGemmKSplit(t *testing.T) {
	var kns []*gemmKernel[float32]
	for _, k := range []*gemmKernel[float32]{kernelFor[float32](), goKernel6x16For[float32]()} {
		if k.kSplitDepth == 0 {
			continue
		}
		s := *k
		s.kSplitDepth = 1000
		kns = append(kns, &s)
	}
	if len(kns) == 0 {
		t.Fatal("no kernel splits over depth")
	}
	for _, c := range []struct{ m, n, k, want int }{
		{10, 100, 1999, 1}, {10, 100, 2000, 2}, {10, 100, 4001, 6}, {1, 1000, 100000, 16}, {1, 1001, 100000, 1},
	} {
		kn := *kns[0]
		kn.kSplitDepth, kn.kSplitMaxMN, kn.parMin = 1000, 1000, 0
		if got := gemmKChunks(&kn, c.m, c.n, c.k); got != c.want {
			t.Errorf("gemmKChunks(m=%d, n=%d, k=%d) with depth 1000, m*n <= 1000 = %d, want %d", c.m, c.n, c.k, got, c.want)
		}
	}
	rng := rand.New(rand.NewPCG(14, 15))
	for _, kn := range kns {
		for _, s := range []struct {
			m, n, k int
			tA, tB  bool
		}{{64, 64, 3200, true, false}, {48, 128, 3200, true, false}, {37, 45, 3201, true, false}, {30, 40, 3199, false, true}} {
			if c := gemmKChunks(kn, s.m, s.n, s.k); c != 4 {
				t.Fatalf("%s: m=%d n=%d k=%d: %d depth chunks, want 4", kn.name, s.m, s.n, s.k, c)
			}
			for _, acc := range []bool{false, true} {
				g := gemmCase{tA: s.tA, tB: s.tB, m: s.m, n: s.n, k: s.k, acc: acc}.withLd(rng)
				seed := rng.Uint64()
				c1 := runGemmCase(t, kn, 1, g, seed)
				for _, threads := range []int{2, 3} {
					c := runGemmCase(t, kn, threads, g, seed)
					for i := range c1 {
						if !sameBits(c1[i], c[i]) {
							t.Fatalf("%s %v: threads 1 and %d differ at %d: %v vs %v", kn.name, g, threads, i, c1[i], c[i])
						}
					}
				}
			}
		}
	}
}

// TestGemmBatched checks gemmBatched against gemmSerial per item (same
// bits) and the reference bound, with acc and a transposed operand.
func TestGemmBatched(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(2)
	rng := rand.New(rand.NewPCG(12, 13))
	const batch, m, n, k = 24, 65, 64, 65 // attention-sized, above parMin in total
	a, b := make([]float32, batch*m*k), make([]float32, batch*n*k)
	c, want := make([]float32, batch*m*n), make([]float32, batch*m*n)
	for _, s := range [][]float32{a, b, c} {
		for i := range s {
			s[i] = float32(2*rng.Float64() - 1)
		}
	}
	copy(want, c)
	gemmBatched(false, true, batch, m, n, k, a, m*k, k, b, n*k, k, c, m*n, n, true)
	for i := range batch {
		gemmSerial(false, true, m, n, k, a[i*m*k:], k, b[i*n*k:], k, want[i*m*n:], n, true)
	}
	for i := range c {
		if c[i] != want[i] {
			t.Fatalf("element %d: batched %v, serial %v", i, c[i], want[i])
		}
	}
	// k = 0 without acc stores zeros; one item runs like gemm.
	for _, nb := range []int{3, 1} {
		z := make([]float32, nb*m*n)
		for i := range z {
			z[i] = float32(math.NaN())
		}
		gemmBatched(false, false, nb, m, n, 0, nil, 0, 1, nil, 0, n, z, m*n, n, false)
		for i, v := range z {
			if v != 0 {
				t.Fatalf("batch=%d k=0: element %d = %v, want 0", nb, i, v)
			}
		}
	}
}

// TestGemmNoAlloc checks that a steady-state threaded gemm allocates
// nothing (packing buffers and jobs are pooled, pool workers are reused).
func TestGemmNoAlloc(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(2)
	const m, n, k = 200, 96, 128
	a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	if allocs := testing.AllocsPerRun(20, func() { gemm(false, false, m, n, k, a, k, b, n, c, n, false) }); allocs != 0 {
		t.Errorf("gemm: %v allocations per call, want 0", allocs)
	}
	const kl = 8000 // split over depth where the kernel does (gemmKSplit)
	al, bl := make([]float32, kl*m), make([]float32, kl*n)
	if allocs := testing.AllocsPerRun(20, func() { gemm(true, false, m, n, kl, al, m, bl, n, c, n, true) }); allocs != 0 {
		t.Errorf("gemm k=%d (%d depth chunks): %v allocations per call, want 0", kl, gemmKChunks(kernelFor[float32](), m, n, kl), allocs)
	}
	workers := numWorkers.Load()
	for range 20 {
		gemm(false, false, m, n, k, a, k, b, n, c, n, false)
	}
	if w := numWorkers.Load(); w != workers {
		t.Errorf("the worker pool grew from %d to %d goroutines over 20 calls, want it reused", workers, w)
	}
	bt := make([]float32, 8*k*n)
	ct := make([]float32, 8*m*n)
	at := make([]float32, 8*m*k)
	if allocs := testing.AllocsPerRun(20, func() {
		gemmBatched(false, false, 8, m, n, k, at, m*k, k, bt, k*n, n, ct, m*n, n, false)
	}); allocs != 0 {
		t.Errorf("gemmBatched: %v allocations per call, want 0", allocs)
	}
}

// TestGemmBadArgs checks that inconsistent shapes panic with a loope message.
func TestGemmBadArgs(t *testing.T) {
	for _, f := range []func(){
		func() {
			gemm(false, false, 2, 2, 2, make([]float32, 3), 2, make([]float32, 4), 2, make([]float32, 4), 2, false)
		},
		func() {
			gemm(false, false, 2, 2, 2, make([]float32, 4), 1, make([]float32, 4), 2, make([]float32, 4), 2, false)
		},
		func() {
			gemmBatched(false, false, 3, 2, 2, 2, make([]float32, 12), 4, 2, make([]float32, 12), 4, 2, make([]float32, 11), 4, 2, false)
		},
	} {
		func() {
			defer func() {
				if r, ok := recover().(string); !ok || len(r) < 6 || r[:6] != "loope:" {
					t.Errorf("want a loope: panic, got %v", r)
				}
			}()
			f()
		}()
	}
}

// TestGemmInPlaceKernels checks the in-place kernels (rowFn, colFn) of the
// selected float32 kernel and of the plain-Go twin against a float64 triple
// loop, and against each other, over np = 0..3 panels, kc = 0..9 and two
// longer depths, odd strides lda, ldb, ldc, and add on and off. The slices
// are cut to the last element the kernel may touch, and the gaps between C
// rows hold NaN, which must survive.
func TestGemmInPlaceKernels(t *testing.T) {
	fast, twin := kernelFor[float32](), goKernel6x16For[float32]()
	kns := []*gemmKernel[float32]{twin}
	if fast.rowFn != nil {
		kns = append(kns, fast)
	} else {
		t.Log("no in-place assembly kernel in this build or on this CPU: checking the Go twin only")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	uni := func() float32 { return float32(2*rng.Float64() - 1) }
	nan := float32(math.NaN())
	for _, rows := range []bool{true, false} {
		for np := range 4 {
			for _, kc := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 33} {
				for v := range 4 {
					add := v%2 == 1
					lda := kc + []int{0, 1, 3, 0}[v]
					if !rows {
						lda = 6*max(np, 1) + []int{0, 1, 3, 5}[v]
					}
					ldb, ldc := []int{16, 17, 32, 19}[v], []int{16, 19, 16, 35}[v]
					at := func(i, p int) int { return i*lda + p } // A(i, p) for row i of all panels
					if !rows {
						at = func(i, p int) int { return p*lda + i }
					}
					na, nb, nc := 0, 0, 0
					if np > 0 && kc > 0 {
						na = max(at(6*np-1, kc-1), at(6*np-1, 0), at(0, kc-1)) + 1
					}
					if kc > 0 {
						nb = (kc-1)*ldb + 16
					}
					if np > 0 {
						nc = (6*np-1)*ldc + 16
					}
					a, b, c0 := make([]float32, na), make([]float32, nb), make([]float32, nc)
					for _, s := range [][]float32{a, b, c0} {
						for i := range s {
							s[i] = uni()
						}
					}
					for i := range c0 {
						if i%ldc >= 16 {
							c0[i] = nan
						}
					}
					name := fmt.Sprintf("rows=%v np=%d kc=%d lda=%d ldb=%d ldc=%d add=%v", rows, np, kc, lda, ldb, ldc, add)
					var outs [][]float32
					for _, kn := range kns {
						fn := kn.rowFn
						if !rows {
							fn = kn.colFn
						}
						c := append([]float32(nil), c0...)
						fn(np, kc, a, lda, b, ldb, c, ldc, add)
						for i := range 6 * np {
							for j := range ldc {
								e := i*ldc + j
								if e >= nc {
									break
								}
								if j >= 16 {
									if !math.IsNaN(float64(c[e])) {
										t.Fatalf("%s %s: C gap (%d, %d) overwritten: %v", kn.name, name, i, j, c[e])
									}
									continue
								}
								want, mag := 0.0, 0.0
								if add {
									want, mag = float64(c0[e]), math.Abs(float64(c0[e]))
								}
								for p := range kc {
									x := float64(a[at(i, p)]) * float64(b[p*ldb+j])
									want += x
									mag += math.Abs(x)
								}
								if d := math.Abs(float64(c[e]) - want); !(d <= 2*float64(kc+2)*unitRoundoff[float32]()*mag) {
									t.Fatalf("%s %s: C(%d, %d) = %v, want %v", kn.name, name, i, j, c[e], want)
								}
							}
						}
						outs = append(outs, c)
					}
					if len(outs) == 2 {
						tol := 4 * float64(kc+2) * unitRoundoff[float32]() * float64(kc+1)
						for i := range outs[0] {
							if d := math.Abs(float64(outs[0][i]) - float64(outs[1][i])); d > tol {
								t.Fatalf("%s: asm and Go twin differ at %d: %v vs %v", name, i, outs[1][i], outs[0][i])
							}
						}
					}
				}
			}
		}
	}
}

// gemmBenchShapes are the ViT-Tiny GEMMs (docs/benchmarks.md §1: M = 65 tokens x
// 64 images, D = 192, MLP 768), two squares, the qkv layer's backward
// products dW = Xᵀ·dY (TN) and dX = dY·Wᵀ (NT), then the `small` preset's
// layers and backward products (Linear's dW += dYᵀ·X is TN with m = nOut,
// n = nIn, k = M; its dX = dY·W is NN), then `ti16`'s weight gradients. bench/gemm_numpy.py runs the first nine.
var gemmBenchShapes = []gemmBenchShape{
	{4160, 192, 576, false, false},   // qkv
	{4160, 192, 192, false, false},   // proj
	{4160, 192, 768, false, false},   // fc1
	{4160, 768, 192, false, false},   // fc2
	{12544, 64, 64, false, false},    // a wide, shallow layer
	{256, 256, 256, false, false},    //
	{1024, 1024, 1024, false, false}, //
	{192, 4160, 576, true, false},    // qkv dW = Xᵀ·dY
	{4160, 576, 192, false, true},    // qkv dX = dY·Wᵀ
	// The `small` preset (M = 197 tokens x 64 images, D = 64, MLP 256).
	{12608, 64, 192, false, false}, // qkv
	{12608, 64, 64, false, false},  // proj
	{12608, 64, 256, false, false}, // fc1
	{12608, 256, 64, false, false}, // fc2
	{64, 12608, 192, true, false},  // a dW = dYᵀ·X with nOut = 64, nIn = 192
	{12608, 192, 64, false, true},  // qkv dX = dY·Wᵀ
	{256, 12608, 64, true, false},  // fc1 dW = dYᵀ·X (nOut x nIn)
	{12608, 64, 256, false, true},  // fc2 dX
	{192, 12608, 64, true, false},  // qkv dW
	{64, 12608, 64, true, false},   // proj dW
	{64, 12608, 256, true, false},  // fc2 dW
	// ViT-Tiny/16 (`ti16`: M = 12608, D = 192, MLP 768) weight gradients.
	{576, 12608, 192, true, false}, // qkv dW
	{192, 12608, 192, true, false}, // proj dW
	{768, 12608, 192, true, false}, // fc1 dW
	{192, 12608, 768, true, false}, // fc2 dW
}

// reportGEMM reports GFLOP/s (flops per op, wall time) and GFLOP/cpu-s
// (per second of process CPU time since cpu0, all threads: on a shared
// machine it moves less with other load than wall time, but misses time a
// goroutine spends waiting for another).
func reportGEMM(b *testing.B, flops float64, cpu0 time.Duration) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := processCPUTime() - cpu0; cpu > 0 {
		b.ReportMetric(flops*float64(b.N)/cpu.Seconds()/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkGEMM reports GFLOP/s (2mnk per op) of gemm on Threads()
// goroutines; set the count with -cpu (GOMAXPROCS), e.g. -cpu 1,2. With
// -tags noasm it measures the plain-Go twin.
func BenchmarkGEMM(b *testing.B) {
	b.Run("f32", benchGEMM[float32])
	b.Run("f64", benchGEMM[float64])
}

// gemmBenchShape is one GEMM of the benchmarks: op(A) (m, k)·op(B) (k, n).
type gemmBenchShape struct {
	m, k, n        int
	transA, transB bool
}

// gemmBenchOperands returns the benchmark name of s and its operands: A
// and B uniform in [−1, 1) (seed 1), C, and the leading dimensions.
func gemmBenchOperands[T Float](s gemmBenchShape) (name string, a, b, c []T, lda, ldb int) {
	tr := map[bool]string{false: "N", true: "T"}
	name = fmt.Sprintf("M=%d,K=%d,N=%d/%s%s", s.m, s.k, s.n, tr[s.transA], tr[s.transB])
	rng := rand.New(rand.NewPCG(1, 1))
	a, b, c = make([]T, s.m*s.k), make([]T, s.k*s.n), make([]T, s.m*s.n)
	for _, x := range [][]T{a, b} {
		for i := range x {
			x[i] = T(2*rng.Float64() - 1)
		}
	}
	lda, ldb = s.k, s.n
	if s.transA {
		lda = s.m
	}
	if s.transB {
		ldb = s.k
	}
	return name, a, b, c, lda, ldb
}

func benchGEMM[T Float](b *testing.B) {
	for _, s := range gemmBenchShapes {
		name, a, bm, c, lda, ldb := gemmBenchOperands[T](s)
		b.Run(name, func(b *testing.B) {
			gemm(s.transA, s.transB, s.m, s.n, s.k, a, lda, bm, ldb, c, s.n, false) // warm the pools
			b.ReportAllocs()
			cpu0 := processCPUTime()
			for b.Loop() {
				gemm(s.transA, s.transB, s.m, s.n, s.k, a, lda, bm, ldb, c, s.n, false)
			}
			reportGEMM(b, gemmFlops(s.m, s.n, s.k), cpu0)
		})
	}
}

// BenchmarkGEMMDirect reports GFLOP/s of float32 gemm on the shapes of
// BenchmarkGEMM with A packed (A=packed), A read in place (A=direct), and
// both read in place where possible (A,B=direct), by the selected kernel,
// never split over depth; the rules in directMaxNF32 and directBMaxMF32
// come from it.
func BenchmarkGEMMDirect(b *testing.B) {
	kn := kernelFor[float32]()
	if kn.rowFn == nil {
		b.Skip("no in-place kernel in this build or on this CPU")
	}
	for _, s := range gemmBenchShapes {
		name, a, bm, c, lda, ldb := gemmBenchOperands[float32](s)
		for _, v := range []struct {
			name        string
			maxN, bMaxM int
		}{{"A=packed", 0, 0}, {"A=direct", 1 << 30, 0}, {"A,B=direct", 1 << 30, 1 << 30}} {
			k := *kn
			k.directMaxN, k.directBMaxM, k.kSplitDepth = [2]int{v.maxN, v.maxN}, v.bMaxM, 0
			b.Run(name+"/"+v.name, func(b *testing.B) {
				gemmWith(&k, Threads(), s.transA, s.transB, s.m, s.n, s.k, a, lda, bm, ldb, c, s.n, false)
				cpu0 := processCPUTime()
				for b.Loop() {
					gemmWith(&k, Threads(), s.transA, s.transB, s.m, s.n, s.k, a, lda, bm, ldb, c, s.n, false)
				}
				reportGEMM(b, gemmFlops(s.m, s.n, s.k), cpu0)
			})
		}
	}
}

// BenchmarkGEMMSplitK reports GFLOP/s and GFLOP/cpu-s of float32 gemm on
// the long-depth shapes of BenchmarkGEMM run whole (split by rows or
// columns, depth=0) and split over depth into chunks of at most 1536 or
// 3072 whatever m*n, each with B packed (inB=false) and, where the shape
// allows, read in place (inB=true; see directBMaxMF32); the rule in
// kSplitF32 comes from it.
func BenchmarkGEMMSplitK(b *testing.B) {
	kn := kernelFor[float32]()
	for _, s := range gemmBenchShapes {
		if s.k < 4096 {
			continue
		}
		name, a, bm, c, lda, ldb := gemmBenchOperands[float32](s)
		for _, v := range []struct{ depth, bMaxM int }{{0, 0}, {1536, 0}, {3072, 0}, {0, 1 << 30}, {1536, 1 << 30}, {3072, 1 << 30}} {
			k := *kn
			k.kSplitDepth, k.kSplitMaxMN, k.directBMaxM = v.depth, 1<<30, v.bMaxM
			b.Run(fmt.Sprintf("%s/depth=%d/inB=%v", name, v.depth, v.bMaxM > 0), func(b *testing.B) {
				gemmWith(&k, Threads(), s.transA, s.transB, s.m, s.n, s.k, a, lda, bm, ldb, c, s.n, false)
				cpu0 := processCPUTime()
				for b.Loop() {
					gemmWith(&k, Threads(), s.transA, s.transB, s.m, s.n, s.k, a, lda, bm, ldb, c, s.n, false)
				}
				reportGEMM(b, gemmFlops(s.m, s.n, s.k), cpu0)
			})
		}
	}
}
