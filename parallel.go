// This file holds the one place that spreads work over cores: a fixed,
// contiguous split of an index range, so every output element is always
// computed by the same code path in the same order, whatever the scheduling.
// The chunks run on a pool of persistent worker goroutines, so a parallel
// kernel starts no goroutine and allocates nothing itself.

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

// rangeJob is work that parallelRun splits: run(lo, hi) handles the items
// [lo, hi). A job whose dynamic value is pointer-shaped (a pointer, or a
// struct holding one pointer) is stored in the interface without
// allocating, which lets hot kernels split with no allocation at all.
type rangeJob interface{ run(lo, hi int) }

// funcJob adapts a closure to rangeJob.
type funcJob func(lo, hi int)

func (f funcJob) run(lo, hi int) { f(lo, hi) }

// parallelFor calls fn(lo, hi) on contiguous chunks covering [0, n). Chunk
// boundaries depend only on n, grain and Threads(): the split is
// deterministic. Work below 2*grain items runs on the calling goroutine.
// The closure fn escapes (it is handed to the workers), so building it
// allocates once per call; parallelRun with a pointer-shaped job does not.
func parallelFor(n, grain int, fn func(lo, hi int)) { parallelRun(n, grain, funcJob(fn)) }

// maxChunks bounds the number of chunks of one parallelRun.
const maxChunks = 64

// parallelRun calls job.run(lo, hi) on contiguous chunks covering [0, n),
// split as parallelFor does. Chunk i runs on an idle pool worker when one
// is free, otherwise on the calling goroutine (after chunk 0, in order);
// either way it covers the same range, so results do not depend on it.
func parallelRun(n, grain int, job rangeJob) {
	w := Threads()
	if grain < 1 {
		grain = 1
	}
	w = min(w, n/grain, maxChunks)
	if w <= 1 {
		if n > 0 {
			job.run(0, n)
		}
		return
	}
	var taken [maxChunks]*poolWorker
	k := 0
	for i := 1; i < w; i++ {
		wk := getWorker()
		if wk == nil {
			break
		}
		taken[k] = wk
		k++
		wk.task <- poolTask{job, i * n / w, (i + 1) * n / w}
	}
	job.run(0, n/w)
	for i := k + 1; i < w; i++ {
		job.run(i*n/w, (i+1)*n/w)
	}
	for _, wk := range taken[:k] {
		<-wk.done
		idleWorkers <- wk
	}
}

// poolTask is one chunk handed to a worker.
type poolTask struct {
	job    rangeJob
	lo, hi int
}

// poolWorker is a persistent goroutine running one task at a time: it
// receives on task and signals done after each.
type poolWorker struct {
	task chan poolTask
	done chan struct{}
}

// maxWorkers bounds the pool (concurrent callers may each take
// Threads()−1 workers).
const maxWorkers = 256

var (
	idleWorkers = make(chan *poolWorker, maxWorkers)
	numWorkers  atomic.Int32
)

// getWorker returns an idle worker, starting one if the pool is below
// maxWorkers, or nil when none is free.
func getWorker() *poolWorker {
	select {
	case wk := <-idleWorkers:
		return wk
	default:
	}
	for {
		n := numWorkers.Load()
		if n >= maxWorkers {
			return nil
		}
		if numWorkers.CompareAndSwap(n, n+1) {
			break
		}
	}
	wk := &poolWorker{task: make(chan poolTask, 1), done: make(chan struct{}, 1)}
	go wk.loop()
	return wk
}

func (wk *poolWorker) loop() {
	for t := range wk.task {
		t.job.run(t.lo, t.hi)
		wk.done <- struct{}{}
	}
}

// getJob returns a recycled *J from pools[i] (i = poolIndex[T]() of the
// job's element type; −1 for named float types, which are not pooled), or
// a new one. Kernels that split through parallelRun keep their arguments in
// such a job instead of a closure, so a steady state allocates nothing.
func getJob[J any](pools *[2]sync.Pool, i int) *J {
	if i >= 0 {
		if j, ok := pools[i].Get().(*J); ok {
			return j
		}
	}
	return new(J)
}

// putJob zeroes j (dropping its references to tensors) and recycles it.
func putJob[J any](pools *[2]sync.Pool, i int, j *J) {
	var z J
	*j = z
	if i >= 0 {
		pools[i].Put(j)
	}
}
