// This file holds the attention ops: fused scaled-dot-product Attention
// (with an optional, possibly learnable, additive logit bias for
// relative-position PEs, docs/pe-zoo.md §12–§13) and the head split and
// merge copies, each forward beside its backward. attentionQKV, the same
// attention on the fused qkv rows, is in ops_fused.go; Rotate, RoPE's
// rotation of q or k (docs/pe-zoo.md §14), in ops_rotate.go.
//
// Both split work over (batch, head) items or over parameter elements in
// fixed ranges, and every output element is computed by one goroutine in a
// fixed order, so results are bit-identical for any thread count.
//
// Attention runs six small products per item (S = q·kᵀ, out = P·V and, in
// the backward, dV, dP, dQ, dK). For float32 with Dh % 16 == 0 and an
// in-place kernel (attentionKernelF32), they skip packing the N x N
// matrices P and dS: attentionGemm reads them in place (transposed for dV
// and dK), reads V, K, Q and dO in place as B, and packs only kᵀ and Vᵀ
// (N x Dh) for S and dP. Other types and head sizes run gemmSerial.

package loope

import (
	"fmt"
	"math"
	"sync"
)

// Attention returns softmax(scale·q·kᵀ + bias)·v per batch item and head
// for q, k, v (B, H, N, Dh): shape (B, H, N, Dh). bias is nil, (H, N, N)
// shared over the batch, or (B, H, N, N); it may carry a gradient (learnable
// relative-position tables). As in timm (docs/pe-zoo.md §1) q is scaled
// before the product: S = (q·scale)·kᵀ + bias. The softmax matrix P
// (B, H, N, N) is kept for the backward.
func (tp *Tape[T]) Attention(q, k, v, bias *Tensor[T], scale float64) *Tensor[T] {
	if k == nil || v == nil || len(q.Shape) != 4 || !sameShape(q.Shape, k.Shape) || !sameShape(q.Shape, v.Shape) {
		panic(fmt.Sprintf("loope: Attention: shape mismatch q %v, k %v, v %v", q.Shape, shapeOrNil(k), shapeOrNil(v)))
	}
	b, h, n, dh := q.Shape[0], q.Shape[1], q.Shape[2], q.Shape[3]
	biasMode, ok := attentionBiasMode(bias, b, h, n)
	if !ok {
		panic(fmt.Sprintf("loope: Attention: bias %v must be (H, N, N) or (B, H, N, N) for q %v", bias.Shape, q.Shape))
	}
	out := tp.outNoZero(q.Shape, q, k, v, bias) // P·V writes every element
	nw, saved := tp.attentionRun(out, bias, q.Data, k.Data, v.Data, b, h, n, dh, biasMode, scale, false)
	if out.Grad != nil {
		nd := tp.record(attentionBackward[T]{}, out, q, k, v, bias)
		*attrsOf[attentionAttrs](nd) = attentionAttrs{b: b, h: h, n: n, dh: dh, nw: nw, biasMode: biasMode, scale: scale}
		nd.saved = append(nd.saved, saved[:]...)
	}
	return out
}

// attentionBiasMode returns how an attention bias applies: 0 none (nil),
// 1 shared over the batch (H, N, N), 2 per item (B, H, N, N); ok is false
// for any other shape.
func attentionBiasMode[T Float](bias *Tensor[T], b, h, n int) (mode int, ok bool) {
	switch {
	case bias == nil:
		return 0, true
	case sameShape(bias.Shape, []int{h, n, n}):
		return 1, true
	case sameShape(bias.Shape, []int{b, h, n, n}):
		return 2, true
	}
	return 0, false
}

// attentionRun computes the forward attention of every (batch, head) item
// into out, reading q, k, v in the head-major (B, H, N, Dh) layout or, with
// tokenMajor, from the rows of a (B, N, 3·D) qkv buffer (writing merged
// (B, N, D) rows). It takes the scratch the forward needs and, if out
// carries a gradient, what the backward needs: it returns the number of
// slots nw and P, the dS slots and dsAll (for a shared bias gradient).
func (tp *Tape[T]) attentionRun(out, bias *Tensor[T], q, k, v []T, b, h, n, dh, biasMode int, scale float64, tokenMajor bool) (int, [3][]T) {
	items, nn := b*h, n*n
	// Scratch slots, one per fixed chunk of items; parallelRun hands the
	// chunks out dynamically, and an item's result never depends on its slot.
	// Every buffer below is written in full before it is read.
	nw := max(1, min(chunksPerThread*Threads(), items))
	qs := tp.scratchNoZero(nw * n * dh) // q·scale, per slot
	var p, dsAll []T
	if out.Grad != nil {
		p = tp.scratchNoZero(items * nn)
		if biasMode == 1 && bias.Grad != nil {
			dsAll = tp.scratchNoZero(items * nn) // dS of every item, reduced over B after the parallel part
		}
	}
	slots := tp.scratchNoZero(nw * nn) // S per slot without P; dS per slot in the backward
	var bd []T
	if bias != nil {
		bd = bias.Data
	}
	job := attentionJob[T]{kn: attentionKernel[T](n, dh), out: out.Data, p: p, slots: slots, qs: qs, q: q, k: k, v: v, bias: bd,
		h: h, n: n, dh: dh, nw: nw, items: items, biasMode: biasMode, scale: T(scale)}
	if tokenMajor {
		job.tokenMajor()
	} else {
		job.headMajor()
	}
	runPooled[T](&attentionJobs, job, nw, 1, false)
	return nw, [3][]T{p, slots, dsAll}
}

// attentionKernelF32 is the kernel of the float32 fast path (see the file
// comment), or nil when the build or CPU has no in-place kernel; tests swap
// it for the plain-Go twin and for nil (the packed path).
var attentionKernelF32 = func() *gemmKernel[float32] {
	if k := kernelFor[float32](); k.rowFn != nil {
		return k
	}
	return nil
}()

// attentionKernel returns the fast-path kernel for T and n tokens of head
// size dh, or nil for the packed gemmSerial path.
func attentionKernel[T Float](n, dh int) *gemmKernel[T] {
	if n == 0 || dh == 0 || dh%16 != 0 {
		return nil
	}
	k, _ := any(attentionKernelF32).(*gemmKernel[T]) // nil unless T is float32
	return k
}

// attentionGemm is gemmSerial(transA, transB, ...) for one item's product.
// With kn (the fast path; then n % kn.nr == 0 unless transB) it reads A and,
// when !transB, B in place (gemmDirect); a transposed B (n x k, tiny: kᵀ or
// Vᵀ) is packed into buf.b.
func attentionGemm[T Float](kn *gemmKernel[T], buf *gemmBuf[T], transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int, acc bool) {
	if kn == nil || k == 0 {
		gemmSerial(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
		return
	}
	if m == 0 || n == 0 {
		return
	}
	bps := kn.nr // in place: panel q starts at column q*nr of B
	if transB {
		pb := growBuf(&buf.b, roundUp(n, kn.nr)*k)
		packPanels(pb, b, n, k, kn.nr, ldb, 1)
		b, bps, ldb = pb, kn.nr*k, kn.nr
	}
	gemmDirect(kn, buf, transA, m, n, k, a, lda, b, bps, ldb, c, ldc, acc)
}

// attentionForward computes one (batch, head) item: qs = q·scale,
// p = softmax(qs·kᵀ + bias) row by row (bias may be nil), out = p·v.
// q, k, v (n, dh) with row stride ldIn; out (n, dh) with row stride ldOut;
// p (n, n); qs is scratch (n, dh). kn and buf are attentionGemm's (kn nil:
// packed path).
func attentionForward[T Float](kn *gemmKernel[T], buf *gemmBuf[T], out, p, qs, q, k, v, bias []T, n, dh, ldIn, ldOut int, scale T) {
	for t := range n {
		qr, sr := q[t*ldIn:t*ldIn+dh], qs[t*dh:(t+1)*dh]
		for i, x := range qr {
			sr[i] = x * scale
		}
	}
	ld := max(dh, 1)
	attentionGemm(kn, buf, false, true, n, n, dh, qs, ld, k, ldIn, p, max(n, 1), false)
	for i, bv := range bias {
		p[i] += bv
	}
	for i := range n {
		softmaxRow(p[i*n : (i+1)*n])
	}
	attentionGemm(kn, buf, false, false, n, dh, n, p, max(n, 1), v, ldIn, out, ldOut, false)
}

// softmaxRow replaces r by softmax(r), shifting by the row maximum. float32
// rows run the fast kernel of fastmath.go; float64 rows use math.Exp with
// a float64 sum.
func softmaxRow[T Float](r []T) {
	if r32, ok := any(r).([]float32); ok {
		softmaxRow32(r32)
		return
	}
	softmaxRowMath(r)
}

// softmaxRowMath is softmaxRow with math.Exp and a float64 sum for any T:
// the float64 path, and for float32 the loop the fast kernel replaced.
func softmaxRowMath[T Float](r []T) {
	if len(r) == 0 {
		return
	}
	mx := r[0]
	for _, v := range r[1:] {
		mx = max(mx, v)
	}
	var s float64
	for j, v := range r {
		e := T(math.Exp(float64(v - mx)))
		r[j] = e
		s += float64(e)
	}
	inv := T(1 / s)
	for j := range r {
		r[j] *= inv
	}
}

// attentionBackward, per item with P = softmax(S), S = (q·scale)·kᵀ + bias:
// dV += Pᵀ·dO; dP = dO·Vᵀ; dS = P⊙(dP − rowsum(dP⊙P)); dbias += dS (summed
// over B for a shared bias); dQ += scale·dS·K; dK += scale·dSᵀ·Q.
type attentionBackward[T Float] struct{}

// attentionAttrs are the node attributes of Attention and attentionQKV:
// the sizes, the scratch slot count nw of the forward, the bias mode of
// attentionBiasMode and the score scale.
type attentionAttrs struct {
	b, h, n, dh, nw, biasMode int
	scale                     float64
}

func (attentionBackward[T]) backward(nd *node[T]) {
	q, k, v, bias, o := nd.in[0], nd.in[1], nd.in[2], nd.in[3], nd.out
	at := attrsOf[attentionAttrs](nd)
	b, h, n, dh, nw, biasMode, scale := at.b, at.h, at.n, at.dh, at.nw, at.biasMode, T(at.scale)
	p, slots, dsAll := nd.saved[0], nd.saved[1], nd.saved[2]
	items := b * h
	biasGrad := bias != nil && bias.Grad != nil
	needDS := q.Grad != nil || k.Grad != nil || biasGrad
	job := attentionJob[T]{kn: attentionKernel[T](n, dh), backward: true, p: p, slots: slots, q: q.Data, k: k.Data, v: v.Data, dsAll: dsAll,
		dout: o.Grad, dq: q.Grad, dk: k.Grad, dv: v.Grad, biasGrad: biasGrad, needDS: needDS,
		h: h, n: n, dh: dh, nw: nw, items: items, biasMode: biasMode, scale: scale}
	job.headMajor()
	attentionBackwardAll(job, bias, b)
}

// attentionBackwardAll runs the backward job over its nw work slots and,
// for a shared (H, N, N) bias, sums the per-item dS over the batch of b
// into bias.Grad.
func attentionBackwardAll[T Float](job attentionJob[T], bias *Tensor[T], b int) {
	if job.biasGrad {
		job.dbias = bias.Grad
	}
	runPooled[T](&attentionJobs, job, job.nw, 1, false)
	if job.biasGrad && job.biasMode == 1 {
		reduceBiasGrad(bias.Grad, job.dsAll, b, job.h, job.n*job.n)
	}
}

// reduceBiasGrad adds Σ_b dsAll[b, h, :, :] to the shared bias gradient dbias
// (H, N, N), summing over the batch in order b = 0, 1, ..., split over bias
// elements.
func reduceBiasGrad[T Float](dbias, dsAll []T, b, h, nn int) {
	parallelFor(h*nn, 4096, func(lo, hi int) {
		for e := lo; e < hi; e++ {
			hh, j := e/nn, e%nn
			var s T
			for bi := range b {
				s += dsAll[(bi*h+hh)*nn+j]
			}
			dbias[e] += s
		}
	})
}

// attentionJob runs the forward (or, with backward set, the backward) of
// Attention over the fixed item chunks [wlo, whi) of its nw slots (a
// pooled job: no closure).
//
// Item it = bi·H + hh of q, k, v, dq, dk, dv starts at offset
// bi·bsIn + hh·hsIn, with row stride ldIn; of out and dout at
// bi·bsOut + hh·hsOut, with row stride ldOut. headMajor sets these for
// (B, H, N, Dh) tensors (Attention); attentionQKV points them into the
// token-major qkv (B, N, 3·D) and the merged output (B, N, D).
type attentionJob[T Float] struct {
	kn                               *gemmKernel[T] // fast path, or nil
	backward                         bool
	out, p, slots, qs, q, k, v, bias []T
	dsAll, dout, dq, dk, dv, dbias   []T
	biasGrad, needDS                 bool
	h, n, dh, nw, items, biasMode    int
	bsIn, hsIn, ldIn                 int
	bsOut, hsOut, ldOut              int
	scale                            T
}

// headMajor sets the item layout of (B, H, N, Dh) operands and results.
func (j *attentionJob[T]) headMajor() {
	j.hsIn, j.ldIn = j.n*j.dh, max(j.dh, 1)
	j.bsIn = j.h * j.hsIn
	j.bsOut, j.hsOut, j.ldOut = j.bsIn, j.hsIn, j.ldIn
}

// tokenMajor sets the item layout of attentionQKV: inputs in the rows of
// qkv (B, N, 3·D), outputs in the rows of (B, N, D).
func (j *attentionJob[T]) tokenMajor() {
	d := j.h * j.dh
	j.hsIn, j.ldIn, j.bsIn = j.dh, max(3*d, 1), j.n*3*d
	j.hsOut, j.ldOut, j.bsOut = j.dh, max(d, 1), j.n*d
}

// inOff and outOff are the offsets of item it in the inputs and the output.
func (j *attentionJob[T]) inOff(it int) int  { return it/j.h*j.bsIn + it%j.h*j.hsIn }
func (j *attentionJob[T]) outOff(it int) int { return it/j.h*j.bsOut + it%j.h*j.hsOut }

var attentionJobs [2]sync.Pool // [0] float32, [1] float64

func (j *attentionJob[T]) run(wlo, whi int) {
	if j.backward {
		j.runBackward(wlo, whi)
		return
	}
	h, n, dh, nw, items, nn := j.h, j.n, j.dh, j.nw, j.items, j.n*j.n
	buf := getGemmBuf[T]()
	defer putGemmBuf(buf)
	for w := wlo; w < whi; w++ {
		qw := j.qs[w*n*dh : (w+1)*n*dh]
		for it := w * items / nw; it < (w+1)*items/nw; it++ {
			s := j.slots[w*nn : (w+1)*nn]
			if j.p != nil {
				s = j.p[it*nn : (it+1)*nn]
			}
			var bi []T
			switch j.biasMode {
			case 1:
				bi = j.bias[(it%h)*nn : (it%h+1)*nn]
			case 2:
				bi = j.bias[it*nn : (it+1)*nn]
			}
			off, oo := j.inOff(it), j.outOff(it)
			attentionForward(j.kn, buf, j.out[oo:], s, qw, j.q[off:], j.k[off:], j.v[off:], bi, n, dh, j.ldIn, j.ldOut, j.scale)
		}
	}
}

func (j *attentionJob[T]) runBackward(wlo, whi int) {
	n, dh, nw, items, nn, ldIn, ldOut := j.n, j.dh, j.nw, j.items, j.n*j.n, j.ldIn, j.ldOut
	scale, biasGrad, biasMode, kn := j.scale, j.biasGrad, j.biasMode, j.kn
	buf := getGemmBuf[T]()
	defer putGemmBuf(buf)
	for w := wlo; w < whi; w++ {
		ds := j.slots[w*nn : (w+1)*nn]
		for it := w * items / nw; it < (w+1)*items/nw; it++ {
			off := j.inOff(it)
			pi, do := j.p[it*nn:(it+1)*nn], j.dout[j.outOff(it):]
			needDQK := j.dq != nil || j.dk != nil
			if j.needDS {
				attentionGemm(kn, buf, false, true, n, n, dh, do, ldOut, j.v[off:], ldIn, ds, max(n, 1), false)
				// Without a bias gradient, dS·scale is all that is needed:
				// fold the scaling in (the same two roundings as a separate pass).
				fold := needDQK && !biasGrad
				s := T(1)
				if fold {
					s = scale
				}
				for i := range n {
					softmaxBackRow(pi[i*n:(i+1)*n], ds[i*n:(i+1)*n], s)
				}
				if biasGrad && biasMode == 2 {
					for c, g := range ds {
						j.dbias[it*nn+c] += g
					}
				} else if biasGrad {
					copy(j.dsAll[it*nn:(it+1)*nn], ds)
				}
				if needDQK && !fold {
					for c := range ds {
						ds[c] *= scale
					}
				}
			}
			// dV after the pass above, which streams P into the cache in
			// row order (dV reads it by columns).
			if j.dv != nil {
				attentionGemm(kn, buf, true, false, n, dh, n, pi, max(n, 1), do, ldOut, j.dv[off:], ldIn, true)
			}
			if j.dq != nil {
				attentionGemm(kn, buf, false, false, n, dh, n, ds, max(n, 1), j.k[off:], ldIn, j.dq[off:], ldIn, true)
			}
			if j.dk != nil {
				attentionGemm(kn, buf, true, false, n, dh, n, ds, max(n, 1), j.q[off:], ldIn, j.dk[off:], ldIn, true)
			}
		}
	}
}

// softmaxBackRow is the softmax backward of one row p (softmax outputs)
// with d the gradient of p on entry: d[c] = p[c]·(d[c] − Σ_j p[j]·d[j])·s
// (s = 1, or the score scale folded in: the same two roundings as a
// separate pass). float32 runs softmaxBackRow32 (float32 partial sums);
// float64 sums in float64 by dotRow.
func softmaxBackRow[T Float](p, d []T, s T) {
	if p32, ok := any(p).([]float32); ok {
		softmaxBackRow32(p32, any(d).([]float32), float32(s))
		return
	}
	d = d[:len(p)]
	dot := T(dotRow(p, d))
	for c, pv := range p {
		d[c] = pv * (d[c] - dot) * s
	}
}

// dotRow is Σ_c p[c]·d[c] (each product rounded to T) summed in float64 by
// four accumulators over c mod 4, added as (s0 + s1) + (s2 + s3): a fixed
// order, and four independent add chains instead of one (the softmax
// backward pass is bound by the latency of a single chain).
func dotRow[T Float](p, d []T) float64 {
	d = d[:len(p)]
	var s0, s1, s2, s3 float64
	c := 0
	for ; c+4 <= len(p); c += 4 {
		s0 += float64(d[c] * p[c])
		s1 += float64(d[c+1] * p[c+1])
		s2 += float64(d[c+2] * p[c+2])
		s3 += float64(d[c+3] * p[c+3])
	}
	for ; c < len(p); c++ {
		s0 += float64(d[c] * p[c])
	}
	return (s0 + s1) + (s2 + s3)
}

// QKVHeads splits the fused projection qkv (B, N, 3·D) of a timm attention
// into per-head queries, keys and values q, k, v (B, H, N, Dh), with
// H = heads and Dh = D/H: timm's qkv.reshape(B, N, 3, H, Dh).permute(2, 0,
// 3, 1, 4).unbind(0), as three single copies (no permuted intermediate).
func (tp *Tape[T]) QKVHeads(qkv *Tensor[T], heads int) (q, k, v *Tensor[T]) {
	if len(qkv.Shape) != 3 || heads <= 0 || qkv.Shape[2]%(3*heads) != 0 {
		panic(fmt.Sprintf("loope: QKVHeads: qkv %v must be (B, N, 3·D) with D divisible by heads %d", qkv.Shape, heads))
	}
	return tp.toHeads(qkv, 0, heads), tp.toHeads(qkv, 1, heads), tp.toHeads(qkv, 2, heads)
}

// toHeads returns part (0 q, 1 k, 2 v) of qkv (B, N, 3·D) as (B, H, N, Dh).
func (tp *Tape[T]) toHeads(qkv *Tensor[T], part, heads int) *Tensor[T] {
	b, n, w := qkv.Shape[0], qkv.Shape[1], qkv.Shape[2]
	dh := w / 3 / heads
	shape := [4]int{b, heads, n, dh}
	out := tp.out(shape[:], qkv)
	headsMove(qkv.Data, w, part*heads*dh, out.Data, b, n, heads, dh, true, false)
	if out.Grad != nil {
		nd := tp.record(toHeadsBackward[T]{}, out, qkv)
		*attrsOf[toHeadsAttrs](nd) = toHeadsAttrs{part: part, heads: heads}
	}
	return out
}

// toHeadsBackward: dqkv[b, t, part·D + h·Dh + j] += dout[b, h, t, j].
type toHeadsBackward[T Float] struct{}

// toHeadsAttrs are toHeads's node attributes.
type toHeadsAttrs struct{ part, heads int }

func (toHeadsBackward[T]) backward(nd *node[T]) {
	qkv, out := nd.in[0], nd.out
	if qkv.Grad == nil {
		return
	}
	at := attrsOf[toHeadsAttrs](nd)
	part, heads := at.part, at.heads
	b, n, w := qkv.Shape[0], qkv.Shape[1], qkv.Shape[2]
	dh := w / 3 / heads
	headsMove(qkv.Grad, w, part*heads*dh, out.Grad, b, n, heads, dh, false, true)
}

// MergeHeads joins the heads of a (B, H, N, Dh) into tokens (B, N, H·Dh):
// timm's x.transpose(1, 2).reshape(B, N, D) after attention, as one copy.
func (tp *Tape[T]) MergeHeads(a *Tensor[T]) *Tensor[T] {
	if len(a.Shape) != 4 {
		panic(fmt.Sprintf("loope: MergeHeads: a %v must be (B, H, N, Dh)", a.Shape))
	}
	b, h, n, dh := a.Shape[0], a.Shape[1], a.Shape[2], a.Shape[3]
	shape := [3]int{b, n, h * dh}
	out := tp.out(shape[:], a)
	headsMove(out.Data, h*dh, 0, a.Data, b, n, h, dh, false, false)
	if out.Grad != nil {
		tp.record(mergeHeadsBackward[T]{}, out, a)
	}
	return out
}

// mergeHeadsBackward: da[b, h, t, j] += dout[b, t, h·Dh + j].
type mergeHeadsBackward[T Float] struct{}

func (mergeHeadsBackward[T]) backward(nd *node[T]) {
	a, out := nd.in[0], nd.out
	if a.Grad == nil {
		return
	}
	b, h, n, dh := a.Shape[0], a.Shape[1], a.Shape[2], a.Shape[3]
	headsMove(out.Grad, h*dh, 0, a.Grad, b, n, h, dh, true, true)
}

// headsMove moves values between a token-major tok (B, N, w), whose columns
// [off, off + H·Dh) hold H heads of Dh values, and a head-major hd
// (B, H, N, Dh). toHeads copies tok into hd, otherwise hd into tok; with
// acc the destination is added to instead of overwritten. Each destination
// element is written once, so the fixed split over token rows (B·N) gives
// the same result for any thread count.
func headsMove[T Float](tok []T, w, off int, hd []T, b, n, h, dh int, toHeads, acc bool) {
	job := headsJob[T]{tok: tok, hd: hd, w: w, off: off, n: n, h: h, dh: dh, toHeads: toHeads, acc: acc}
	rows := b * n
	runPooled[T](&headsJobPools, job, rows, max(1, parGrain/max(h*dh, 1)), serial(rows*h*dh))
}

// headsJob is one headsMove, pooled so that splitting it allocates nothing.
type headsJob[T Float] struct {
	tok, hd          []T
	w, off, n, h, dh int
	toHeads, acc     bool
}

// run moves token rows [lo, hi) of the B·N.
func (j *headsJob[T]) run(lo, hi int) {
	n, h, dh := j.n, j.h, j.dh
	for r := lo; r < hi; r++ {
		bi, t := r/n, r%n
		tr := j.tok[r*j.w+j.off : r*j.w+j.off+h*dh]
		for hh := range h {
			src, dst := tr[hh*dh:(hh+1)*dh], j.hd[((bi*h+hh)*n+t)*dh:((bi*h+hh)*n+t+1)*dh]
			if !j.toHeads {
				src, dst = dst, src
			}
			if j.acc {
				for i, v := range src {
					dst[i] += v
				}
			} else {
				copy(dst, src)
			}
		}
	}
}

var headsJobPools [2]sync.Pool // [0] float32, [1] float64
