// This file holds the one place that spreads work over cores: a fixed,
// contiguous split of an index range, so every output element is always
// computed by the same code path in the same order, whatever the scheduling.

package loope

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// threads is the number of goroutines kernels use; 0 means GOMAXPROCS.
var threads atomic.Int32

// SetThreads sets how many goroutines kernels split work over (n <= 0 means
// GOMAXPROCS). Results are bit-identical for a given thread count.
func SetThreads(n int) { threads.Store(int32(max(n, 0))) }

// Threads returns the number of goroutines kernels split work over.
func Threads() int {
	if n := int(threads.Load()); n > 0 {
		return n
	}
	return runtime.GOMAXPROCS(0)
}

// parallelFor calls fn(lo, hi) on contiguous chunks covering [0, n). Chunk
// boundaries depend only on n, grain and Threads(): the split is
// deterministic. Work below 2*grain items runs on the calling goroutine.
func parallelFor(n, grain int, fn func(lo, hi int)) {
	w := Threads()
	if grain < 1 {
		grain = 1
	}
	w = min(w, n/grain)
	if w <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for i := 1; i < w; i++ {
		lo, hi := i*n/w, (i+1)*n/w
		wg.Go(func() { fn(lo, hi) })
	}
	fn(0, n/w)
	wg.Wait()
}
