// This file holds ResizeBilinear, PyTorch's F.interpolate(mode='bilinear',
// align_corners=False, antialias=False) with an output size: the
// Inception-V3 reference model enlarges small images to its 75-pixel
// minimum with it (docs/cnn.md). Planes run in parallel, each written by
// one goroutine, so results do not depend on the thread count.

package loope

import "fmt"

// resizeAttrs are ResizeBilinear's node attributes: x (planes, h, w),
// output (planes, ho, wo).
type resizeAttrs struct{ planes, h, w, ho, wo int }

// bilinearTap returns, for output index o of an axis resized from n to m
// pixels, the two input indices i0 ≤ i1 and their weights l0 + l1 = 1:
// PyTorch's area_pixel_compute_source_index with align_corners=False,
// src = (o + ½)·n/m − ½ clamped at 0, i0 = ⌊src⌋, i1 = i0 + 1 unless i0
// is the last pixel, l1 = src − i0.
func bilinearTap(o, n, m int) (i0, i1 int, l0, l1 float64) {
	src := (float64(o)+0.5)*(float64(n)/float64(m)) - 0.5
	if src < 0 {
		src = 0
	}
	i0 = int(src)
	i1 = i0
	if i0 < n-1 {
		i1++
	}
	l1 = src - float64(i0)
	return i0, i1, 1 - l1, l1
}

// ResizeBilinear resizes each plane of x (B, C, H, W) to outH × outW by
// bilinear interpolation with align_corners=False (half-pixel centres,
// no antialiasing), as F.interpolate(x, size=(outH, outW),
// mode='bilinear'): (B, C, outH, outW). y[oh, ow] = l0h·(l0w·x[h0, w0] +
// l1w·x[h0, w1]) + l1h·(l0w·x[h1, w0] + l1w·x[h1, w1]) with the taps of
// bilinearTap.
func (tp *Tape[T]) ResizeBilinear(x *Tensor[T], outH, outW int) *Tensor[T] {
	if x == nil || len(x.Shape) != 4 || outH < 1 || outW < 1 || x.Shape[2] < 1 || x.Shape[3] < 1 {
		panic(fmt.Sprintf("loope: ResizeBilinear: x %v to %d × %d, want x (B, C, H, W) with H, W ≥ 1 and an output side ≥ 1",
			shapeOrNil(x), outH, outW))
	}
	a := resizeAttrs{planes: x.Shape[0] * x.Shape[1], h: x.Shape[2], w: x.Shape[3], ho: outH, wo: outW}
	out := tp.outNoZero([]int{x.Shape[0], x.Shape[1], outH, outW}, x)
	hw, l := a.h*a.w, a.ho*a.wo
	parallelFor(a.planes, max(1, 1024/max(l, 1)), func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			xp, op := x.Data[pl*hw:(pl+1)*hw], out.Data[pl*l:(pl+1)*l]
			for oh := range a.ho {
				h0, h1, l0h, l1h := bilinearTap(oh, a.h, a.ho)
				for ow := range a.wo {
					w0, w1, l0w, l1w := bilinearTap(ow, a.w, a.wo)
					op[oh*a.wo+ow] = T(l0h)*(T(l0w)*xp[h0*a.w+w0]+T(l1w)*xp[h0*a.w+w1]) +
						T(l1h)*(T(l0w)*xp[h1*a.w+w0]+T(l1w)*xp[h1*a.w+w1])
				}
			}
		}
	})
	if out.Grad != nil {
		nd := tp.record(resizeBilinearBackward[T]{}, out, x)
		*attrsOf[resizeAttrs](nd) = a
	}
	return out
}

// resizeBilinearBackward: each output's gradient goes to its four taps,
// dx[hi, wj] += lih·ljw·dy[oh, ow].
type resizeBilinearBackward[T Float] struct{}

func (resizeBilinearBackward[T]) backward(nd *node[T]) {
	x, y := nd.in[0], nd.out
	if x.Grad == nil {
		return
	}
	a := *attrsOf[resizeAttrs](nd)
	hw, l := a.h*a.w, a.ho*a.wo
	parallelFor(a.planes, max(1, 1024/max(l, 1)), func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			dx, dy := x.Grad[pl*hw:(pl+1)*hw], y.Grad[pl*l:(pl+1)*l]
			for oh := range a.ho {
				h0, h1, l0h, l1h := bilinearTap(oh, a.h, a.ho)
				for ow := range a.wo {
					w0, w1, l0w, l1w := bilinearTap(ow, a.w, a.wo)
					g := dy[oh*a.wo+ow]
					dx[h0*a.w+w0] += T(l0h*l0w) * g
					dx[h0*a.w+w1] += T(l0h*l1w) * g
					dx[h1*a.w+w0] += T(l1h*l0w) * g
					dx[h1*a.w+w1] += T(l1h*l1w) * g
				}
			}
		}
	})
}
