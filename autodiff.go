// This file holds the reverse-mode autodiff tape: op recording in creation
// order, Backward from a scalar, the no-grad (inference) mode, and the arena
// that recycles activation and gradient buffers from one step to the next.

package loope

import (
	"fmt"
	"sync"
	"unsafe"
)

// Tape records differentiable ops in creation order and replays their
// backward functions in reverse. It also owns every tensor its ops create:
// Reset recycles them, so a training loop that calls Reset once per step
// reaches a steady state that allocates next to nothing.
//
// A Tape is not safe for concurrent use; kernels parallelise inside an op
// over fixed ranges, so results do not depend on scheduling.
type Tape[T Float] struct {
	// NoGrad switches the tape to inference mode: ops record nothing and
	// their outputs carry no gradient.
	NoGrad bool

	nodes  []node[T]    // recorded ops; nodes[:nnodes] are live
	nnodes int          //
	pool   []*Tensor[T] // arena tensors; pool[:npool] are live
	npool  int          //
	bufs   [][]T        // arena scratch buffers; bufs[:nbufs] are live
	nbufs  int          //
	views  []*Tensor[T] // view headers (see view); views[:nviews] are live
	nviews int          //
	// Lazy gradients (see newTensor): viewSrc[i] is the tensor views[i]
	// aliases; gradFree holds gradient buffers not in use; gradLive the
	// tensors whose Grad was taken from the free list this step.
	viewSrc  []*Tensor[T]
	lazyMark []T
	gradFree [][]T
	gradLive []*Tensor[T]
}

// backwardOp is an op's backward pass. Each op implements it on an empty
// struct type declared next to its forward (e.g. linearBackward[T]{}), so
// storing it in a node allocates nothing, unlike a generic func value, which
// Go turns into a closure over the type dictionary.
type backwardOp[T Float] interface{ backward(nd *node[T]) }

// node is one recorded op. What the backward needs beyond inputs and output
// is kept in attrs (the op's own struct of sizes and flags, see attrsOf),
// ints (variable-length lists: labels, indices, permutations) and saved;
// the backing arrays of ints and saved are reused across steps.
type node[T Float] struct {
	op    backwardOp[T]
	out   *Tensor[T]
	in    []*Tensor[T] // operands, in the op's argument order
	attrs opAttrs      // the op's attributes, read and written through attrsOf
	ints  []int        // variable-length integer attributes
	saved [][]T        // arena buffers saved by the forward
	hook  any          // an op-specific value (e.g. an index slice); nil for most ops
}

// opAttrs is a node's room for its op's attributes: sixteen words (the
// largest, Conv2d's convGeom, takes all sixteen).
type opAttrs [16]uint64

// attrsOf returns nd's attribute room as *A, the op's struct of attributes
// (e.g. attentionAttrs): each op names its sizes, flags and scales, and the
// node keeps them without allocating. A must fit in opAttrs and hold
// no pointers (ints, floats and bools only): the room is not scanned by the
// garbage collector.
func attrsOf[A any, T Float](nd *node[T]) *A {
	var a A
	if unsafe.Sizeof(a) > unsafe.Sizeof(nd.attrs) || unsafe.Alignof(a) > unsafe.Alignof(nd.attrs) {
		panic(fmt.Sprintf("loope: op attributes %T do not fit a node", a))
	}
	return (*A)(unsafe.Pointer(&nd.attrs))
}

// Reset forgets every recorded op and recycles every tensor and buffer the
// tape handed out since the last Reset. Tensors from the previous step must
// not be used after Reset.
func (tp *Tape[T]) Reset() {
	for i := range tp.nnodes {
		n := &tp.nodes[i]
		n.out, n.hook, n.op = nil, nil, nil
		clear(n.in)
		n.in = n.in[:0]
		n.ints, n.attrs = n.ints[:0], opAttrs{}
		clear(n.saved)
		n.saved = n.saved[:0]
	}
	for i, v := range tp.views[:tp.nviews] {
		v.Data, v.Grad = nil, nil // drop the aliases; never reuse their storage
		tp.viewSrc[i] = nil
	}
	for _, t := range tp.gradLive {
		tp.releaseGrad(t)
	}
	clear(tp.gradLive)
	tp.gradLive = tp.gradLive[:0]
	tp.nnodes, tp.npool, tp.nbufs, tp.nviews = 0, 0, 0, 0
}

// New returns a zeroed arena tensor of the given shape. It carries a zeroed
// gradient unless the tape is in no-grad mode.
func (tp *Tape[T]) New(shape ...int) *Tensor[T] {
	t := tp.newTensor(!tp.NoGrad, shape)
	if t.Grad != nil {
		tp.materialize(t) // a leaf: its gradient stays readable after Backward
	}
	return t
}

// out returns a zeroed arena tensor for an op's result; it has a gradient
// only if the tape records and some input has one. That gradient is lazy
// (see newTensor).
func (tp *Tape[T]) out(shape []int, inputs ...*Tensor[T]) *Tensor[T] {
	return tp.newTensor(tp.needsGrad(inputs...), shape)
}

// outNoZero is out for an op that writes every element of its result
// before anything reads it: Data is not zeroed (it holds whatever the arena
// slot held last step); Grad, if any, is lazy and zeroed when materialized,
// as always, since backward passes accumulate into it.
func (tp *Tape[T]) outNoZero(shape []int, inputs ...*Tensor[T]) *Tensor[T] {
	return tp.newTensorNoZero(tp.needsGrad(inputs...), shape)
}

// needsGrad reports whether an op over inputs must be recorded.
func (tp *Tape[T]) needsGrad(inputs ...*Tensor[T]) bool {
	if tp.NoGrad {
		return false
	}
	for _, t := range inputs {
		if t != nil && t.Grad != nil {
			return true
		}
	}
	return false
}

// newTensor returns an arena tensor with zeroed Data. With grad set its
// Grad is a lazy placeholder: non-nil (ops test Grad != nil to know that a
// gradient flows) but empty. Backward gives it zeroed storage from the
// tape's free list just before the first backward that writes it, and
// returns that storage right after the backward of the op that made the
// tensor has read it. So only the gradients live at one point of the
// backward pass take memory at once (as in PyTorch, where intermediate
// gradients are freed), instead of one gradient per activation, and the
// reused buffers stay warm in cache. Leaves made by New get a real Grad.
func (tp *Tape[T]) newTensor(grad bool, shape []int) *Tensor[T] {
	t := tp.newTensorNoZero(grad, shape)
	clearParallel(t.Data)
	return t
}

// newTensorNoZero is newTensor without zeroing Data.
func (tp *Tape[T]) newTensorNoZero(grad bool, shape []int) *Tensor[T] {
	n := numel("Tape.New", shape)
	if tp.npool == len(tp.pool) {
		tp.pool = append(tp.pool, &Tensor[T]{})
	}
	t := tp.pool[tp.npool]
	tp.npool++
	t.Shape = append(t.Shape[:0], shape...)
	if cap(t.Data) < n {
		t.Data = make([]T, n)
	} else {
		t.Data = t.Data[:n]
	}
	t.Grad = nil // a slot keeps its grad status step to step, so nothing is lost
	if grad {
		t.Grad = tp.lazyGrad()
	}
	return t
}

// lazyGrad returns the placeholder of a gradient without storage.
func (tp *Tape[T]) lazyGrad() []T {
	if tp.lazyMark == nil {
		tp.lazyMark = make([]T, 1)
	}
	return tp.lazyMark[:0:0]
}

// isLazy reports whether g is the placeholder of lazyGrad.
func (tp *Tape[T]) isLazy(g []T) bool {
	return g != nil && cap(g) == 0 && tp.lazyMark != nil && unsafe.SliceData(g) == unsafe.SliceData(tp.lazyMark)
}

// materialize gives t's lazy gradient zeroed storage (a view shares its
// source's).
func (tp *Tape[T]) materialize(t *Tensor[T]) {
	if !tp.isLazy(t.Grad) {
		return
	}
	for i, v := range tp.views[:tp.nviews] {
		if v == t {
			src := tp.viewSrc[i]
			tp.materialize(src)
			t.Grad = src.Grad
			return
		}
	}
	n := len(t.Data)
	if n == 0 {
		t.Grad = []T{} // materialized and empty
		return
	}
	best := -1 // the smallest free buffer that fits
	for i, b := range tp.gradFree {
		if cap(b) >= n && (best < 0 || cap(b) < cap(tp.gradFree[best])) {
			best = i
		}
	}
	var g []T
	if best < 0 {
		g = make([]T, n)
	} else {
		g = tp.gradFree[best][:n]
		last := len(tp.gradFree) - 1
		tp.gradFree[best] = tp.gradFree[last]
		tp.gradFree[last] = nil
		tp.gradFree = tp.gradFree[:last]
		clearParallel(g)
	}
	t.Grad = g
	tp.gradLive = append(tp.gradLive, t)
}

// releaseGrad returns t's materialized gradient storage to the free list
// and makes its Grad a placeholder again. Others (views, and t's own
// views) must not read it afterwards.
func (tp *Tape[T]) releaseGrad(t *Tensor[T]) {
	if t.Grad == nil || tp.isLazy(t.Grad) {
		return
	}
	tp.gradFree = append(tp.gradFree, t.Grad[:0])
	t.Grad = tp.lazyGrad()
}

// grow returns a zeroed slice of length n, reusing buf's storage if it fits.
func grow[T Float](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	buf = buf[:n]
	clearParallel(buf)
	return buf
}

// clearParallel zeroes buf, splitting a large buf over threads (memory
// bandwidth of one core does not saturate the machine's).
func clearParallel[T Float](buf []T) {
	if serial(len(buf) / 4) { // clearing is cheap per element: split only big buffers
		clear(buf)
		return
	}
	runPooled[T](&clearJobs, clearJob[T]{buf: buf}, len(buf), 4*parGrain, false)
}

// clearJob zeroes buf[lo:hi] (a pooled job: no closure).
type clearJob[T Float] struct{ buf []T }

var clearJobs [2]sync.Pool // [0] float32, [1] float64

func (j *clearJob[T]) run(lo, hi int) { clear(j.buf[lo:hi]) }

// view returns an arena tensor header of the given shape whose Data and
// Grad alias x's (Grad is nil in no-grad mode): a zero-copy reshape, needing
// no backward because gradients flow into x.Grad directly.
//
// Views live in their own pool, apart from the tensors of out/New, and a
// view slot's Data and Grad are only ever reassigned, never grown or
// cleared. Were views drawn from the main pool, the next step's grow would
// clear and write into whatever storage the slot last aliased, i.e. into
// another tensor (a parameter, or an arena output of a different slot).
// The caller checks that shape has x's element count.
func (tp *Tape[T]) view(x *Tensor[T], shape []int) *Tensor[T] {
	if tp.nviews == len(tp.views) {
		tp.views = append(tp.views, &Tensor[T]{})
	}
	t := tp.views[tp.nviews]
	tp.nviews++
	t.Shape = append(t.Shape[:0], shape...)
	t.Data, t.Grad = x.Data, x.Grad
	if tp.NoGrad {
		t.Grad = nil
	}
	if tp.nviews > len(tp.viewSrc) {
		tp.viewSrc = append(tp.viewSrc, nil)
	}
	tp.viewSrc[tp.nviews-1] = x
	return t
}

// arenaBytes returns the bytes the tape's arena holds: its tensors' data
// and gradients, scratch buffers and free gradient buffers.
func (tp *Tape[T]) arenaBytes() int64 {
	var n int
	for _, t := range tp.pool {
		n += cap(t.Data) + cap(t.Grad)
	}
	for _, b := range tp.bufs {
		n += cap(b)
	}
	for _, b := range tp.gradFree {
		n += cap(b)
	}
	var zero T
	return int64(n) * int64(unsafe.Sizeof(zero))
}

// scratch returns a zeroed arena buffer of length n, valid until Reset.
// Ops use it for values the backward needs (means, softmax rows, masks).
func (tp *Tape[T]) scratch(n int) []T {
	if tp.nbufs == len(tp.bufs) {
		tp.bufs = append(tp.bufs, nil)
	}
	b := grow(tp.bufs[tp.nbufs], n)
	tp.bufs[tp.nbufs] = b
	tp.nbufs++
	return b
}

// scratchNoZero is scratch for a buffer the op writes in full before
// reading: its contents are left from the last step.
func (tp *Tape[T]) scratchNoZero(n int) []T {
	if tp.nbufs == len(tp.bufs) {
		tp.bufs = append(tp.bufs, nil)
	}
	b := tp.bufs[tp.nbufs]
	if cap(b) < n {
		b = make([]T, n)
	}
	b = b[:n]
	tp.bufs[tp.nbufs] = b
	tp.nbufs++
	return b
}

// record appends an op whose backward pass is op; out must already hold the
// forward result. It returns the node so the op can attach attributes.
// Callers record only when out.Grad != nil. Every node's out is a fresh
// tp.out tensor; an op that records several nodes for one out records them
// one right after the other (backwardFrom frees out's gradient after the
// earliest of them).
func (tp *Tape[T]) record(op backwardOp[T], out *Tensor[T], in ...*Tensor[T]) *node[T] {
	if tp.nnodes == len(tp.nodes) {
		tp.nodes = append(tp.nodes, node[T]{})
	}
	n := &tp.nodes[tp.nnodes]
	tp.nnodes++
	n.op, n.out = op, out
	n.in = append(n.in[:0], in...)
	return n
}

// Len returns the number of ops recorded since the last Reset.
func (tp *Tape[T]) Len() int { return tp.nnodes }

// Backward seeds d loss/d loss = 1 and runs every recorded backward in
// reverse creation order, accumulating into the Grad of each tensor. loss
// must be a one-element tensor made by this tape. Parameter gradients are
// not cleared first: call ZeroGrad between steps.
func (tp *Tape[T]) Backward(loss *Tensor[T]) {
	if loss.Size() != 1 {
		panic(fmt.Sprintf("loope: Backward: loss must have one element, has shape %v", loss.Shape))
	}
	seed := tp.scratch(1)
	seed[0] = 1
	tp.backwardFrom(loss, seed)
}

// backwardFrom adds seed to out.Grad and runs the tape in reverse. The
// gradient check uses it to seed a random projection of a non-scalar output.
func (tp *Tape[T]) backwardFrom(out *Tensor[T], seed []T) {
	if out.Grad == nil {
		panic("loope: Backward: output has no gradient (no-grad mode, or no parameter upstream)")
	}
	tp.materialize(out)
	if len(seed) != len(out.Grad) {
		panic(fmt.Sprintf("loope: Backward: seed length %d for shape %v", len(seed), out.Shape))
	}
	for i, s := range seed {
		out.Grad[i] += s
	}
	for i := tp.nnodes - 1; i >= 0; i-- {
		n := &tp.nodes[i]
		if tp.isLazy(n.out.Grad) {
			continue // no later op used n.out: its gradient is zero
		}
		for _, x := range n.in {
			if x != nil {
				tp.materialize(x)
			}
		}
		n.op.backward(n)
		// The gradient is dead once the op that made n.out has run. An op
		// may record several nodes for one output (linearAdd does); they
		// are consecutive, so the earliest of them releases it.
		if n.out != out && (i == 0 || tp.nodes[i-1].out != n.out) {
			tp.releaseGrad(n.out)
		}
	}
}

// ZeroGrad clears the gradients of params.
func ZeroGrad[T Float](params []*Tensor[T]) {
	for _, p := range params {
		p.ZeroGrad()
	}
}
