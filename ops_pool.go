// This file holds the 2-D pooling ops of the CNN reference models
// (docs/cnn.md): MaxPool2d (torchvision ResNet's stem, Inception's
// stride-2 reductions) and AvgPool2d (Inception's pooling branches), with
// PyTorch's semantics (floor mode; max pooling pads with −∞, average
// pooling with zeros, counted or not). The global average pool before a
// CNN's head is Reshape + MeanAxis (see GlobalAvgPool2d).
//
// Every (image, channel) plane is independent: planes run in parallel,
// each written by one goroutine in a fixed order, so results are
// bit-identical for any thread count.

package loope

import "fmt"

// poolAttrs are the node attributes of the pooling ops: x (b·c planes of
// h × w), the square window k, stride s, padding p, output ho × wo, and for
// AvgPool2d whether the padding counts in the divisor.
type poolAttrs struct {
	planes, h, w, k, s, p, ho, wo int
	countPad                      bool
}

// poolGeom checks a pooling call on x (B, C, H, W) and returns its
// attributes: PyTorch's rules (kernel, stride ≥ 1, 0 ≤ pad ≤ kernel/2,
// output side (H + 2·pad − kernel)/stride + 1 ≥ 1).
func poolGeom[T Float](op string, x *Tensor[T], k, stride, pad int) poolAttrs {
	if x == nil || len(x.Shape) != 4 || k < 1 || stride < 1 || pad < 0 || 2*pad > k ||
		x.Shape[2]+2*pad < k || x.Shape[3]+2*pad < k {
		panic(fmt.Sprintf("loope: %s: bad arguments x %v, kernel %d, stride %d, pad %d (need a 4-D x, pad ≤ kernel/2, the window inside the padded image)",
			op, shapeOrNil(x), k, stride, pad))
	}
	h, w := x.Shape[2], x.Shape[3]
	return poolAttrs{planes: x.Shape[0] * x.Shape[1], h: h, w: w, k: k, s: stride, p: pad,
		ho: (h+2*pad-k)/stride + 1, wo: (w+2*pad-k)/stride + 1}
}

// MaxPool2d returns the maximum of each kernel × kernel window of x
// (B, C, H, W), stride and pad as nn.MaxPool2d(kernel, stride, pad)
// (padding is −∞, floor mode; as PyTorch's CPU kernel, a NaN wins and
// the last NaN of a window is its maximum): (B, C, Ho, Wo) with
// Ho = (H + 2·pad − kernel)/stride + 1 and Wo likewise. Of equal values
// the first in row-major window order is the maximum (its gradient gets dy).
func (tp *Tape[T]) MaxPool2d(x *Tensor[T], kernel, stride, pad int) *Tensor[T] {
	a := poolGeom("MaxPool2d", x, kernel, stride, pad)
	out := tp.outNoZero([]int{x.Shape[0], x.Shape[1], a.ho, a.wo}, x)
	var arg []int // per output, the plane index ih·W + iw of its maximum
	var nd *node[T]
	if out.Grad != nil {
		nd = tp.record(maxPoolBackward[T]{}, out, x)
		*attrsOf[poolAttrs](nd) = a
		nd.ints = growInts(nd.ints, len(out.Data))
		arg = nd.ints
	}
	l := a.ho * a.wo
	parallelFor(a.planes, max(1, 4096/max(l*a.k*a.k, 1)), func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			xp, op := x.Data[pl*a.h*a.w:(pl+1)*a.h*a.w], out.Data[pl*l:(pl+1)*l]
			for oh := range a.ho {
				for ow := range a.wo {
					best, bi := T(0), -1
					for kh := range a.k {
						ih := oh*a.s - a.p + kh
						if ih < 0 || ih >= a.h {
							continue
						}
						for kw := range a.k {
							iw := ow*a.s - a.p + kw
							if iw < 0 || iw >= a.w {
								continue
							}
							if v := xp[ih*a.w+iw]; bi < 0 || v > best || v != v {
								best, bi = v, ih*a.w+iw
							}
						}
					}
					op[oh*a.wo+ow] = best
					if arg != nil {
						arg[pl*l+oh*a.wo+ow] = bi
					}
				}
			}
		}
	})
	return out
}

// maxPoolBackward: dx[plane, arg] += dy[plane, o] for every output o of
// the plane (nd.ints holds arg, the position of each output's maximum).
type maxPoolBackward[T Float] struct{}

func (maxPoolBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	a, arg := *attrsOf[poolAttrs](nd), nd.ints
	l, hw := a.ho*a.wo, a.h*a.w
	parallelFor(a.planes, max(1, 4096/max(l, 1)), func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dx := x.Grad[pl*hw : (pl+1)*hw]
			for o, g := range y.Grad[pl*l : (pl+1)*l] {
				dx[arg[pl*l+o]] += g
			}
		}
	})
}

// growInts returns s resized to n elements, reusing its backing array.
func growInts(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

// AvgPool2d returns the mean of each kernel × kernel window of x
// (B, C, H, W), as nn.AvgPool2d(kernel, stride, pad, count_include_pad)
// in floor mode: the window's sum over the pixels inside the image divided
// by kernel² with countIncludePad (the zero padding counts), else by the
// number of pixels inside. Shape (B, C, Ho, Wo) with
// Ho = (H + 2·pad − kernel)/stride + 1 and Wo likewise.
func (tp *Tape[T]) AvgPool2d(x *Tensor[T], kernel, stride, pad int, countIncludePad bool) *Tensor[T] {
	a := poolGeom("AvgPool2d", x, kernel, stride, pad)
	a.countPad = countIncludePad
	out := tp.outNoZero([]int{x.Shape[0], x.Shape[1], a.ho, a.wo}, x)
	l := a.ho * a.wo
	parallelFor(a.planes, max(1, 4096/max(l*a.k*a.k, 1)), func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			xp, op := x.Data[pl*a.h*a.w:(pl+1)*a.h*a.w], out.Data[pl*l:(pl+1)*l]
			for oh := range a.ho {
				h0, h1, _ := a.window(oh, a.h)
				for ow := range a.wo {
					w0, w1, div := a.window(ow, a.w)
					var s T
					for ih := h0; ih < h1; ih++ {
						for _, v := range xp[ih*a.w+w0 : ih*a.w+w1] {
							s += v
						}
					}
					op[oh*a.wo+ow] = s / T(a.divisor(oh, div))
				}
			}
		}
	})
	if out.Grad != nil {
		nd := tp.record(avgPoolBackward[T]{}, out, x)
		*attrsOf[poolAttrs](nd) = a
	}
	return out
}

// avgPoolBackward: dx[ih, iw] += dy[oh, ow]/divisor(oh, ow) for every
// pixel inside window (oh, ow).
type avgPoolBackward[T Float] struct{}

func (avgPoolBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	a := *attrsOf[poolAttrs](nd)
	l, hw := a.ho*a.wo, a.h*a.w
	parallelFor(a.planes, max(1, 4096/max(l*a.k*a.k, 1)), func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dx, dy := x.Grad[pl*hw:(pl+1)*hw], y.Grad[pl*l:(pl+1)*l]
			for oh := range a.ho {
				h0, h1, _ := a.window(oh, a.h)
				for ow := range a.wo {
					w0, w1, div := a.window(ow, a.w)
					g := dy[oh*a.wo+ow] / T(a.divisor(oh, div))
					for ih := h0; ih < h1; ih++ {
						d := dx[ih*a.w+w0 : ih*a.w+w1]
						for i := range d {
							d[i] += g
						}
					}
				}
			}
		}
	})
}

// window returns the input range [lo, hi) of window o along an axis of n
// pixels, clipped to the image, and the clipped length hi − lo.
func (a *poolAttrs) window(o, n int) (lo, hi, inside int) {
	lo, hi = o*a.s-a.p, o*a.s-a.p+a.k
	lo, hi = max(lo, 0), min(hi, n)
	return lo, hi, hi - lo
}

// divisor returns AvgPool2d's divisor of window (oh, ·) whose column range
// has insideW pixels in the image: kernel² with countPad (in floor mode a
// window never passes the padding), else the pixels inside.
func (a *poolAttrs) divisor(oh, insideW int) int {
	if a.countPad {
		return a.k * a.k
	}
	_, _, insideH := a.window(oh, a.h)
	return insideH * insideW
}

// GlobalAvgPool2d returns the mean of each (image, channel) plane of x
// (B, C, H, W): (B, C), nn.AdaptiveAvgPool2d((1, 1)) followed by
// flatten(1), as Reshape to (B, C, H·W) and MeanAxis over the last axis.
func (tp *Tape[T]) GlobalAvgPool2d(x *Tensor[T]) *Tensor[T] {
	if x == nil || len(x.Shape) != 4 || x.Shape[2]*x.Shape[3] == 0 {
		panic(fmt.Sprintf("loope: GlobalAvgPool2d: x %v, want (B, C, H, W) with H, W ≥ 1", shapeOrNil(x)))
	}
	return tp.MeanAxis(tp.Reshape(x, x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3]), 2, false)
}
