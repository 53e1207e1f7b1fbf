// This file holds the ops CaiT adds (timm models/cait.py): HeadMix, the
// talking-heads mixing of attention maps across heads (TalkingHeadAttn's
// proj_l before and proj_w after the softmax); LayerScale, the residual
// x + γ⊙y of LayerScaleBlock and LayerScaleBlockClassAttn; and
// ClassAttention, the attention of ClassAttn whose one query is the CLS
// token. Each forward sits beside its backward; their plain float64 twins
// are in ref_cait.go.

package loope

import "fmt"

// HeadMix returns the head mixing of timm's TalkingHeadAttn,
// proj(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2): x (B, H, N, M),
// w (H, H), bias (H) → (B, H, N, M) with
// out[b, g, i, j] = Σ_h w[g, h]·x[b, h, i, j] + bias[g].
func (tp *Tape[T]) HeadMix(x, w, bias *Tensor[T]) *Tensor[T] {
	if len(x.Shape) != 4 || len(w.Shape) != 2 || w.Shape[0] != x.Shape[1] || w.Shape[1] != x.Shape[1] ||
		bias == nil || len(bias.Shape) != 1 || bias.Shape[0] != x.Shape[1] {
		panic(fmt.Sprintf("loope: HeadMix: shape mismatch x %v, w %v, bias %v", x.Shape, w.Shape, shapeOrNil(bias)))
	}
	b, h, nm := x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3]
	out := tp.outNoZero(x.Shape, x, w, bias)
	for bi := range b {
		xb, ob := x.Data[bi*h*nm:(bi+1)*h*nm], out.Data[bi*h*nm:(bi+1)*h*nm]
		for g := range h {
			o := ob[g*nm : (g+1)*nm]
			for p := range o {
				o[p] = bias.Data[g]
			}
			for hh := range h {
				c, xr := w.Data[g*h+hh], xb[hh*nm:(hh+1)*nm]
				for p, v := range xr {
					o[p] += c * v
				}
			}
		}
	}
	if out.Grad != nil {
		tp.record(headMixBackward[T]{}, out, x, w, bias)
	}
	return out
}

// headMixBackward, per item b with X_b, Y_b (H, N·M): dX_b += wᵀ·dY_b,
// dw += dY_b·X_bᵀ, dbias[g] += Σ dY_b[g, :].
type headMixBackward[T Float] struct{}

func (headMixBackward[T]) backward(nd *node[T]) {
	x, w, bias, y := nd.in[0], nd.in[1], nd.in[2], nd.out
	b, h, nm := x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3]
	for bi := range b {
		xb, gb := x.Data[bi*h*nm:(bi+1)*h*nm], y.Grad[bi*h*nm:(bi+1)*h*nm]
		for g := range h {
			dy := gb[g*nm : (g+1)*nm]
			if bias.Grad != nil {
				var s T
				for _, v := range dy {
					s += v
				}
				bias.Grad[g] += s
			}
			for hh := range h {
				if w.Grad != nil {
					var s T
					for p, v := range xb[hh*nm : (hh+1)*nm] {
						s += dy[p] * v
					}
					w.Grad[g*h+hh] += s
				}
				if x.Grad != nil {
					c, dx := w.Data[g*h+hh], x.Grad[bi*h*nm+hh*nm:bi*h*nm+(hh+1)*nm]
					for p, v := range dy {
						dx[p] += c * v
					}
				}
			}
		}
	}
}

// LayerScale returns the LayerScale residual x + γ⊙y of timm's CaiT
// blocks, x = x + gamma·f(x): x, y (..., D), gamma (D) → (..., D).
func (tp *Tape[T]) LayerScale(x, y, gamma *Tensor[T]) *Tensor[T] {
	if len(x.Shape) < 1 || !sameShape(x.Shape, y.Shape) || len(gamma.Shape) != 1 || gamma.Shape[0] != x.Shape[len(x.Shape)-1] {
		panic(fmt.Sprintf("loope: LayerScale: shape mismatch x %v, y %v, gamma %v", x.Shape, y.Shape, gamma.Shape))
	}
	d := gamma.Shape[0]
	out := tp.outNoZero(x.Shape, x, y, gamma)
	for i, v := range y.Data {
		out.Data[i] = x.Data[i] + gamma.Data[i%d]*v
	}
	if out.Grad != nil {
		tp.record(layerScaleBackward[T]{}, out, x, y, gamma)
	}
	return out
}

// layerScaleBackward: dx += dout, dy += γ⊙dout, dγ[j] += Σ_rows dout⊙y.
type layerScaleBackward[T Float] struct{}

func (layerScaleBackward[T]) backward(nd *node[T]) {
	x, y, gamma, out := nd.in[0], nd.in[1], nd.in[2], nd.out
	d := gamma.Shape[0]
	for i, g := range out.Grad {
		if x.Grad != nil {
			x.Grad[i] += g
		}
		if y.Grad != nil {
			y.Grad[i] += gamma.Data[i%d] * g
		}
		if gamma.Grad != nil {
			gamma.Grad[i%d] += g * y.Data[i]
		}
	}
}

// ClassAttention returns softmax((q·scale)·kᵀ)·v per batch item and head,
// the attention of timm's ClassAttn: q (B, H, 1, Dh), the CLS token's
// query; k, v (B, H, N, Dh), CLS and patch tokens → (B, H, 1, Dh). It is a
// composition of Scale, BatchMatMul and Softmax, whose backwards it uses.
func (tp *Tape[T]) ClassAttention(q, k, v *Tensor[T], scale float64) *Tensor[T] {
	if len(q.Shape) != 4 || q.Shape[2] != 1 || len(k.Shape) != 4 || !sameShape(k.Shape, v.Shape) ||
		q.Shape[0] != k.Shape[0] || q.Shape[1] != k.Shape[1] || q.Shape[3] != k.Shape[3] {
		panic(fmt.Sprintf("loope: ClassAttention: shape mismatch q %v, k %v, v %v", q.Shape, k.Shape, v.Shape))
	}
	s := tp.BatchMatMul(tp.Scale(q, scale), k, false, true) // (B, H, 1, N)
	return tp.BatchMatMul(tp.Softmax(s), v, false, false)   // (B, H, 1, Dh)
}
