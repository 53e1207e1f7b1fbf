package loope

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// gemmBenchShapes are the ViT-Tiny GEMMs (docs/benchmarks.md §1: M = 65 tokens x
// 64 images, D = 192, MLP 768), two squares, the qkv layer's backward
// products dW = Xᵀ·dY (TN) and dX = dY·Wᵀ (NT), then the `small` preset's
// layers and backward products (Linear's dW += dYᵀ·X is TN with m = nOut,
// n = nIn, k = M; its dX = dY·W is NN), then `ti16`'s weight gradients. bench/gemm_numpy.py runs the first nine.
var gemmBenchShapes = []struct {
	m, k, n        int
	transA, transB bool
}{
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

func benchGEMM[T Float](b *testing.B) {
	for _, s := range gemmBenchShapes {
		tr := map[bool]string{false: "N", true: "T"}
		name := fmt.Sprintf("M=%d,K=%d,N=%d/%s%s", s.m, s.k, s.n, tr[s.transA], tr[s.transB])
		b.Run(name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			a, bm, c := make([]T, s.m*s.k), make([]T, s.k*s.n), make([]T, s.m*s.n)
			for _, x := range [][]T{a, bm} {
				for i := range x {
					x[i] = T(2*rng.Float64() - 1)
				}
			}
			lda, ldb := s.k, s.n
			if s.transA {
				lda = s.m
			}
			if s.transB {
				ldb = s.k
			}
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
		tr := map[bool]string{false: "N", true: "T"}
		name := fmt.Sprintf("M=%d,K=%d,N=%d/%s%s", s.m, s.k, s.n, tr[s.transA], tr[s.transB])
		rng := rand.New(rand.NewPCG(1, 1))
		a, bm, c := make([]float32, s.m*s.k), make([]float32, s.k*s.n), make([]float32, s.m*s.n)
		for _, x := range [][]float32{a, bm} {
			for i := range x {
				x[i] = float32(2*rng.Float64() - 1)
			}
		}
		lda, ldb := s.k, s.n
		if s.transA {
			lda = s.m
		}
		if s.transB {
			ldb = s.k
		}
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
		tr := map[bool]string{false: "N", true: "T"}
		name := fmt.Sprintf("M=%d,K=%d,N=%d/%s%s", s.m, s.k, s.n, tr[s.transA], tr[s.transB])
		rng := rand.New(rand.NewPCG(1, 1))
		a, bm, c := make([]float32, s.m*s.k), make([]float32, s.k*s.n), make([]float32, s.m*s.n)
		for _, x := range [][]float32{a, bm} {
			for i := range x {
				x[i] = float32(2*rng.Float64() - 1)
			}
		}
		lda, ldb := s.k, s.n
		if s.transA {
			lda = s.m
		}
		if s.transB {
			ldb = s.k
		}
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
