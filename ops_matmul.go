// This file holds the matrix-product ops: MatMul, Linear and BatchMatMul,
// each forward beside its backward. All of them run on gemm.

package loope

import (
	"fmt"
	"sync"
)

// MatMul returns a·b for a (..., M, K) and b (K, N): shape (..., M, N).
// The leading axes of a are flattened into M.
func (tp *Tape[T]) MatMul(a, b *Tensor[T]) *Tensor[T] {
	if len(a.Shape) < 2 || len(b.Shape) != 2 || a.Dim(-1) != b.Shape[0] {
		panic(fmt.Sprintf("loope: MatMul: shape mismatch %v x %v", a.Shape, b.Shape))
	}
	k, n := b.Shape[0], b.Shape[1]
	m := numel("MatMul", a.Shape[:len(a.Shape)-1])
	shape := append(append(make([]int, 0, len(a.Shape)), a.Shape[:len(a.Shape)-1]...), n)
	out := tp.out(shape, a, b)
	gemm(false, false, m, n, k, a.Data, max(k, 1), b.Data, max(n, 1), out.Data, max(n, 1), false)
	if out.Grad != nil {
		nd := tp.record(matMulBackward[T]{}, out, a, b)
		*attrsOf[matMulAttrs](nd) = matMulAttrs{m: m, n: n, k: k}
	}
	return out
}

// matMulBackward: dA += dC·Bᵀ, dB += Aᵀ·dC.
type matMulBackward[T Float] struct{}

// matMulAttrs are MatMul's node attributes: C (m, n) = A (m, k)·B (k, n).
type matMulAttrs struct{ m, n, k int }

func (matMulBackward[T]) backward(nd *node[T]) {
	a, b, c := nd.in[0], nd.in[1], nd.out
	at := attrsOf[matMulAttrs](nd)
	m, n, k := at.m, at.n, at.k
	if a.Grad != nil {
		gemm(false, true, m, k, n, c.Grad, max(n, 1), b.Data, max(n, 1), a.Grad, max(k, 1), true)
	}
	if b.Grad != nil {
		gemm(true, false, k, n, m, a.Data, max(k, 1), c.Grad, max(n, 1), b.Grad, max(n, 1), true)
	}
}

// Linear returns x·wᵀ + bias for x (..., In), w (Out, In) as PyTorch's
// nn.Linear stores it, and bias (Out) or nil: shape (..., Out).
func (tp *Tape[T]) Linear(x, w, bias *Tensor[T]) *Tensor[T] {
	if len(x.Shape) < 1 || len(w.Shape) != 2 || x.Dim(-1) != w.Shape[1] ||
		(bias != nil && (len(bias.Shape) != 1 || bias.Shape[0] != w.Shape[0])) {
		bs := []int(nil)
		if bias != nil {
			bs = bias.Shape
		}
		panic(fmt.Sprintf("loope: Linear: shape mismatch x %v, w %v, bias %v", x.Shape, w.Shape, bs))
	}
	nOut, nIn := w.Shape[0], w.Shape[1]
	m := numel("Linear", x.Shape[:len(x.Shape)-1])
	shape := append(append(make([]int, 0, len(x.Shape)), x.Shape[:len(x.Shape)-1]...), nOut)
	var out *Tensor[T]
	if bias != nil {
		out = tp.outNoZero(shape, x, w, bias) // the bias fill writes every element
		biasFill(out.Data, bias.Data, m, nOut)
	} else {
		out = tp.out(shape, x, w, bias)
	}
	gemm(false, true, m, nOut, nIn, x.Data, max(nIn, 1), w.Data, max(nIn, 1), out.Data, max(nOut, 1), true)
	if out.Grad != nil {
		nd := tp.record(linearBackward[T]{}, out, x, w, bias)
		*attrsOf[linearAttrs](nd) = linearAttrs{m: m, nOut: nOut, nIn: nIn}
		if bias != nil && bias.Grad != nil {
			nd.saved = append(nd.saved, tp.scratch(rowChunks(m, nOut)*nOut))
		}
	}
	return out
}

// linearBackward: dx += dy·w, dw += dyᵀ·x, dbias += Σ_rows dy.
type linearBackward[T Float] struct{}

// linearAttrs are the node attributes of Linear, linearAdd and linearGELU:
// m rows of nIn inputs and nOut outputs.
type linearAttrs struct{ m, nOut, nIn int }

func (linearBackward[T]) backward(nd *node[T]) {
	x, w, bias, y := nd.in[0], nd.in[1], nd.in[2], nd.out
	at := attrsOf[linearAttrs](nd)
	m, nOut, nIn := at.m, at.nOut, at.nIn
	linearInputGrads(x, w, y.Grad, m, nOut, nIn)
	if bias != nil && bias.Grad != nil {
		biasGrad(bias.Grad, y.Grad, nd.saved[0], m, nOut)
	}
}

// linearInputGrads adds the gradients of x (m, nIn) and w (nOut, nIn) of
// y = x·wᵀ for dy (m, nOut): dx += dy·w, dw += dyᵀ·x (each only if it has a
// gradient). Linear and the fused linearGELU share it.
func linearInputGrads[T Float](x, w *Tensor[T], dy []T, m, nOut, nIn int) {
	if x.Grad != nil {
		gemm(false, false, m, nIn, nOut, dy, max(nOut, 1), w.Data, max(nIn, 1), x.Grad, max(nIn, 1), true)
	}
	if w.Grad != nil {
		gemm(true, false, nOut, nIn, m, dy, max(nOut, 1), x.Data, max(nIn, 1), w.Grad, max(nIn, 1), true)
	}
}

// biasFill sets every row of y (m, n) to bias (n): the bias term of Linear,
// onto which the GEMM then accumulates x·wᵀ. It splits over rows.
func biasFill[T Float](y, bias []T, m, n int) {
	runPooled[T](&biasJobs, biasJob[T]{y: y, bias: bias, m: m, n: n}, m, max(1, parGrain/max(n, 1)), serial(m*n))
}

// biasGrad adds the column sums of dy (m, n) into dbias (n): the bias
// gradient of Linear. The rows are cut into rowChunks(m, n) fixed chunks;
// each sums its rows into its own row of part (rowChunks(m, n), n, any
// contents), and the partial rows are then added into dbias in chunk
// order. The chunks depend only on m and n, so the result is the same for
// any thread count.
func biasGrad[T Float](dbias, dy, part []T, m, n int) {
	if m == 0 || n == 0 {
		return
	}
	runRowChunks[T](&biasJobs, biasJob[T]{y: dy, bias: part, m: m, n: n, chunks: rowChunks(m, n), grad: true}, dbias, part, m, n)
}

// runRowChunks runs job (pooled in pools) over the rowChunks(m, n) fixed
// row chunks of an (m, n) matrix, split over threads unless the matrix is
// small; then, if dbias is set, it adds the chunks' partial column sums
// part (chunks, n), which the job wrote, into dbias (n) in chunk order.
func runRowChunks[T Float, J any, PJ interface {
	*J
	rangeJob
}](pools *[2]sync.Pool, job J, dbias, part []T, m, n int) {
	c := rowChunks(m, n)
	runPooled[T, J, PJ](pools, job, c, 1, serial(m*n))
	if dbias != nil {
		for k := range c {
			addTo(dbias[:n], part[k*n:(k+1)*n])
		}
	}
}

// rowChunks returns the number of fixed row chunks a column reduction over
// m rows of n values splits into: about one per parGrain elements, at most
// maxChunks and at most m (at least 1).
func rowChunks(m, n int) int {
	return max(1, min(maxChunks, m, (m*n+parGrain-1)/parGrain))
}

// biasJob is biasFill on rows [lo, hi) or, with grad, biasGrad on row
// chunks [lo, hi) (a pooled job: no closure).
type biasJob[T Float] struct {
	y, bias []T // with grad: y = dy, bias = the partial rows
	m, n    int
	chunks  int
	grad    bool
}

var biasJobs [2]sync.Pool // [0] float32, [1] float64

func (j *biasJob[T]) run(lo, hi int) {
	n := j.n
	if !j.grad {
		for i := lo; i < hi; i++ {
			copy(j.y[i*n:(i+1)*n], j.bias)
		}
		return
	}
	for k := lo; k < hi; k++ {
		r0, r1 := k*j.m/j.chunks, (k+1)*j.m/j.chunks
		sumRows(j.bias[k*n:(k+1)*n], j.y[r0*n:r1*n], n)
	}
}

// sumRows sets dst (n) to the sum of the rows of y (rows, n), n ≥ 1, rows ≥ 1,
// adding four rows at a time: dst = Σ_g ((y₀ + y₁) + (y₂ + y₃)) over
// groups g of four in order, then the remaining rows one by one.
func sumRows[T Float](dst, y []T, n int) {
	dst = dst[:n]
	rows := len(y) / n
	copy(dst, y[:n])
	i := 1
	for ; i+4 <= rows; i += 4 {
		y0, y1, y2, y3 := y[i*n:(i+1)*n], y[(i+1)*n:(i+2)*n], y[(i+2)*n:(i+3)*n], y[(i+3)*n:(i+4)*n]
		y0, y1, y2, y3 = y0[:len(dst)], y1[:len(dst)], y2[:len(dst)], y3[:len(dst)]
		for c := range dst {
			dst[c] += (y0[c] + y1[c]) + (y2[c] + y3[c])
		}
	}
	for ; i < rows; i++ {
		addTo(dst, y[i*n:(i+1)*n])
	}
}

// addTo adds src into dst element by element (len(dst) ≤ len(src)).
func addTo[T Float](dst, src []T) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}

// BatchMatMul returns op(a)·op(b) per batch item for a (..., M, K) and
// b (..., K, N) with equal leading axes (op transposes the last two axes
// when transA/transB is set): shape (..., M, N).
func (tp *Tape[T]) BatchMatMul(a, b *Tensor[T], transA, transB bool) *Tensor[T] {
	ra, rb := len(a.Shape), len(b.Shape)
	if ra < 2 || ra != rb || !sameShape(a.Shape[:ra-2], b.Shape[:rb-2]) {
		panic(fmt.Sprintf("loope: BatchMatMul: shape mismatch %v x %v", a.Shape, b.Shape))
	}
	m, k := a.Shape[ra-2], a.Shape[ra-1]
	if transA {
		m, k = k, m
	}
	kb, n := b.Shape[rb-2], b.Shape[rb-1]
	if transB {
		kb, n = n, kb
	}
	if k != kb {
		panic(fmt.Sprintf("loope: BatchMatMul: shape mismatch %v x %v (transA=%v transB=%v)", a.Shape, b.Shape, transA, transB))
	}
	batch := numel("BatchMatMul", a.Shape[:ra-2])
	shape := append(append(make([]int, 0, ra), a.Shape[:ra-2]...), m, n)
	out := tp.out(shape, a, b)
	lda, ldb := a.Shape[ra-1], b.Shape[rb-1]
	gemmBatched(transA, transB, batch, m, n, k, a.Data, m*k, max(lda, 1), b.Data, k*n, max(ldb, 1), out.Data, m*n, max(n, 1), false)
	if out.Grad != nil {
		nd := tp.record(batchMatMulBackward[T]{}, out, a, b)
		*attrsOf[batchMatMulAttrs](nd) = batchMatMulAttrs{batch: batch, m: m, n: n, k: k, transA: transA, transB: transB}
	}
	return out
}

// batchMatMulBackward, per item with C = op(A)·op(B):
// dop(A) = dC·op(B)ᵀ, dop(B) = op(A)ᵀ·dC, transposed back into A's or B's layout.
type batchMatMulBackward[T Float] struct{}

// batchMatMulAttrs are BatchMatMul's node attributes: batch products
// C (m, n) = op(A) (m, k)·op(B) (k, n).
type batchMatMulAttrs struct {
	batch, m, n, k int
	transA, transB bool
}

func (batchMatMulBackward[T]) backward(nd *node[T]) {
	a, b, c := nd.in[0], nd.in[1], nd.out
	at := attrsOf[batchMatMulAttrs](nd)
	batch, m, n, k, transA, transB := at.batch, at.m, at.n, at.k, at.transA, at.transB
	lda, ldb := a.Shape[len(a.Shape)-1], b.Shape[len(b.Shape)-1]
	if a.Grad != nil {
		if transA { // A is (k, m): dA = op(B)·dCᵀ
			gemmBatched(transB, true, batch, k, m, n, b.Data, k*n, max(ldb, 1), c.Grad, m*n, max(n, 1), a.Grad, m*k, max(lda, 1), true)
		} else { // A is (m, k): dA = dC·op(B)ᵀ
			gemmBatched(false, !transB, batch, m, k, n, c.Grad, m*n, max(n, 1), b.Data, k*n, max(ldb, 1), a.Grad, m*k, max(lda, 1), true)
		}
	}
	if b.Grad != nil {
		if transB { // B is (n, k): dB = dCᵀ·op(A)
			gemmBatched(true, transA, batch, n, k, m, c.Grad, m*n, max(n, 1), a.Data, m*k, max(lda, 1), b.Grad, k*n, max(ldb, 1), true)
		} else { // B is (k, n): dB = op(A)ᵀ·dC
			gemmBatched(!transA, false, batch, k, n, m, a.Data, m*k, max(lda, 1), c.Grad, m*n, max(n, 1), b.Grad, k*n, max(ldb, 1), true)
		}
	}
}
