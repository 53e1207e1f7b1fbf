// This file holds Conv2d, PyTorch's nn.Conv2d with zero padding, forward
// beside backward. Two paths:
//   - im2col + GEMM, the general path (any kernel, stride, padding, groups);
//     it serves the patch embedding (kernel = stride = P, where im2col is a
//     pure rearrangement) and the 5×5 stride-1 convolutions;
//   - direct loops for depthwise convolutions (groups = C = O), e.g. CPVT's
//     3×3 PEG (pe-zoo.md §9b), where a GEMM would have one row.
//
// Batch items run in parallel for the input side; weight and bias gradients
// are split over output channels and sum over the batch in order b = 0, 1,
// ..., so results are bit-identical for any thread count.

package loope

import "fmt"

// Conv2d returns the 2-D cross-correlation of x (B, C, H, W) with
// w (O, C/groups, KH, KW) plus bias (O) or nil, PyTorch semantics: zero
// padding pad on all four sides, the same stride along both axes, and
// groups input/output channel groups. Shape (B, O, Ho, Wo) with
// Ho = (H + 2·pad − KH)/stride + 1 and Wo likewise.
func (tp *Tape[T]) Conv2d(x, w, bias *Tensor[T], stride, pad, groups int) *Tensor[T] {
	g, ok := convGeomOf(x, w, bias, stride, pad, groups)
	if !ok {
		panic(fmt.Sprintf("loope: Conv2d: shape mismatch x %v, w %v, bias %v, stride %d, pad %d, groups %d",
			x.Shape, shapeOrNil(w), shapeOrNil(bias), stride, pad, groups))
	}
	out := tp.out([]int{g.b, g.o, g.ho, g.wo}, x, w, bias)
	var bd []T
	if bias != nil {
		bd = bias.Data
	}
	var slots []T
	if g.depthwise() {
		conv2dDepthwiseForward(out.Data, x.Data, w.Data, bd, &g)
	} else {
		slots = tp.scratch(g.nw * g.k() * g.ho * g.wo) // an im2col matrix per slot
		conv2dIm2colForward(out.Data, x.Data, w.Data, bd, slots, &g)
	}
	if out.Grad != nil {
		nd := tp.record(conv2dBackward[T]{}, out, x, w, bias)
		nd.ints = append(nd.ints, g.b, g.c, g.h, g.w, g.o, g.kh, g.kw, g.stride, g.pad, g.groups, g.ho, g.wo, g.nw)
		nd.saved = append(nd.saved, slots)
	}
	return out
}

// conv2dBackward: dbias += Σ_{b,oh,ow} dy; for the im2col path, with
// col_b the patch matrix of image b and W_g the (O/groups, C/groups·KH·KW)
// weight block of group g: dW_g += Σ_b dy_{b,g}·col_{b,g}ᵀ and
// dx_b += col2im(W_gᵀ·dy_{b,g}); the depthwise path runs the same sums as
// direct loops.
type conv2dBackward[T Float] struct{}

func (conv2dBackward[T]) backward(nd *node[T]) {
	x, w, bias, y := nd.in[0], nd.in[1], nd.in[2], nd.out
	it := nd.ints
	g := convGeom{b: it[0], c: it[1], h: it[2], w: it[3], o: it[4], kh: it[5], kw: it[6],
		stride: it[7], pad: it[8], groups: it[9], ho: it[10], wo: it[11], nw: it[12]}
	l := g.ho * g.wo
	if bias != nil && bias.Grad != nil {
		parallelFor(g.o, max(1, 4096/max(g.b*l, 1)), func(lo, hi int) {
			for o := lo; o < hi; o++ {
				var s T
				for bi := range g.b {
					for _, v := range y.Grad[(bi*g.o+o)*l : (bi*g.o+o+1)*l] {
						s += v
					}
				}
				bias.Grad[o] += s
			}
		})
	}
	if g.depthwise() {
		conv2dDepthwiseBackward(x, w, y.Grad, &g)
		return
	}
	slots, k := nd.saved[0], g.k()
	og, cg := g.o/g.groups, g.c/g.groups
	if x.Grad != nil { // per image: dcol = W_gᵀ·dy_{b,g}, then col2im
		parallelFor(g.nw, 1, func(wlo, whi int) {
			for s := wlo; s < whi; s++ {
				dcol := slots[s*k*l : (s+1)*k*l]
				for bi := s * g.b / g.nw; bi < (s+1)*g.b/g.nw; bi++ {
					for gi := range g.groups {
						dy := y.Grad[(bi*g.o+gi*og)*l:]
						gemmSerial(true, false, k, l, og, w.Data[gi*og*k:], max(k, 1), dy, max(l, 1), dcol, max(l, 1), false)
						col2im(x.Grad[(bi*g.c+gi*cg)*g.h*g.w:], dcol, &g)
					}
				}
			}
		})
	}
	if w.Grad != nil { // per fixed range of output channels, images in order
		parallelFor(g.nw, 1, func(wlo, whi int) {
			for s := wlo; s < whi; s++ {
				col := slots[s*k*l : (s+1)*k*l]
				olo, ohi := s*g.o/g.nw, (s+1)*g.o/g.nw
				for bi := range g.b {
					for gi := olo / max(og, 1); gi < g.groups && gi*og < ohi; gi++ {
						r0, r1 := max(olo, gi*og), min(ohi, (gi+1)*og)
						if r1 <= r0 {
							continue
						}
						im2col(col, x.Data[(bi*g.c+gi*cg)*g.h*g.w:], &g)
						gemmSerial(false, true, r1-r0, k, l, y.Grad[(bi*g.o+r0)*l:], max(l, 1), col, max(l, 1),
							w.Grad[r0*k:], max(k, 1), true)
					}
				}
			}
		})
	}
}

// convGeom is the geometry of one Conv2d call.
type convGeom struct {
	b, c, h, w     int // input (B, C, H, W)
	o, kh, kw      int // weight (O, C/groups, KH, KW)
	stride, pad    int //
	groups, ho, wo int // output (B, O, Ho, Wo)
	nw             int // scratch slots: fixed chunks of images (or of output channels in the weight gradient)
}

// k is the patch length C/groups·KH·KW: the inner dimension of the GEMMs.
func (g *convGeom) k() int { return g.c / g.groups * g.kh * g.kw }

// depthwise reports whether every output channel sees exactly its own input channel.
func (g *convGeom) depthwise() bool { return g.groups == g.c && g.o == g.c }

// convGeomOf checks the Conv2d arguments and returns their geometry.
func convGeomOf[T Float](x, w, bias *Tensor[T], stride, pad, groups int) (convGeom, bool) {
	if w == nil || len(x.Shape) != 4 || len(w.Shape) != 4 || stride < 1 || pad < 0 || groups < 1 {
		return convGeom{}, false
	}
	g := convGeom{b: x.Shape[0], c: x.Shape[1], h: x.Shape[2], w: x.Shape[3],
		o: w.Shape[0], kh: w.Shape[2], kw: w.Shape[3], stride: stride, pad: pad, groups: groups}
	if g.c%groups != 0 || g.o%groups != 0 || w.Shape[1] != g.c/groups || g.kh < 1 || g.kw < 1 ||
		g.h+2*pad < g.kh || g.w+2*pad < g.kw || (bias != nil && !sameShape(bias.Shape, []int{g.o})) {
		return convGeom{}, false
	}
	g.ho, g.wo = (g.h+2*pad-g.kh)/stride+1, (g.w+2*pad-g.kw)/stride+1
	g.nw = max(1, min(Threads(), max(g.b, g.o)))
	return g, true
}

// validRange returns the output columns [lo, hi) whose input column
// o·stride − pad + kk lies inside [0, n).
func validRange(n, out, stride, pad, kk int) (lo, hi int) {
	if pad > kk {
		lo = min(out, (pad-kk+stride-1)/stride) // ceil((pad − kk)/stride)
	}
	if n-1+pad-kk >= 0 {
		hi = min(out, (n-1+pad-kk)/stride+1) // floor((n − 1 + pad − kk)/stride) + 1
	}
	return lo, max(lo, hi)
}

// im2col writes the (C/groups·KH·KW, Ho·Wo) patch matrix of the channel group
// starting at x (C/groups, H, W) into col: row (c·KH + kh)·KW + kw, column
// oh·Wo + ow holds x[c, oh·stride − pad + kh, ow·stride − pad + kw], or 0 in
// the padding. For kernel = stride and pad = 0 this is a pure rearrangement.
func im2col[T Float](col, x []T, g *convGeom) {
	l, cg := g.ho*g.wo, g.c/g.groups
	for c := range cg {
		xc := x[c*g.h*g.w : (c+1)*g.h*g.w]
		for kh := range g.kh {
			for kw := range g.kw {
				row := col[((c*g.kh+kh)*g.kw+kw)*l : ((c*g.kh+kh)*g.kw+kw+1)*l]
				owLo, owHi := validRange(g.w, g.wo, g.stride, g.pad, kw)
				for oh := range g.ho {
					dst := row[oh*g.wo : (oh+1)*g.wo]
					ih := oh*g.stride - g.pad + kh
					if ih < 0 || ih >= g.h || owLo >= owHi { // owLo >= owHi: this kw sees only padding (base may be < 0)
						clear(dst)
						continue
					}
					clear(dst[:owLo])
					clear(dst[owHi:])
					base := ih*g.w - g.pad + kw // input index of ow = 0 (may lie in the padding)
					if g.stride == 1 {
						copy(dst[owLo:owHi], xc[base+owLo:base+owHi])
					} else {
						for ow := owLo; ow < owHi; ow++ {
							dst[ow] = xc[base+ow*g.stride]
						}
					}
				}
			}
		}
	}
}

// col2im adds the patch-matrix gradient dcol (C/groups·KH·KW, Ho·Wo) back
// into the channel group starting at dx (C/groups, H, W): the adjoint of im2col.
func col2im[T Float](dx, dcol []T, g *convGeom) {
	l, cg := g.ho*g.wo, g.c/g.groups
	for c := range cg {
		dxc := dx[c*g.h*g.w : (c+1)*g.h*g.w]
		for kh := range g.kh {
			for kw := range g.kw {
				row := dcol[((c*g.kh+kh)*g.kw+kw)*l : ((c*g.kh+kh)*g.kw+kw+1)*l]
				owLo, owHi := validRange(g.w, g.wo, g.stride, g.pad, kw)
				for oh := range g.ho {
					ih := oh*g.stride - g.pad + kh
					if ih < 0 || ih >= g.h || owLo >= owHi {
						continue
					}
					src, base := row[oh*g.wo:(oh+1)*g.wo], ih*g.w-g.pad+kw
					for ow := owLo; ow < owHi; ow++ {
						dxc[base+ow*g.stride] += src[ow]
					}
				}
			}
		}
	}
}

// conv2dIm2colForward computes out (B, O, Ho, Wo) image by image:
// out_{b,g} = bias + W_g·col_{b,g}, with one im2col slot per fixed chunk of images.
func conv2dIm2colForward[T Float](out, x, w, bias, slots []T, g *convGeom) {
	l, k := g.ho*g.wo, g.k()
	og, cg := g.o/g.groups, g.c/g.groups
	parallelFor(g.nw, 1, func(wlo, whi int) {
		for s := wlo; s < whi; s++ {
			col := slots[s*k*l : (s+1)*k*l]
			for bi := s * g.b / g.nw; bi < (s+1)*g.b/g.nw; bi++ {
				ob := out[bi*g.o*l : (bi+1)*g.o*l]
				for o, bv := range bias {
					row := ob[o*l : (o+1)*l]
					for i := range row {
						row[i] = bv
					}
				}
				for gi := range g.groups {
					im2col(col, x[(bi*g.c+gi*cg)*g.h*g.w:], g)
					gemmSerial(false, false, og, l, k, w[gi*og*k:], max(k, 1), col, max(l, 1), ob[gi*og*l:], max(l, 1), true)
				}
			}
		}
	})
}

// conv2dDepthwiseForward computes out (B, C, Ho, Wo) for groups = C = O with
// direct loops, one (image, channel) plane at a time: bias, then the taps
// in (kh, kw) order.
func conv2dDepthwiseForward[T Float](out, x, w, bias []T, g *convGeom) {
	l, hw, kk := g.ho*g.wo, g.h*g.w, g.kh*g.kw
	parallelFor(g.b*g.c, max(1, 4096/max(l*kk, 1)), func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			c := pl % g.c
			op, xp, wp := out[pl*l:(pl+1)*l], x[pl*hw:(pl+1)*hw], w[c*kk:(c+1)*kk]
			if bias != nil {
				for i := range op {
					op[i] = bias[c]
				}
			}
			for kh := range g.kh {
				for kw := range g.kw {
					wv := wp[kh*g.kw+kw]
					owLo, owHi := validRange(g.w, g.wo, g.stride, g.pad, kw)
					for oh := range g.ho {
						ih := oh*g.stride - g.pad + kh
						if ih < 0 || ih >= g.h || owLo >= owHi {
							continue
						}
						dst, base := op[oh*g.wo:(oh+1)*g.wo], ih*g.w-g.pad+kw
						for ow := owLo; ow < owHi; ow++ {
							dst[ow] += wv * xp[base+ow*g.stride]
						}
					}
				}
			}
		}
	})
}

// conv2dDepthwiseBackward: dx[b,c] += Σ_taps w[c,tap]·shifted dy[b,c] per
// plane; dw[c,tap] += Σ_b Σ_{oh,ow} dy·x, split over channels.
func conv2dDepthwiseBackward[T Float](x, w *Tensor[T], dy []T, g *convGeom) {
	l, hw, kk := g.ho*g.wo, g.h*g.w, g.kh*g.kw
	if x.Grad != nil {
		parallelFor(g.b*g.c, max(1, 4096/max(l*kk, 1)), func(lo, hi int) {
			for pl := lo; pl < hi; pl++ {
				c := pl % g.c
				gp, dxp, wp := dy[pl*l:(pl+1)*l], x.Grad[pl*hw:(pl+1)*hw], w.Data[c*kk:(c+1)*kk]
				for kh := range g.kh {
					for kw := range g.kw {
						wv := wp[kh*g.kw+kw]
						owLo, owHi := validRange(g.w, g.wo, g.stride, g.pad, kw)
						for oh := range g.ho {
							ih := oh*g.stride - g.pad + kh
							if ih < 0 || ih >= g.h || owLo >= owHi {
								continue
							}
							src, base := gp[oh*g.wo:(oh+1)*g.wo], ih*g.w-g.pad+kw
							for ow := owLo; ow < owHi; ow++ {
								dxp[base+ow*g.stride] += wv * src[ow]
							}
						}
					}
				}
			}
		})
	}
	if w.Grad == nil {
		return
	}
	parallelFor(g.c, max(1, 4096/max(g.b*l*kk, 1)), func(lo, hi int) {
		for c := lo; c < hi; c++ {
			dw := w.Grad[c*kk : (c+1)*kk]
			for bi := range g.b {
				pl := bi*g.c + c
				gp, xp := dy[pl*l:(pl+1)*l], x.Data[pl*hw:(pl+1)*hw]
				for kh := range g.kh {
					for kw := range g.kw {
						owLo, owHi := validRange(g.w, g.wo, g.stride, g.pad, kw)
						var s T
						for oh := range g.ho {
							ih := oh*g.stride - g.pad + kh
							if ih < 0 || ih >= g.h || owLo >= owHi {
								continue
							}
							gr, base := gp[oh*g.wo:(oh+1)*g.wo], ih*g.w-g.pad+kw
							for ow := owLo; ow < owHi; ow++ {
								s += gr[ow] * xp[base+ow*g.stride]
							}
						}
						dw[kh*g.kw+kw] += s
					}
				}
			}
		}
	})
}
