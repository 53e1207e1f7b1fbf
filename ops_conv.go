// This file holds Conv2d, PyTorch's nn.Conv2d with zero padding, forward
// beside backward. Two paths:
//   - patch rows + GEMM, the general path (any kernel, stride, padding,
//     groups); it serves the patch embedding (kernel = stride = P) and
//     LOOPE's 5×5 stride-1 convolutions;
//   - direct loops for depthwise convolutions (groups = C = O), e.g. CPVT's
//     3×3 PEG (docs/pe-zoo.md §11), where a GEMM would have one row.
//
// The general path works on fixed chunks of images (convChunkElems patch
// elements, whatever the thread count). A chunk's patch rows P (one row
// per output position, one column per (channel, kh, kw) tap) make every
// product tall and thin: the output Yᵀ = P·Wᵀ has a row per position and
// a column per output channel, so the few output channels of LOOPE's
// narrowing convolutions (16, 8, 4, 1) are the narrow side of the GEMM,
// not its 6-row register tiles (with convWideO or more output channels per
// group the products run image by image on the (O, L) planes instead). dx
// is, where it can be, a stride-1 convolution of dy with flipped kernels,
// on patch rows of dy (no col2im). Chunks run in parallel over a fixed set
// of work slots; the weight gradient sums per-chunk products in chunk
// order, so results are bit-identical for any thread count.

package loope

import (
	"fmt"
	"sync"
)

// Conv2d returns the 2-D cross-correlation of x (B, C, H, W) with
// w (O, C/groups, KH, KW) plus bias (O) or nil, PyTorch semantics: zero
// padding pad on all four sides, the same stride along both axes, and
// groups input/output channel groups. Shape (B, O, Ho, Wo) with
// Ho = (H + 2·pad − KH)/stride + 1 and Wo likewise.
func (tp *Tape[T]) Conv2d(x, w, bias *Tensor[T], stride, pad, groups int) *Tensor[T] {
	return tp.conv2d("Conv2d", x, w, bias, stride, pad, pad, groups)
}

// Conv2dHW is Conv2d with its own zero padding per axis: padH rows above
// and below, padW columns left and right, as nn.Conv2d(padding=(padH,
// padW)); Inception's 1×7 and 7×1 convolutions take (0, 3) and (3, 0).
// Shape (B, O, Ho, Wo) with Ho = (H + 2·padH − KH)/stride + 1,
// Wo = (W + 2·padW − KW)/stride + 1.
func (tp *Tape[T]) Conv2dHW(x, w, bias *Tensor[T], stride, padH, padW, groups int) *Tensor[T] {
	return tp.conv2d("Conv2dHW", x, w, bias, stride, padH, padW, groups)
}

// conv2d is Conv2d and Conv2dHW; op names the caller in panics.
func (tp *Tape[T]) conv2d(op string, x, w, bias *Tensor[T], stride, padH, padW, groups int) *Tensor[T] {
	g, ok := convGeomHW(x, w, bias, stride, padH, padW, groups)
	if !ok {
		panic(fmt.Sprintf("loope: %s: shape mismatch x %v, w %v, bias %v, stride %d, pad (%d, %d), groups %d",
			op, x.Shape, shapeOrNil(w), shapeOrNil(bias), stride, padH, padW, groups))
	}
	out := tp.out([]int{g.b, g.o, g.ho, g.wo}, x, w, bias)
	var bd []T
	if bias != nil {
		bd = bias.Data
	}
	if g.depthwise() {
		conv2dDepthwiseForward(out.Data, x.Data, w.Data, bd, &g)
		if out.Grad != nil {
			nd := tp.record(conv2dBackward[T]{}, out, x, w, bias)
			*attrsOf[convGeom](nd) = g
		}
		return out
	}
	grad := out.Grad != nil
	dx, dw := grad && x.Grad != nil, grad && w.Grad != nil
	work := tp.scratch(g.nw * g.slot(dx))
	conv2dRowsForward(out.Data, x.Data, w.Data, bd, work, &g)
	if grad {
		var flipped, parts []T
		if _, ok := g.transposed(); ok && dx {
			flipped = tp.scratch(len(w.Data))
			flipKernels(flipped, w.Data, &g)
		}
		if dw {
			parts = tp.scratch(g.nc * len(w.Data))
		}
		nd := tp.record(conv2dBackward[T]{}, out, x, w, bias)
		*attrsOf[convGeom](nd) = g
		nd.saved = append(nd.saved, work, flipped, parts)
	}
	return out
}

// conv2dBackward: dbias += Σ_{b,oh,ow} dy. The general path, per chunk of
// images with dYᵀ (rows, O) its output gradient as patch-row columns and
// P_g its patch rows of group g: partial_chunk(dW_g) = dYᵀ_gᵀ·P_g, summed
// over chunks in order into dW (for wide O: Σ_b dy_b,g·P_b per chunk);
// dx += the transposed convolution of dy:
// for stride 1 with padH < KH and padW < KW a stride-1 convolution of dy
// with the flipped, channel-swapped kernels (padding KH − 1 − padH,
// KW − 1 − padW, output H × W), else col2im(dYᵀ_g·W_g). The depthwise path runs the same sums as
// direct loops.
type conv2dBackward[T Float] struct{}

func (conv2dBackward[T]) backward(nd *node[T]) {
	x, w, bias, y := nd.in[0], nd.in[1], nd.in[2], nd.out
	g := attrsOf[convGeom](nd)
	l := g.ho * g.wo
	if bias != nil && bias.Grad != nil {
		runPooled[T](&convBiasJobs, convBiasJob[T]{db: bias.Grad, dy: y.Grad, b: g.b, o: g.o, l: l}, g.o, max(1, 4096/max(g.b*l, 1)), false)
	}
	if g.depthwise() {
		conv2dDepthwiseBackward(x, w, y.Grad, g)
		return
	}
	conv2dRowsBackward(x, w, y.Grad, nd.saved[0], nd.saved[1], nd.saved[2], g)
}

// convBiasJob adds to db[o] (O) the sum of channel o of dy (B, O, L), for
// the channels of a range (a pooled job: no closure to allocate).
type convBiasJob[T Float] struct {
	db, dy  []T
	b, o, l int
}

var convBiasJobs [2]sync.Pool // [0] float32, [1] float64

func (j *convBiasJob[T]) run(lo, hi int) {
	for o := lo; o < hi; o++ {
		var s T
		for bi := range j.b {
			for _, v := range j.dy[(bi*j.o+o)*j.l : (bi*j.o+o+1)*j.l] {
				s += v
			}
		}
		j.db[o] += s
	}
}

// convGeom is the geometry of one Conv2d call.
type convGeom struct {
	b, c, h, w     int // input (B, C, H, W)
	o, kh, kw      int // weight (O, C/groups, KH, KW)
	stride, ph, pw int // stride; zero padding of the rows (top and bottom) and columns (left and right)
	groups, ho, wo int // output (B, O, Ho, Wo)
	cb, nc, nw     int // images per chunk, chunks, work slots (chunks run at once)
}

// convChunkElems bounds the patch rows of a chunk of images (at least one
// image): chunk rows × K elements. It fixes the chunking, so it must not
// depend on the thread count; it keeps a chunk's patch rows in L2 between
// being written and being read by the GEMM, against the per-chunk
// overheads and the weight-gradient partial sums.
var convChunkElems = 1 << 16 // a var so tests can force small chunks

// k is the patch length C/groups·KH·KW: the inner dimension of the GEMMs.
func (g *convGeom) k() int { return g.c / g.groups * g.kh * g.kw }

// depthwise reports whether every output channel sees exactly its own input channel.
func (g *convGeom) depthwise() bool { return g.groups == g.c && g.o == g.c }

// transposed returns the geometry of the convolution that computes dx from
// dy: input dy (B, O, Ho, Wo), kernels (C, O/groups, KH, KW) flipped in
// both axes (flipKernels), stride 1, padding (KH − 1 − padH, KW − 1 −
// padW), output (B, C, H, W). ok is false where that is not a plain
// convolution (stride > 1, or padH ≥ KH or padW ≥ KW); then dx goes
// through col2im.
func (g *convGeom) transposed() (t convGeom, ok bool) {
	if g.stride != 1 || g.ph >= g.kh || g.pw >= g.kw {
		return convGeom{}, false
	}
	t = convGeom{b: g.b, c: g.o, h: g.ho, w: g.wo, o: g.c, kh: g.kh, kw: g.kw, stride: 1, ph: g.kh - 1 - g.ph, pw: g.kw - 1 - g.pw,
		groups: g.groups, ho: g.h, wo: g.w, cb: g.cb, nc: g.nc, nw: g.nw}
	return t, t.ho == g.h && t.wo == g.w
}

// yRows is the length of a chunk's Yᵀ or dYᵀ (rows, O), 0 for wide O
// (O/groups ≥ convWideO), whose products work on the planes of y and dy.
func (g *convGeom) yRows() int {
	if g.o/g.groups >= convWideO {
		return 0
	}
	return g.cb * g.ho * g.wo * g.o
}

// slot is the length of one work slot: Yᵀ or dYᵀ (rows, O) (yRows), then for dx
// through the transposed convolution its output rows (cb·H·W, C), then
// the larger of P (rows, K) and the transposed convolution's patch rows.
func (g *convGeom) slot(dx bool) int {
	r := g.cb * g.ho * g.wo
	ro := g.yRows()
	n := ro + r*g.k()
	if t, ok := g.transposed(); ok && dx {
		rt := g.cb * t.ho * t.wo
		n = ro + rt*g.c + max(r*g.k(), rt*t.k())
	}
	return n
}

// convGeomOf checks the Conv2d arguments and returns their geometry.
func convGeomOf[T Float](x, w, bias *Tensor[T], stride, pad, groups int) (convGeom, bool) {
	return convGeomHW(x, w, bias, stride, pad, pad, groups)
}

// convGeomHW checks the Conv2dHW arguments and returns their geometry.
func convGeomHW[T Float](x, w, bias *Tensor[T], stride, ph, pw, groups int) (convGeom, bool) {
	if x == nil || w == nil || len(x.Shape) != 4 || len(w.Shape) != 4 || stride < 1 || ph < 0 || pw < 0 || groups < 1 {
		return convGeom{}, false
	}
	g := convGeom{b: x.Shape[0], c: x.Shape[1], h: x.Shape[2], w: x.Shape[3],
		o: w.Shape[0], kh: w.Shape[2], kw: w.Shape[3], stride: stride, ph: ph, pw: pw, groups: groups}
	if g.c%groups != 0 || g.o%groups != 0 || w.Shape[1] != g.c/groups || g.kh < 1 || g.kw < 1 ||
		g.h+2*ph < g.kh || g.w+2*pw < g.kw || (bias != nil && !sameShape(bias.Shape, []int{g.o})) {
		return convGeom{}, false
	}
	g.ho, g.wo = (g.h+2*ph-g.kh)/stride+1, (g.w+2*pw-g.kw)/stride+1
	g.cb = max(1, convChunkElems/(g.ho*g.wo*g.k()))
	if t, ok := g.transposed(); ok {
		g.cb = max(1, min(g.cb, convChunkElems/(t.ho*t.wo*t.k())))
	}
	g.nc = ceilDiv(g.b, g.cb)
	g.nw = max(1, min(Threads(), g.nc))
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

// patchRows writes the patch rows of channel group gi of the nb images
// x (nb, C, H, W) into p (nb·Ho·Wo, K): row (b·Ho + oh)·Wo + ow, column
// (c·KH + kh)·KW + kw holds x[b, gi·C/groups + c, oh·stride − padH + kh,
// ow·stride − padW + kw], or 0 in the padding. Each kernel row is a run of
// KW adjacent input pixels, whatever the stride.
func patchRows[T Float](p, x []T, g *convGeom, nb, gi int) {
	k, l, cg, hw := g.k(), g.ho*g.wo, g.c/g.groups, g.h*g.w
	owLo, owHi := validRange(g.w, g.wo, g.stride, g.pw, 0) // first tap inside
	_, owIn := validRange(g.w, g.wo, g.stride, g.pw, g.kw-1)
	owHi = min(owHi, owIn) // [owLo, owHi): the whole kernel row inside
	for bi := range nb {
		for oh := range g.ho {
			rows := p[(bi*l+oh*g.wo)*k : (bi*l+(oh+1)*g.wo)*k]
			for c := range cg {
				xc := x[(bi*g.c+gi*cg+c)*hw : (bi*g.c+gi*cg+c+1)*hw]
				for kh := range g.kh {
					off := (c*g.kh + kh) * g.kw
					ih := oh*g.stride - g.ph + kh
					if ih < 0 || ih >= g.h {
						for ow := range g.wo {
							clear(rows[ow*k+off : ow*k+off+g.kw])
						}
						continue
					}
					xr := xc[ih*g.w : (ih+1)*g.w]
					copyRuns(rows[off:], xr, k, owLo, owHi, g.stride, g.pw, g.kw)
					for ow := 0; ow < g.wo; ow++ { // the edges, where the kernel row leaves the image
						if ow == owLo && owLo < owHi {
							if ow = owHi; ow >= g.wo { // [owLo, owHi) is done by copyRuns
								break
							}
						}
						d, iw := rows[ow*k+off:ow*k+off+g.kw], ow*g.stride-g.pw
						for j := range d {
							var v T
							if iw+j >= 0 && iw+j < len(xr) {
								v = xr[iw+j]
							}
							d[j] = v
						}
					}
				}
			}
		}
	}
}

// copyRuns copies, for ow in [lo, hi), the kw input pixels
// xr[ow·stride − pad:][:kw] to dst[ow·ld:][:kw]: the interior kernel rows
// of patchRows, unrolled for the common kernel widths.
func copyRuns[T Float](dst, xr []T, ld, lo, hi, stride, pad, kw int) {
	switch kw {
	case 2:
		for ow := lo; ow < hi; ow++ {
			*(*[2]T)(dst[ow*ld:]) = *(*[2]T)(xr[ow*stride-pad:])
		}
	case 3:
		for ow := lo; ow < hi; ow++ {
			d, s := dst[ow*ld:ow*ld+3], xr[ow*stride-pad:ow*stride-pad+3]
			*(*[2]T)(d) = *(*[2]T)(s)
			d[2] = s[2]
		}
	case 5:
		for ow := lo; ow < hi; ow++ {
			d, s := dst[ow*ld:ow*ld+5], xr[ow*stride-pad:ow*stride-pad+5]
			*(*[4]T)(d) = *(*[4]T)(s)
			d[4] = s[4]
		}
	default:
		for ow := lo; ow < hi; ow++ {
			copy(dst[ow*ld:ow*ld+kw], xr[ow*stride-pad:])
		}
	}
}

// col2imRows adds the patch-row gradient dp (nb·Ho·Wo, K) back into
// channel group gi of the nb images dx (nb, C, H, W): the adjoint of patchRows.
func col2imRows[T Float](dx, dp []T, g *convGeom, nb, gi int) {
	k, l, cg, hw := g.k(), g.ho*g.wo, g.c/g.groups, g.h*g.w
	for bi := range nb {
		for oh := range g.ho {
			rows := dp[(bi*l+oh*g.wo)*k : (bi*l+(oh+1)*g.wo)*k]
			for c := range cg {
				dxc := dx[(bi*g.c+gi*cg+c)*hw : (bi*g.c+gi*cg+c+1)*hw]
				for kh := range g.kh {
					off := (c*g.kh + kh) * g.kw
					ih := oh*g.stride - g.ph + kh
					if ih < 0 || ih >= g.h {
						continue
					}
					dr := dxc[ih*g.w : (ih+1)*g.w]
					for ow := range g.wo {
						s := rows[ow*k+off : ow*k+off+g.kw]
						iw := ow*g.stride - g.pw
						for j, v := range s {
							if iw+j >= 0 && iw+j < len(dr) {
								dr[iw+j] += v
							}
						}
					}
				}
			}
		}
	}
}

// rowsToPlanes writes (or, with add, adds) the row layout src (nb·L, n)
// into the plane layout dst (nb, n, L): dst[b, j, i] = src[b·L + i, j].
func rowsToPlanes[T Float](dst, src []T, nb, l, n int, add bool) {
	for bi := range nb {
		s := src[bi*l*n : (bi+1)*l*n]
		for j := range n {
			d := dst[(bi*n+j)*l : (bi*n+j+1)*l]
			if add {
				for i := range d {
					d[i] += s[i*n+j]
				}
			} else {
				for i := range d {
					d[i] = s[i*n+j]
				}
			}
		}
	}
}

// planesToRows writes the plane layout src (nb, n, L) into the row layout
// dst (nb·L, n): the inverse of rowsToPlanes.
func planesToRows[T Float](dst, src []T, nb, l, n int) {
	for bi := range nb {
		d := dst[bi*l*n : (bi+1)*l*n]
		for j := range n {
			s := src[(bi*n+j)*l : (bi*n+j+1)*l]
			for i, v := range s {
				d[i*n+j] = v
			}
		}
	}
}

// flipKernels writes into f (C, O/groups, KH, KW) the kernels of the
// transposed convolution of w (O, C/groups, KH, KW):
// f[g·C/groups + c, o, kh, kw] = w[g·O/groups + o, c, KH−1−kh, KW−1−kw].
func flipKernels[T Float](f, w []T, g *convGeom) {
	og, cg, kk := g.o/g.groups, g.c/g.groups, g.kh*g.kw
	for gi := range g.groups {
		for o := range og {
			for c := range cg {
				src := w[((gi*og+o)*cg+c)*kk : ((gi*og+o)*cg+c+1)*kk]
				dst := f[((gi*cg+c)*og+o)*kk : ((gi*cg+c)*og+o+1)*kk]
				for i, v := range src {
					dst[kk-1-i] = v
				}
			}
		}
	}
}

// chunk returns the images [b0, b1) of chunk ch.
func (g *convGeom) chunk(ch int) (b0, b1 int) { return ch * g.cb, min(g.b, (ch+1)*g.cb) }

// conv2dRowsForward computes out (B, O, Ho, Wo) chunk by chunk: per group
// Yᵀ_g (rows, O/groups) = bias + P_g·W_gᵀ into the columns of Yᵀ (rows, O),
// then out = Yᵀ transposed. work holds g.nw slots of g.slot(false) or more.
func conv2dRowsForward[T Float](out, x, w, bias, work []T, g *convGeom) {
	runPooled[T](&convForwardJobs, convForwardJob[T]{out: out, x: x, w: w, bias: bias, work: work, g: *g}, g.nw, 1, false)
}

// convForwardJob is conv2dRowsForward on a range of work slots (a pooled
// job; the geometry is copied in, so nothing escapes).
type convForwardJob[T Float] struct {
	out, x, w, bias, work []T
	g                     convGeom
}

var convForwardJobs [2]sync.Pool // [0] float32, [1] float64

func (j *convForwardJob[T]) run(slo, shi int) {
	out, x, w, bias, work, g := j.out, j.x, j.w, j.bias, j.work, &j.g
	l, k, og := g.ho*g.wo, g.k(), g.o/g.groups
	ro, slot := g.yRows(), len(work)/g.nw
	for s := slo; s < shi; s++ {
		yt, p := work[s*slot:s*slot+ro], work[s*slot+ro:(s+1)*slot]
		for ch := s * g.nc / g.nw; ch < (s+1)*g.nc/g.nw; ch++ {
			b0, b1 := g.chunk(ch)
			nb := b1 - b0
			if og >= convWideO { // out_b,g (O/groups, L) = bias + W_g·P_bᵀ, image by image
				ob := out[b0*g.o*l : b1*g.o*l]
				for i := range nb * g.o {
					fillBias(ob[i*l:(i+1)*l], bias, i%g.o)
				}
				for gi := range g.groups {
					patchRows(p, x[b0*g.c*g.h*g.w:], g, nb, gi)
					for bi := range nb {
						gemmSerial(false, true, og, l, k, w[gi*og*k:], k, p[bi*l*k:], k, ob[(bi*g.o+gi*og)*l:], l, true)
					}
				}
				continue
			}
			for i := range nb * l { // Yᵀ starts at the bias, the taps accumulate onto it
				fillBias(yt[i*g.o:(i+1)*g.o], bias, -1)
			}
			for gi := range g.groups {
				patchRows(p, x[b0*g.c*g.h*g.w:], g, nb, gi)
				gemmSerial(false, true, nb*l, og, k, p, k, w[gi*og*k:], k, yt[gi*og:], g.o, true)
			}
			rowsToPlanes(out[b0*g.o*l:], yt, nb, l, g.o, false)
		}
	}
}

// convWideO is the number of output channels per group from which the
// GEMMs run image by image on the (O, L) planes of y and dy: out_b,g =
// W_g·P_bᵀ, dW_g += dy_b,g·P_b, dP_b = dy_b,gᵀ·W_g. With many output
// channels those products fill the register tiles, and they save
// transposing between planes and rows (rows, O), which costs most when K
// is short (the patch embedding's 12).
const convWideO = 32

// fillBias sets d to bias[o], or, for o < 0, to bias (len(d)); to 0 for a nil bias.
func fillBias[T Float](d, bias []T, o int) {
	switch {
	case bias == nil:
		clear(d)
	case o < 0:
		copy(d, bias)
	default:
		bv := bias[o]
		for i := range d {
			d[i] = bv
		}
	}
}

// conv2dRowsBackward accumulates dx and dW of the general path (see
// conv2dBackward) from dy (B, O, Ho, Wo). work is the forward's slots;
// flipped holds flipKernels(w) when dx runs as a transposed convolution;
// parts holds a (O, K) weight-gradient partial per chunk.
func conv2dRowsBackward[T Float](x, w *Tensor[T], dy, work, flipped, parts []T, g *convGeom) {
	dx, dw := x.Grad != nil, w.Grad != nil
	if !dx && !dw {
		return
	}
	runPooled[T](&convBackwardJobs, convBackwardJob[T]{x: x, w: w, dy: dy, work: work, flipped: flipped, parts: parts, g: *g}, g.nw, 1, false)
	if dw && g.nc > 0 { // dW += Σ_chunks partials, chunk 0 first
		runPooled[T](&convPartsJobs, convPartsJob[T]{dw: w.Grad, parts: parts, nc: g.nc}, len(w.Data), 1024, false)
	}
}

// convBackwardJob is conv2dRowsBackward on a range of work slots (a
// pooled job; the geometry is copied in, so nothing escapes).
type convBackwardJob[T Float] struct {
	x, w                     *Tensor[T]
	dy, work, flipped, parts []T
	g                        convGeom
}

var convBackwardJobs [2]sync.Pool // [0] float32, [1] float64

func (j *convBackwardJob[T]) run(slo, shi int) {
	x, w, dy, work, flipped, parts, g := j.x, j.w, j.dy, j.work, j.flipped, j.parts, &j.g
	dx, dw := x.Grad != nil, w.Grad != nil
	l, k, og, cg := g.ho*g.wo, g.k(), g.o/g.groups, g.c/g.groups
	t, tconv := g.transposed()
	tconv = tconv && dx
	ro, rt, kt, slot := g.yRows(), g.cb*t.ho*t.wo, 0, len(work)/g.nw
	if tconv {
		kt = t.k()
	}
	nw, wide := len(w.Data), og >= convWideO // wide: dy stays in planes (no dYᵀ)
	for s := slo; s < shi; s++ {
		ws := work[s*slot : (s+1)*slot]
		dyt, z, p := ws[:ro], ws[ro:ro], ws[ro:]
		if tconv {
			z, p = ws[ro:ro+rt*g.c], ws[ro+rt*g.c:]
		}
		for ch := s * g.nc / g.nw; ch < (s+1)*g.nc/g.nw; ch++ {
			b0, b1 := g.chunk(ch)
			nb := b1 - b0
			dyc := dy[b0*g.o*l : b1*g.o*l]
			if !wide {
				planesToRows(dyt, dyc, nb, l, g.o)
			}
			for gi := range g.groups {
				wg, pw := w.Data[gi*og*k:], parts[min(ch*nw+gi*og*k, len(parts)):]
				if dw {
					patchRows(p, x.Data[b0*g.c*g.h*g.w:], g, nb, gi)
					if wide { // dW_g += dy_b,g·P_b image by image, in order
						for bi := range nb {
							gemmSerial(false, false, og, k, l, dyc[(bi*g.o+gi*og)*l:], l, p[bi*l*k:], k, pw, k, bi > 0)
						}
					} else {
						gemmSerial(true, false, og, k, nb*l, dyt[gi*og:], g.o, p, k, pw, k, false)
					}
				}
				switch {
				case tconv:
					patchRows(p, dyc, &t, nb, gi)
					gemmSerial(false, true, nb*t.ho*t.wo, cg, kt, p, kt, flipped[gi*cg*kt:], kt, z[gi*cg:], g.c, false)
				case dx && wide: // dP_b = dy_b,gᵀ·W_g
					for bi := range nb {
						gemmSerial(true, false, l, k, og, dyc[(bi*g.o+gi*og)*l:], l, wg, k, p[bi*l*k:], k, false)
					}
					col2imRows(x.Grad[b0*g.c*g.h*g.w:], p, g, nb, gi)
				case dx:
					gemmSerial(false, false, nb*l, k, og, dyt[gi*og:], g.o, wg, k, p, k, false)
					col2imRows(x.Grad[b0*g.c*g.h*g.w:], p, g, nb, gi)
				}
			}
			if tconv {
				rowsToPlanes(x.Grad[b0*g.c*g.h*g.w:], z, nb, g.h*g.w, g.c, true)
			}
		}
	}
}

// convPartsJob adds the per-chunk weight-gradient partials parts (nc
// blocks of len(dw)) into dw, chunk 0 first, for a range of entries (a
// pooled job).
type convPartsJob[T Float] struct {
	dw, parts []T
	nc        int
}

var convPartsJobs [2]sync.Pool // [0] float32, [1] float64

func (j *convPartsJob[T]) run(lo, hi int) {
	nw := len(j.dw)
	for i := lo; i < hi; i++ {
		sum := j.parts[i]
		for ch := 1; ch < j.nc; ch++ {
			sum += j.parts[ch*nw+i]
		}
		j.dw[i] += sum
	}
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
					owLo, owHi := validRange(g.w, g.wo, g.stride, g.pw, kw)
					for oh := range g.ho {
						ih := oh*g.stride - g.ph + kh
						if ih < 0 || ih >= g.h || owLo >= owHi {
							continue
						}
						dst, base := op[oh*g.wo:(oh+1)*g.wo], ih*g.w-g.pw+kw
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
						owLo, owHi := validRange(g.w, g.wo, g.stride, g.pw, kw)
						for oh := range g.ho {
							ih := oh*g.stride - g.ph + kh
							if ih < 0 || ih >= g.h || owLo >= owHi {
								continue
							}
							src, base := gp[oh*g.wo:(oh+1)*g.wo], ih*g.w-g.pw+kw
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
						owLo, owHi := validRange(g.w, g.wo, g.stride, g.pw, kw)
						var s T
						for oh := range g.ho {
							ih := oh*g.stride - g.ph + kh
							if ih < 0 || ih >= g.h || owLo >= owHi {
								continue
							}
							gr, base := gp[oh*g.wo:(oh+1)*g.wo], ih*g.w-g.pw+kw
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
