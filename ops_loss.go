// This file holds the losses: softmax cross-entropy with label smoothing
// and binary cross-entropy on logits, each a fused, numerically stable
// forward beside its backward, returning a rank-0 mean.

package loope

import (
	"fmt"
	"math"
)

// CrossEntropy returns the mean over rows of the softmax cross-entropy of
// logits against integer labels, with label smoothing ε as PyTorch's
// F.cross_entropy(label_smoothing=ε):
//
//	loss_r = (1−ε)·(−log p_{r,y_r}) + ε·mean_k(−log p_{r,k}),  p = softmax(logits_r)
//
// log p is computed as x − logsumexp(x) with the row maximum subtracted, in
// float64. logits (B, K), labels (B) in [0, K) → () (rank 0).
func (tp *Tape[T]) CrossEntropy(logits *Tensor[T], labels []int, smoothing float64) *Tensor[T] {
	if len(logits.Shape) != 2 || len(labels) != logits.Shape[0] {
		panic(fmt.Sprintf("loope: CrossEntropy: logits %v with %d labels", logits.Shape, len(labels)))
	}
	b, k := logits.Shape[0], logits.Shape[1]
	for r, y := range labels {
		if y < 0 || y >= k {
			panic(fmt.Sprintf("loope: CrossEntropy: label %d of row %d out of range [0, %d)", y, r, k))
		}
	}
	out := tp.scalarOut(logits)
	var p []T // softmax rows, kept for the backward
	if out.Grad != nil {
		p = tp.scratch(b * k)
	}
	eps := smoothing
	total := 0.0
	for r, y := range labels {
		x := logits.Data[r*k : (r+1)*k]
		m := float64(x[0])
		for _, v := range x[1:] {
			m = max(m, float64(v))
		}
		s, sx := 0.0, 0.0
		for _, v := range x {
			s += math.Exp(float64(v) - m)
			sx += float64(v)
		}
		lse := m + math.Log(s)
		nll := lse - float64(x[y])    // −log p_y
		smooth := lse - sx/float64(k) // mean_k(−log p_k)
		total += (1-eps)*nll + eps*smooth
		if p != nil {
			for j, v := range x {
				p[r*k+j] = T(math.Exp(float64(v) - lse))
			}
		}
	}
	out.Data[0] = T(total / float64(max(b, 1)))
	if out.Grad != nil {
		nd := tp.record(crossEntropyBackward[T]{}, out, logits)
		nd.ints = append(nd.ints, labels...)
		*attrsOf[crossEntropyAttrs](nd) = crossEntropyAttrs{smoothing: eps}
		nd.saved = append(nd.saved, p)
	}
	return out
}

// crossEntropyBackward: dlogits[r, j] += (dy/B)·(p_{r,j} − (1−ε)·[j = y_r] − ε/K).
type crossEntropyBackward[T Float] struct{}

// crossEntropyAttrs are CrossEntropy's node attributes; its ints hold the
// labels.
type crossEntropyAttrs struct{ smoothing float64 }

func (crossEntropyBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	b, k := x.Shape[0], x.Shape[1]
	eps, p := attrsOf[crossEntropyAttrs](nd).smoothing, nd.saved[0]
	g := float64(y.Grad[0]) / float64(b)
	off := T(g * eps / float64(k))
	hit := T(g * (1 - eps))
	gt := T(g)
	for r, lab := range nd.ints {
		dx, pr := x.Grad[r*k:(r+1)*k], p[r*k:(r+1)*k]
		for j, v := range pr {
			dx[j] += gt*v - off
		}
		dx[lab] -= hit
	}
}

// BCEWithLogits returns the mean over all elements of the binary
// cross-entropy of sigmoid(logits) against targets, in the stable form
//
//	ℓ = max(x, 0) − x·t + log(1 + e^(−|x|))
//
// as PyTorch's F.binary_cross_entropy_with_logits. Only logits get a
// gradient; targets are constants. logits (...), targets (same) → () (rank 0).
func (tp *Tape[T]) BCEWithLogits(logits, targets *Tensor[T]) *Tensor[T] {
	if !sameShape(logits.Shape, targets.Shape) {
		panic(fmt.Sprintf("loope: BCEWithLogits: shape mismatch logits %v, targets %v", logits.Shape, targets.Shape))
	}
	out := tp.scalarOut(logits)
	total := 0.0
	for i, v := range logits.Data {
		x, t := float64(v), float64(targets.Data[i])
		total += max(x, 0) - x*t + math.Log1p(math.Exp(-math.Abs(x)))
	}
	out.Data[0] = T(total / float64(max(len(logits.Data), 1)))
	if out.Grad != nil {
		tp.record(bceWithLogitsBackward[T]{}, out, logits, targets)
	}
	return out
}

// bceWithLogitsBackward: dx += (dy/n)·(σ(x) − t).
type bceWithLogitsBackward[T Float] struct{}

func (bceWithLogitsBackward[T]) backward(nd *node[T]) {
	x, t, y := nd.in[0], nd.in[1], nd.out
	if x.Grad == nil {
		return
	}
	g := float64(y.Grad[0]) / float64(len(x.Data))
	for i, v := range x.Data {
		x.Grad[i] += T(g * (sigmoid(float64(v)) - float64(t.Data[i])))
	}
}
