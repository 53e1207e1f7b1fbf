// This file holds the broadcasting element-wise ops: the binary ops Add,
// Sub, Mul and Div (NumPy rules), AddBias, Scale and AddScalar, each
// forward beside its backward. The activations are in ops_activation.go.
//
// Broadcasting works on a "plan": the two operand shapes are right-aligned,
// axes of output size 1 are dropped, and neighbouring axes on which both
// operands broadcast the same way are merged. Every case then becomes
// "outer rows × one inner run", where the inner run reads each operand with
// stride 1 or 0. Same-shape operands collapse to one run, (B,N,D)+(D) to
// B·N rows of D, (B,N,D)·(B,N,1) to B·N rows with a stride-0 right operand;
// the per-element loops carry no index arithmetic beyond i·stride.

package loope

import (
	"fmt"
	"sync"
)

// maxBcastRank bounds the rank of a broadcast after merging axes; only
// operands of rank > maxBcastRank with alternating broadcast patterns reach it.
const maxBcastRank = 32

// Binary op codes shared by forward and backward kernels.
const (
	opAdd = iota
	opSub
	opMul
	opDiv
)

var binaryNames = [...]string{"Add", "Sub", "Mul", "Div"}

// bcastPlan is a merged broadcast of a and b into out: dims are the
// output sizes of the kept axes, sa/sb the element strides of a and b along
// them (0 where the operand broadcasts). The last kept axis is the inner run.
type bcastPlan struct {
	rank         int
	dims, sa, sb [maxBcastRank]int
	outer, inner int // product of dims[:rank-1], dims[rank-1]
}

// broadcastShape returns the NumPy broadcast of shapes a and b: a or b
// itself when one of them already is the result, else the shape appended
// to dst[:0] (pass a stack buffer to avoid allocating).
func broadcastShape(op string, a, b, dst []int) []int {
	if sameShape(a, b) {
		return a
	}
	r := max(len(a), len(b))
	big, small := a, b
	if len(b) > len(a) {
		big, small = b, a
	}
	bigIsOut := true
	for k := range r {
		ds := 1
		if k >= r-len(small) {
			ds = small[k-(r-len(small))]
		}
		db := big[k]
		if ds != db && ds != 1 {
			if db != 1 {
				panic(fmt.Sprintf("loope: %s: cannot broadcast shapes %v and %v", op, a, b))
			}
			bigIsOut = false
		}
	}
	if bigIsOut {
		return big
	}
	out := dst[:0]
	for k := range r {
		ds := 1
		if k >= r-len(small) {
			ds = small[k-(r-len(small))]
		}
		out = append(out, max(big[k], ds))
	}
	return out
}

// makeBcastPlan builds the merged plan for a and b broadcast to out.
func makeBcastPlan(op string, a, b, out []int) bcastPlan {
	var p bcastPlan
	r := len(out)
	strideA, strideB := 1, 1
	// Walk axes from the innermost outwards, building merged axes in reverse.
	var dims, sa, sb [maxBcastRank]int
	n := 0
	prevA, prevB := -1, -1 // broadcast pattern of the current merged axis
	for k := r - 1; k >= 0; k-- {
		d := out[k]
		if d == 1 {
			continue
		}
		da, db := 1, 1
		if k >= r-len(a) {
			da = a[k-(r-len(a))]
		}
		if k >= r-len(b) {
			db = b[k-(r-len(b))]
		}
		pa, pb := boolInt(da != 1), boolInt(db != 1)
		if n > 0 && pa == prevA && pb == prevB {
			dims[n-1] *= d // merge into the current axis: strides stay
		} else {
			if n == maxBcastRank {
				panic(fmt.Sprintf("loope: %s: broadcast of %v and %v too irregular (more than %d merged axes)", op, a, b, maxBcastRank))
			}
			dims[n] = d
			sa[n], sb[n] = pa*strideA, pb*strideB
			n++
			prevA, prevB = pa, pb
		}
		strideA *= da
		strideB *= db
	}
	if n == 0 { // every axis has size 1: one element
		dims[0], n = 1, 1
		sa[0], sb[0] = 1, 1
	}
	p.rank = n
	for i := range n {
		p.dims[i], p.sa[i], p.sb[i] = dims[n-1-i], sa[n-1-i], sb[n-1-i]
	}
	p.inner = p.dims[n-1]
	p.outer = 1
	for _, d := range p.dims[:n-1] {
		p.outer *= d
	}
	return p
}

// rowOffsets returns the starting offsets into a and b of outer row row.
func (p *bcastPlan) rowOffsets(row int) (oa, ob int) {
	for k := p.rank - 2; k >= 0; k-- {
		i := row % p.dims[k]
		row /= p.dims[k]
		oa += i * p.sa[k]
		ob += i * p.sb[k]
	}
	return oa, ob
}

// forRows calls fn(o, oa, ob) for outer rows [lo, hi), where o, oa and ob are
// the offsets of the row's inner run in out, a and b, stepping an odometer
// instead of dividing per row.
func (p *bcastPlan) forRows(lo, hi int, fn func(o, oa, ob int)) {
	if lo >= hi {
		return
	}
	var idx [maxBcastRank]int
	row := lo
	for k := p.rank - 2; k >= 0; k-- {
		idx[k] = row % p.dims[k]
		row /= p.dims[k]
	}
	oa, ob := p.rowOffsets(lo)
	for r := lo; r < hi; r++ {
		fn(r*p.inner, oa, ob)
		for k := p.rank - 2; k >= 0; k-- { // odometer step
			idx[k]++
			oa += p.sa[k]
			ob += p.sb[k]
			if idx[k] < p.dims[k] {
				break
			}
			oa -= idx[k] * p.sa[k]
			ob -= idx[k] * p.sb[k]
			idx[k] = 0
		}
	}
}

// binaryRun computes out[i] = a[i·sa] op b[i·sb] for i < len(out), sa and
// sb in {0, 1}.
func binaryRun[T Float](op int, out, a []T, sa int, b []T, sb int) {
	n := len(out)
	if n == 0 {
		return
	}
	_, _ = a[(n-1)*sa], b[(n-1)*sb]
	if sa == 1 && sb == 1 {
		a, b = a[:n], b[:n]
		switch op {
		case opAdd:
			for i := range out {
				out[i] = a[i] + b[i]
			}
		case opSub:
			for i := range out {
				out[i] = a[i] - b[i]
			}
		case opMul:
			for i := range out {
				out[i] = a[i] * b[i]
			}
		case opDiv:
			for i := range out {
				out[i] = a[i] / b[i]
			}
		}
		return
	}
	switch op {
	case opAdd:
		for i := range out {
			out[i] = a[i*sa] + b[i*sb]
		}
	case opSub:
		for i := range out {
			out[i] = a[i*sa] - b[i*sb]
		}
	case opMul:
		for i := range out {
			out[i] = a[i*sa] * b[i*sb]
		}
	case opDiv:
		for i := range out {
			out[i] = a[i*sa] / b[i*sb]
		}
	}
}

// binary is the shared forward of Add, Sub, Mul and Div.
func (tp *Tape[T]) binary(op int, a, b *Tensor[T]) *Tensor[T] {
	name := binaryNames[op]
	var buf [8]int
	shape := broadcastShape(name, a.Shape, b.Shape, buf[:0])
	out := tp.outNoZero(shape, a, b) // every element is written below
	p := makeBcastPlan(name, a.Shape, b.Shape, out.Shape)
	if serial(p.outer * p.inner) {
		binaryRows(op, &p, out.Data, a.Data, b.Data, 0, p.outer)
	} else {
		binarySplit(binaryJob[T]{op: op, plan: p, out: out.Data, a: a.Data, b: b.Data})
	}
	if out.Grad != nil {
		nd := tp.record(binaryBackward[T]{}, out, a, b)
		*attrsOf[binaryAttrs](nd) = binaryAttrs{op: op}
	}
	return out
}

// binaryRows runs the forward kernel on outer rows [lo, hi).
func binaryRows[T Float](op int, p *bcastPlan, out, a, b []T, lo, hi int) {
	n, sa, sb := p.inner, p.sa[p.rank-1], p.sb[p.rank-1]
	p.forRows(lo, hi, func(o, oa, ob int) {
		binaryRun(op, out[o:o+n], a[oa:], sa, b[ob:], sb)
	})
}

// binaryBackward, with g = dout and y = out:
//
//	Add: da += g,   db += g
//	Sub: da += g,   db −= g
//	Mul: da += g·b, db += g·a
//	Div: da += g/b, db −= g·y/b   (d(a/b)/db = −a/b² = −y/b)
//
// each summed over the axes along which that operand was broadcast.
// An operand that is not broadcast gets its rows in parallel; a broadcast
// one is reduced serially, in row order, so sums never depend on threads.
type binaryBackward[T Float] struct{}

// binaryAttrs are binary's node attributes: the op code (opAdd, …).
type binaryAttrs struct{ op int }

func (binaryBackward[T]) backward(nd *node[T]) {
	a, b, y := nd.in[0], nd.in[1], nd.out
	op := attrsOf[binaryAttrs](nd).op
	p := makeBcastPlan(binaryNames[op], a.Shape, b.Shape, y.Shape)
	for which, x := range nd.in[:2] {
		if x.Grad == nil {
			continue
		}
		if len(x.Data) == len(y.Data) && !serial(len(y.Data)) {
			binarySplit(binaryJob[T]{op: op, which: which, plan: p, out: y.Data, a: a.Data, b: b.Data, dx: x.Grad, dy: y.Grad, backward: true})
		} else {
			binaryGradRows(op, which, &p, x.Grad, y.Grad, a.Data, b.Data, y.Data, 0, p.outer)
		}
	}
}

// binaryJob runs binaryRows (or, with backward set, binaryGradRows for
// operand which) on outer rows [lo, hi) (a pooled job: no closure).
type binaryJob[T Float] struct {
	op, which         int
	plan              bcastPlan
	out, a, b, dx, dy []T
	backward, flat    bool
}

var binaryJobs [2]sync.Pool // [0] float32, [1] float64

// binarySplit runs j over threads: over outer rows, or, when the plan is
// one run (same shapes, or an operand broadcast whole), over its elements,
// which then run as rows of their own (j.flat).
func binarySplit[T Float](j binaryJob[T]) {
	if p := &j.plan; p.rank == 1 {
		j.flat = true
		runPooled[T](&binaryJobs, j, p.inner, parGrain, false)
	} else {
		runPooled[T](&binaryJobs, j, p.outer, max(1, parGrain/p.inner), false)
	}
}

func (j *binaryJob[T]) run(lo, hi int) {
	if j.flat { // elements [lo, hi) of the single run
		sa, sb := j.plan.sa[0], j.plan.sb[0]
		a, b := j.a[lo*sa:], j.b[lo*sb:]
		if !j.backward {
			binaryRun(j.op, j.out[lo:hi], a, sa, b, sb)
			return
		}
		// The operand whose gradient this is has the output's size: stride 1.
		binaryGradRun(j.op, j.which, j.dx[lo:], 1, j.dy[lo:hi], a, sa, b, sb, j.out[lo:hi])
		return
	}
	if j.backward {
		binaryGradRows(j.op, j.which, &j.plan, j.dx, j.dy, j.a, j.b, j.out, lo, hi)
		return
	}
	binaryRows(j.op, &j.plan, j.out, j.a, j.b, lo, hi)
}

// binaryGradRows accumulates the gradient of operand which (0 = a, 1 = b)
// over outer rows [lo, hi).
func binaryGradRows[T Float](op, which int, p *bcastPlan, dx, g, a, b, y []T, lo, hi int) {
	n, sa, sb := p.inner, p.sa[p.rank-1], p.sb[p.rank-1]
	p.forRows(lo, hi, func(o, oa, ob int) {
		if which == 0 {
			binaryGradRun(op, which, dx[oa:], sa, g[o:o+n], a[oa:], sa, b[ob:], sb, y[o:o+n])
		} else {
			binaryGradRun(op, which, dx[ob:], sb, g[o:o+n], a[oa:], sa, b[ob:], sb, y[o:o+n])
		}
	})
}

// binaryGradRun adds c_i·g[i] into dx[i·sd] for one inner run, where c_i is
// the partial derivative of op with respect to operand which (see
// binaryBackward). With sd = 0 the run is summed first, then added once.
func binaryGradRun[T Float](op, which int, dx []T, sd int, g, a []T, sa int, b []T, sb int, y []T) {
	n := len(g)
	if n == 0 {
		return
	}
	_, _, _ = dx[(n-1)*sd], a[(n-1)*sa], b[(n-1)*sb]
	if sd == 1 {
		dx = dx[:n]
		switch {
		case op == opAdd || (op == opSub && which == 0):
			for i, v := range g {
				dx[i] += v
			}
		case op == opSub:
			for i, v := range g {
				dx[i] -= v
			}
		case op == opMul && which == 0:
			for i, v := range g {
				dx[i] += v * b[i*sb]
			}
		case op == opMul:
			for i, v := range g {
				dx[i] += v * a[i*sa]
			}
		case op == opDiv && which == 0:
			for i, v := range g {
				dx[i] += v / b[i*sb]
			}
		default: // Div, b
			for i, v := range g {
				dx[i] -= v * y[i] / b[i*sb]
			}
		}
		return
	}
	var s T
	switch {
	case op == opAdd || (op == opSub && which == 0):
		for _, v := range g {
			s += v
		}
	case op == opSub:
		for _, v := range g {
			s -= v
		}
	case op == opMul && which == 0:
		for i, v := range g {
			s += v * b[i*sb]
		}
	case op == opMul:
		for i, v := range g {
			s += v * a[i*sa]
		}
	case op == opDiv && which == 0:
		for i, v := range g {
			s += v / b[i*sb]
		}
	default:
		for i, v := range g {
			s -= v * y[i] / b[i*sb]
		}
	}
	dx[0] += s
}

// Add returns a + b with NumPy broadcasting: shapes are right-aligned and
// an axis of size 1 (or a missing one) stretches to the other's size.
// a (...), b (...) → broadcast shape.
func (tp *Tape[T]) Add(a, b *Tensor[T]) *Tensor[T] { return tp.binary(opAdd, a, b) }

// Sub returns a − b with NumPy broadcasting (see Add).
// a (...), b (...) → broadcast shape.
func (tp *Tape[T]) Sub(a, b *Tensor[T]) *Tensor[T] { return tp.binary(opSub, a, b) }

// Mul returns the element-wise product a ⊙ b with NumPy broadcasting (see Add).
// a (...), b (...) → broadcast shape.
func (tp *Tape[T]) Mul(a, b *Tensor[T]) *Tensor[T] { return tp.binary(opMul, a, b) }

// Div returns the element-wise quotient a / b with NumPy broadcasting (see Add).
// a (...), b (...) → broadcast shape.
func (tp *Tape[T]) Div(a, b *Tensor[T]) *Tensor[T] { return tp.binary(opDiv, a, b) }

// AddBias returns x + b with b added to every row: x (..., D), b (D) →
// (..., D). It is Add restricted to that shape pair.
func (tp *Tape[T]) AddBias(x, b *Tensor[T]) *Tensor[T] {
	if len(x.Shape) < 1 || len(b.Shape) != 1 || b.Shape[0] != x.Shape[len(x.Shape)-1] {
		panic(fmt.Sprintf("loope: AddBias: shape mismatch x %v, b %v", x.Shape, b.Shape))
	}
	return tp.binary(opAdd, x, b)
}

// Scale returns x·s: x (...) → (...).
func (tp *Tape[T]) Scale(x *Tensor[T], s float64) *Tensor[T] {
	out := tp.outNoZero(x.Shape, x)
	c := T(s)
	for i, v := range x.Data {
		out.Data[i] = v * c
	}
	if out.Grad != nil {
		nd := tp.record(scaleBackward[T]{}, out, x)
		*attrsOf[scaleAttrs](nd) = scaleAttrs{scale: s}
	}
	return out
}

// scaleBackward: dx += s·dy.
type scaleBackward[T Float] struct{}

// scaleAttrs are the node attributes of Scale, SumAll and SumAxis: the
// factor of the sum.
type scaleAttrs struct{ scale float64 }

func (scaleBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	c := T(attrsOf[scaleAttrs](nd).scale)
	for i, g := range y.Grad {
		x.Grad[i] += c * g
	}
}

// AddScalar returns x + s: x (...) → (...).
func (tp *Tape[T]) AddScalar(x *Tensor[T], s float64) *Tensor[T] {
	out := tp.outNoZero(x.Shape, x)
	c := T(s)
	for i, v := range x.Data {
		out.Data[i] = v + c
	}
	if out.Grad != nil {
		tp.record(addScalarBackward[T]{}, out, x)
	}
	return out
}

// addScalarBackward: dx += dy.
type addScalarBackward[T Float] struct{}

func (addScalarBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	for i, g := range y.Grad {
		x.Grad[i] += g
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
