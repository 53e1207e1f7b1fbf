// This file holds the ops CrossViT adds (timm models/crossvit.py):
// ResizeBicubic, the branch resize scale_image, F.interpolate(x, size,
// mode='bicubic', align_corners=False) without antialias; and
// CrossAttention, the attention of CrossAttention whose one query is a
// branch's projected CLS token. Each forward sits beside its backward; the
// plain float64 twin of ResizeBicubic is in ref_crossvit.go.

package loope

import "fmt"

// bicubicTaps returns the sparse form of bicubicWeights(in, out, false):
// for output sample i, the four input indices idx[4i:4i+4] (clamped to
// [0, in), so they may repeat) and their weights w[4i:4i+4].
func bicubicTaps(in, out int) (idx []int, w []float64) {
	dense := bicubicWeights(in, out, false)
	idx, w = make([]int, 0, 4*out), make([]float64, 0, 4*out)
	for i := range out {
		n := 0
		for j := range in {
			if v := dense[i*in+j]; v != 0 {
				idx, w = append(idx, j), append(w, v)
				n++
			}
		}
		for ; n < 4; n++ { // fewer distinct taps after clamping: pad with zero weights
			idx, w = append(idx, 0), append(w, 0)
		}
	}
	return idx, w
}

// ResizeBicubic returns x (B, C, H, W) resized to (B, C, oh, ow) as
// PyTorch's F.interpolate(x, size=(oh, ow), mode='bicubic',
// align_corners=False) (antialias off): Keys' cubic, A = −0.75, taps
// clamped at the border; separable, rows of each plane first, then
// columns. It is linear in x.
func (tp *Tape[T]) ResizeBicubic(x *Tensor[T], oh, ow int) *Tensor[T] {
	if len(x.Shape) != 4 || oh <= 0 || ow <= 0 {
		panic(fmt.Sprintf("loope: ResizeBicubic: x %v to %d×%d", x.Shape, oh, ow))
	}
	b, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	out := tp.outNoZero([]int{b, c, oh, ow}, x)
	hi, hw := bicubicTaps(h, oh)
	wi, ww := bicubicTaps(w, ow)
	tmp := tp.scratchNoZero(h * ow)
	for p := range b * c {
		xp, op := x.Data[p*h*w:(p+1)*h*w], out.Data[p*oh*ow:(p+1)*oh*ow]
		for r := range h { // tmp (H, ow): resize along W
			for j := range ow {
				var s T
				for k := 4 * j; k < 4*j+4; k++ {
					s += T(ww[k]) * xp[r*w+wi[k]]
				}
				tmp[r*ow+j] = s
			}
		}
		for i := range oh { // out (oh, ow): resize along H
			for j := range ow {
				var s T
				for k := 4 * i; k < 4*i+4; k++ {
					s += T(hw[k]) * tmp[hi[k]*ow+j]
				}
				op[i*ow+j] = s
			}
		}
	}
	if out.Grad != nil {
		tp.record(resizeBicubicBackward[T]{}, out, x)
	}
	return out
}

// resizeBicubicBackward: the transpose of the forward, per plane
// dtmp = Rhᵀ·dout, dx += dtmp·Rw, with the same taps.
type resizeBicubicBackward[T Float] struct{}

func (resizeBicubicBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	b, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	oh, ow := y.Shape[2], y.Shape[3]
	hi, hw := bicubicTaps(h, oh)
	wi, ww := bicubicTaps(w, ow)
	dtmp := make([]T, h*ow)
	for p := range b * c {
		dy, dx := y.Grad[p*oh*ow:(p+1)*oh*ow], x.Grad[p*h*w:(p+1)*h*w]
		clear(dtmp)
		for i := range oh {
			for k := 4 * i; k < 4*i+4; k++ {
				cw, row := T(hw[k]), dtmp[hi[k]*ow:(hi[k]+1)*ow]
				for j, g := range dy[i*ow : (i+1)*ow] {
					row[j] += cw * g
				}
			}
		}
		for r := range h {
			for j := range ow {
				g := dtmp[r*ow+j]
				for k := 4 * j; k < 4*j+4; k++ {
					dx[r*w+wi[k]] += T(ww[k]) * g
				}
			}
		}
	}
}

// CrossAttention returns softmax((q·kᵀ)·scale)·v per batch item and head,
// the attention of timm's crossvit CrossAttention (scaled after the
// product, unlike ClassAttention): q (B, H, 1, Dh), the projected CLS
// token's query; k, v (B, H, N, Dh) → (B, H, 1, Dh). It is a composition
// of BatchMatMul, Scale and Softmax, whose backwards it uses.
func (tp *Tape[T]) CrossAttention(q, k, v *Tensor[T], scale float64) *Tensor[T] {
	if len(q.Shape) != 4 || q.Shape[2] != 1 || len(k.Shape) != 4 || !sameShape(k.Shape, v.Shape) ||
		q.Shape[0] != k.Shape[0] || q.Shape[1] != k.Shape[1] || q.Shape[3] != k.Shape[3] {
		panic(fmt.Sprintf("loope: CrossAttention: shape mismatch q %v, k %v, v %v", q.Shape, k.Shape, v.Shape))
	}
	s := tp.Scale(tp.BatchMatMul(q, k, false, true), scale) // (B, H, 1, N)
	return tp.BatchMatMul(tp.Softmax(s), v, false, false)   // (B, H, 1, Dh)
}
