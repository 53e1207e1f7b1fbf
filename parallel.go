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

// parallelFor calls fn(lo, hi) on contiguous chunks covering [0, n), split
// as parallelRun does: chunk boundaries depend only on n, grain and
// Threads(), so the split is deterministic. Work below 2*grain items runs
// on the calling goroutine.
// The closure fn escapes (it is handed to the workers), so building it
// allocates once per call; parallelRun with a pointer-shaped job does not.
func parallelFor(n, grain int, fn func(lo, hi int)) { parallelRun(n, grain, funcJob(fn)) }

// maxChunks bounds the number of chunks of one parallelRun, and
// chunksPerThread is how many chunks it aims at per thread: goroutines claim
// chunks as they finish, so one slowed down by other load on the machine
// runs fewer of them.
const (
	maxChunks       = 64
	chunksPerThread = 4
)

// parallelRun calls job.run(lo, hi) on contiguous chunks covering [0, n).
// The chunk boundaries depend only on n, grain and Threads(): with
// t = Threads(), up to min(4t, n/grain) equal chunks, run by the calling
// goroutine and up to t−1 idle pool workers, each claiming the next chunk
// when done with one. Which goroutine runs a chunk never changes what it
// computes, so results do not depend on scheduling. Work below 2*grain
// items runs on the calling goroutine as one chunk.
func parallelRun(n, grain int, job rangeJob) {
	t := Threads()
	if grain < 1 {
		grain = 1
	}
	w := min(t, n/grain, maxChunks)
	if w <= 1 {
		if n > 0 {
			job.run(0, n)
		}
		return
	}
	g := groupPool.Get().(*chunkGroup)
	g.job, g.n, g.chunks = job, n, min(chunksPerThread*t, n/grain, maxChunks)
	g.next.Store(0)
	runTask(g, w-1)
	g.job = nil
	groupPool.Put(g)
}

// A task is work that pool workers help the calling goroutine with: work
// claims pieces (chunks of a parallelRun, parts of a GEMM) until none is
// left, so it may run on several goroutines at once.
type task interface{ work() }

// runTask runs t.work on the calling goroutine and on up to helpers idle
// pool workers (at most maxChunks − 1), and returns when all of them are
// done. A caller takes only idle workers, so it never waits for another
// caller's task; pieces nobody else took it runs itself.
func runTask(t task, helpers int) {
	var taken [maxChunks - 1]*poolWorker
	k := 0
	for range min(helpers, len(taken)) {
		wk := getWorker()
		if wk == nil {
			break
		}
		taken[k] = wk
		k++
		wk.task <- t
	}
	t.work()
	for _, wk := range taken[:k] {
		<-wk.done
		idleWorkers <- wk
	}
}

// chunkGroup is one parallelRun: its job, the chunking, and the next
// unclaimed chunk. Groups are pooled, so a call allocates nothing.
type chunkGroup struct {
	job       rangeJob
	n, chunks int
	next      atomic.Int32
}

var groupPool = sync.Pool{New: func() any { return new(chunkGroup) }}

// work runs unclaimed chunks until none is left.
func (g *chunkGroup) work() {
	for {
		i := int(g.next.Add(1)) - 1
		if i >= g.chunks {
			return
		}
		g.job.run(i*g.n/g.chunks, (i+1)*g.n/g.chunks)
	}
}

// poolWorker is a persistent goroutine that helps with one task at a time:
// it receives on task and signals done when the task has nothing left.
type poolWorker struct {
	task chan task
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
	wk := &poolWorker{task: make(chan task, 1), done: make(chan struct{}, 1)}
	go wk.loop()
	return wk
}

func (wk *poolWorker) loop() {
	for t := range wk.task {
		t.work()
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

// runPooled runs job on the items [0, n): on the calling goroutine when
// serial is set, else split by parallelRun in chunks of at least grain
// items. It runs a copy of job taken from pools (the float32 and float64
// copies of the job type, by T) and recycles it after, so neither path
// allocates: the one sequence every pooled kernel uses.
func runPooled[T Float, J any, PJ interface {
	*J
	rangeJob
}](pools *[2]sync.Pool, job J, n, grain int, serial bool) {
	pi := poolIndex[T]()
	j := getJob[J](pools, pi)
	*j = job
	if serial {
		PJ(j).run(0, n)
	} else {
		parallelRun(n, grain, PJ(j))
	}
	putJob(pools, pi, j)
}

// putJob zeroes j (dropping its references to tensors) and recycles it.
func putJob[J any](pools *[2]sync.Pool, i int, j *J) {
	var z J
	*j = z
	if i >= 0 {
		pools[i].Put(j)
	}
}

// parGrain is the element count below which element-wise kernels run on
// the calling goroutine; above 2·parGrain they split over Threads().
const parGrain = 16384

// serial reports whether an element-wise kernel over n elements should run
// on the calling goroutine: n is small, or there is one thread.
func serial(n int) bool { return n < 2*parGrain || Threads() == 1 }

// poolIndex is 0 for float32, 1 for float64 and -1 for named float types,
// which are not pooled.
func poolIndex[T Float]() int {
	var z T
	switch any(z).(type) {
	case float32:
		return 0
	case float64:
		return 1
	}
	return -1
}
