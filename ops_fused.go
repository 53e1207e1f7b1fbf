// This file holds the fused ops of the ViT block and the one place that
// decides whether they run (fusedOps, newFusedOps). Each computes a plain
// composition of ops as one op, with the same kernels in the same order, so
// its values and gradients have the composition's bits; what it saves is
// intermediate tensors, their gradient buffers and copies.
//
//	fused op                     plain ops it replaces                         bits proven by
//	linearGELU(x, w, b)          GELU(Linear(x, w, b))                         TestLinearGELUFused
//	linearAdd(x, a, w, b)        Add(x, Linear(a, w, b))                       TestLinearAddFused
//	attentionQKV(qkv, bias, H)   MergeHeads(Attention(QKVHeads(qkv, H), bias))  TestAttentionQKVMatchesComposition
//
// TestViTFusions runs whole ViTs with every fusion on and off and requires
// the same logits and gradients, bit for bit, for every PE; the reference
// layer (ref_ops.go) checks each fused op in TestFastPathVsReference.

package loope

import (
	"fmt"
	"sync"
)

// fusedOps runs the block's composite steps on tp, each as its fused op
// when its flag is set and as the plain composition otherwise.
type fusedOps[T Float] struct {
	tp           *Tape[T]
	attentionQKV bool // attention straight on the qkv rows
	linearGELU   bool // fc1 and GELU
	linearAdd    bool // a residual add around proj and fc2
}

// noFusion turns every fusion off (tests compare both paths).
var noFusion bool

// newFusedOps decides the fusions of a ViT forward on tp with the PE pe:
// attention on the fused qkv rows needs a PE that leaves q and k alone
// (plainQK); the MLP and residual fusions always apply.
func newFusedOps[T Float](tp *Tape[T], pe PosEmb[T]) fusedOps[T] {
	if noFusion {
		return fusedOps[T]{tp: tp}
	}
	return fusedOps[T]{tp: tp, attentionQKV: plainQK(pe), linearGELU: true, linearAdd: true}
}

// gelu returns GELU(x·wᵀ + bias): x (..., In), w (Out, In) → (..., Out).
func (f fusedOps[T]) gelu(x, w, bias *Tensor[T]) *Tensor[T] {
	if f.linearGELU {
		return f.tp.linearGELU(x, w, bias)
	}
	return f.tp.GELU(f.tp.Linear(x, w, bias))
}

// residual returns x + (a·wᵀ + bias): x (..., Out), a (..., In), w (Out, In).
func (f fusedOps[T]) residual(x, a, w, bias *Tensor[T]) *Tensor[T] {
	if f.linearAdd {
		return f.tp.linearAdd(x, a, w, bias)
	}
	return f.tp.Add(x, f.tp.Linear(a, w, bias))
}

// linearGELU returns GELU(x·wᵀ + bias), the fc1 and activation of the ViT
// MLP as one op: x (..., In), w (Out, In), bias (Out) → (..., Out). Its
// values and gradients have the bits of tp.GELU(tp.Linear(x, w, bias)),
// but the pre-activation lives in scratch and carries no gradient: the
// backward overwrites it with g = GELU'·dy (no buffer to zero, nothing to
// accumulate into) and sums the bias gradient as it forms g.
func (tp *Tape[T]) linearGELU(x, w, bias *Tensor[T]) *Tensor[T] {
	if bias == nil || len(x.Shape) < 1 || len(w.Shape) != 2 || x.Dim(-1) != w.Shape[1] ||
		len(bias.Shape) != 1 || bias.Shape[0] != w.Shape[0] {
		panic(fmt.Sprintf("loope: linearGELU: shape mismatch x %v, w %v, bias %v", x.Shape, w.Shape, shapeOrNil(bias)))
	}
	nOut, nIn := w.Shape[0], w.Shape[1]
	m := numel("linearGELU", x.Shape[:len(x.Shape)-1])
	var buf [8]int
	shape := append(append(buf[:0], x.Shape[:len(x.Shape)-1]...), nOut)
	out := tp.outNoZero(shape, x, w, bias) // the activation writes every element
	pre := tp.scratchNoZero(m * nOut)      // x·wᵀ + bias: the bias fill writes every element
	biasFill(pre, bias.Data, m, nOut)
	gemm(false, true, m, nOut, nIn, x.Data, max(nIn, 1), w.Data, max(nIn, 1), pre, max(nOut, 1), true)
	var der []T
	if out.Grad != nil {
		der = tp.scratchNoZero(m * nOut) // GELU'(pre), written in full below
	}
	unaryRun(actGELU, out.Data, der, pre)
	if out.Grad != nil {
		nd := tp.record(linearGELUBackward[T]{}, out, x, w, bias)
		*attrsOf[linearAttrs](nd) = linearAttrs{m: m, nOut: nOut, nIn: nIn}
		nd.saved = append(nd.saved, pre, der, tp.scratchNoZero(rowChunks(m, nOut)*nOut))
	}
	return out
}

// linearGELUBackward: g = GELU'(pre)⊙dy (into pre's storage), then as
// Linear: dx += g·w, dw += gᵀ·x, dbias += Σ_rows g, the last summed per
// fixed row chunk (rowChunks) while g is formed, then in chunk order.
type linearGELUBackward[T Float] struct{}

func (linearGELUBackward[T]) backward(nd *node[T]) {
	x, w, bias, y := nd.in[0], nd.in[1], nd.in[2], nd.out
	at := attrsOf[linearAttrs](nd)
	m, nOut, nIn := at.m, at.nOut, at.nIn
	g, der, part := nd.saved[0], nd.saved[1], nd.saved[2]
	if m == 0 || nOut == 0 {
		return
	}
	if bias.Grad == nil {
		part = nil
	}
	job := geluLinearGradJob[T]{g: g, der: der, dy: y.Grad, part: part, m: m, n: nOut, chunks: rowChunks(m, nOut)}
	runRowChunks[T](&geluLinearGradJobs, job, bias.Grad, part, m, nOut)
	linearInputGrads(x, w, g, m, nOut, nIn)
}

// geluLinearGradJob forms g = der⊙dy on row chunks [lo, hi) of the
// (m, n) rows and, if part is set, sets each chunk's row of part to the
// chunk's column sums of g (a pooled job: no closure).
type geluLinearGradJob[T Float] struct {
	g, der, dy, part []T
	m, n, chunks     int
}

var geluLinearGradJobs [2]sync.Pool // [0] float32, [1] float64

func (j *geluLinearGradJob[T]) run(lo, hi int) {
	n := j.n
	for k := lo; k < hi; k++ {
		a, b := k*j.m/j.chunks*n, (k+1)*j.m/j.chunks*n
		g, der, dy := j.g[a:b], j.der[a:b], j.dy[a:b]
		for i, v := range dy {
			g[i] = der[i] * v
		}
		if j.part != nil && b > a {
			sumRows(j.part[k*n:(k+1)*n], g, n)
		}
	}
}

// linearAdd returns x + (a·wᵀ + bias), a residual connection around a
// Linear: x (..., Out), a (..., In), w (Out, In), bias (Out) → (..., Out).
// Its values and gradients have the bits of tp.Add(x, tp.Linear(a, w,
// bias)), but the Linear's result carries no gradient of its own: the Add
// records only x's gradient, and a second node runs linearBackward
// straight on the sum's gradient, which is the Linear's. That saves
// zeroing one gradient buffer and copying the sum's gradient into it.
// When x has no gradient (so the sum would have none from x), it is the
// plain Add of a Linear.
func (tp *Tape[T]) linearAdd(x, a, w, bias *Tensor[T]) *Tensor[T] {
	if bias == nil || x.Grad == nil || tp.NoGrad {
		return tp.Add(x, tp.Linear(a, w, bias))
	}
	ok := len(a.Shape) >= 1 && len(w.Shape) == 2 && a.Dim(-1) == w.Shape[1] && len(bias.Shape) == 1 &&
		bias.Shape[0] == w.Shape[0] && len(x.Shape) == len(a.Shape) && x.Dim(-1) == w.Shape[0]
	for k := 0; ok && k < len(x.Shape)-1; k++ {
		ok = x.Shape[k] == a.Shape[k]
	}
	if !ok {
		panic(fmt.Sprintf("loope: linearAdd: shape mismatch x %v, a %v, w %v, bias %v", x.Shape, a.Shape, w.Shape, bias.Shape))
	}
	nOut, nIn := w.Shape[0], w.Shape[1]
	m := numel("linearAdd", a.Shape[:len(a.Shape)-1])
	lin := tp.newTensorNoZero(false, x.Shape) // a·wᵀ + bias, no gradient; the bias fill writes every element
	biasFill(lin.Data, bias.Data, m, nOut)
	gemm(false, true, m, nOut, nIn, a.Data, max(nIn, 1), w.Data, max(nIn, 1), lin.Data, max(nOut, 1), true)
	out := tp.binary(opAdd, x, lin) // records x's gradient (the sum has one: x has)
	if tp.needsGrad(a, w, bias) {
		nd := tp.record(linearBackward[T]{}, out, a, w, bias) // d(a·wᵀ + bias) = d(out)
		*attrsOf[linearAttrs](nd) = linearAttrs{m: m, nOut: nOut, nIn: nIn}
		if bias.Grad != nil {
			nd.saved = append(nd.saved, tp.scratch(rowChunks(m, nOut)*nOut))
		}
	}
	return out
}

// attentionQKV is MergeHeads(Attention(QKVHeads(qkv, heads), bias, scale))
// as one op: the attention of the fused projection qkv (B, N, 3·D) with
// H = heads heads of Dh = D/H values, shape (B, N, D). bias is as for
// Attention. The products read q, k and v in place from the rows of qkv
// (row stride 3·D, head hh of part p at column p·D + hh·Dh) and write the
// heads straight into the merged rows (row stride D), so the four head
// copies of the composition and their backward copies disappear. Same
// kernels in the same order: the value is the composition's bit for bit,
// and so are the gradients when qkv.Grad holds zeros before the backward
// (the composition adds into zeroed head gradients first).
func (tp *Tape[T]) attentionQKV(qkv, bias *Tensor[T], heads int, scale float64) *Tensor[T] {
	if len(qkv.Shape) != 3 || heads <= 0 || qkv.Shape[2]%(3*heads) != 0 {
		panic(fmt.Sprintf("loope: attentionQKV: qkv %v must be (B, N, 3·D) with D divisible by heads %d", qkv.Shape, heads))
	}
	b, n, d, h := qkv.Shape[0], qkv.Shape[1], qkv.Shape[2]/3, heads
	dh := d / h
	biasMode, ok := attentionBiasMode(bias, b, h, n)
	if !ok {
		panic(fmt.Sprintf("loope: attentionQKV: bias %v must be (H, N, N) or (B, H, N, N) for qkv %v with %d heads", bias.Shape, qkv.Shape, heads))
	}
	shape := [3]int{b, n, d}
	out := tp.outNoZero(shape[:], qkv, bias) // P·V writes every element
	q, k, v := qkvParts(qkv.Data, d)
	nw, saved := tp.attentionRun(out, bias, q, k, v, b, h, n, dh, biasMode, scale, true)
	if out.Grad != nil {
		nd := tp.record(attentionQKVBackward[T]{}, out, qkv, bias)
		*attrsOf[attentionAttrs](nd) = attentionAttrs{b: b, h: h, n: n, dh: dh, nw: nw, biasMode: biasMode, scale: scale}
		nd.saved = append(nd.saved, saved[:]...)
	}
	return out
}

// attentionQKVBackward is attentionBackward with dQ, dK and dV added into
// the q, k and v columns of dqkv and dO read from the merged gradient.
type attentionQKVBackward[T Float] struct{}

func (attentionQKVBackward[T]) backward(nd *node[T]) {
	qkv, bias, o := nd.in[0], nd.in[1], nd.out
	at := attrsOf[attentionAttrs](nd)
	b, h, n, dh, nw, biasMode := at.b, at.h, at.n, at.dh, at.nw, at.biasMode
	p, slots, dsAll := nd.saved[0], nd.saved[1], nd.saved[2]
	d := h * dh
	biasGrad := bias != nil && bias.Grad != nil
	q, k, v := qkvParts(qkv.Data, d)
	job := attentionJob[T]{kn: attentionKernel[T](n, dh), backward: true, p: p, slots: slots, q: q, k: k, v: v, dsAll: dsAll,
		dout: o.Grad, biasGrad: biasGrad, needDS: qkv.Grad != nil || biasGrad,
		h: h, n: n, dh: dh, nw: nw, items: b * h, biasMode: biasMode, scale: T(at.scale)}
	if qkv.Grad != nil {
		job.dq, job.dk, job.dv = qkvParts(qkv.Grad, d)
	}
	job.tokenMajor()
	attentionBackwardAll(job, bias, b)
}

// qkvParts returns the q, k and v parts of a (B, N, 3·D) buffer: x from
// column 0, D and 2·D of its first row (row stride 3·D).
func qkvParts[T Float](x []T, d int) (q, k, v []T) {
	return x, x[min(d, len(x)):], x[min(2*d, len(x)):]
}
