// This file holds the rotations of queries or keys, forward beside
// backward: Rotate, the RoPE pair rotation (the op behind rope-axial,
// rope-mixed and rope-1d in rope.go), and RotateBlocks, one
// matrix per channel block and token (ComRoPE, LieRE, STRING). Work splits
// over (batch, head) items for x's gradient and over table rows for the
// tables' gradients, in fixed ranges: bit-identical for any thread count.

package loope

import "fmt"

// Rotate applies the RoPE rotation (docs/pe-zoo.md §14) to adjacent channel pairs
// of x (B, H, N, Dh) for tokens skip..N−1; tokens before skip (the CLS token
// when skip = 1) pass through unchanged. cos and sin are (Hc, N−skip, Dh/2)
// with Hc = 1 (shared over heads) or H. For a = x[..., 2j], b = x[..., 2j+1]
// and the angle table entries c, s of that head, token and pair:
// out[..., 2j] = a·c − b·s, out[..., 2j+1] = a·s + b·c. Gradients flow to x,
// cos and sin (RoPE-Mixed learns its frequencies). Shape (B, H, N, Dh).
func (tp *Tape[T]) Rotate(x, cos, sin *Tensor[T], skip int) *Tensor[T] {
	ok := cos != nil && sin != nil && len(x.Shape) == 4 && x.Shape[3]%2 == 0 && skip >= 0 && skip <= x.Shape[2] &&
		len(cos.Shape) == 3 && sameShape(cos.Shape, sin.Shape)
	if ok {
		hc := cos.Shape[0]
		ok = (hc == 1 || hc == x.Shape[1]) && cos.Shape[1] == x.Shape[2]-skip && cos.Shape[2] == x.Shape[3]/2
	}
	if !ok {
		panic(fmt.Sprintf("loope: Rotate: shape mismatch x %v, cos %v, sin %v, skip %d (want cos, sin (1 or H, N−skip, Dh/2))",
			x.Shape, shapeOrNil(cos), shapeOrNil(sin), skip))
	}
	b, h, n, dh := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	hc, half, nr := cos.Shape[0], dh/2, n-skip
	out := tp.out(x.Shape, x, cos, sin)
	parallelFor(b*h, max(1, 4096/max(n*dh, 1)), func(lo, hi int) {
		for it := lo; it < hi; it++ {
			xi, oi := x.Data[it*n*dh:(it+1)*n*dh], out.Data[it*n*dh:(it+1)*n*dh]
			copy(oi[:skip*dh], xi[:skip*dh])
			ao := (it % h % hc) * nr * half // angle table offset of this head
			for t := range nr {
				xr, or := xi[(skip+t)*dh:(skip+t+1)*dh], oi[(skip+t)*dh:(skip+t+1)*dh]
				c, s := cos.Data[ao+t*half:ao+(t+1)*half], sin.Data[ao+t*half:ao+(t+1)*half]
				for j := range half {
					a, bb := xr[2*j], xr[2*j+1]
					or[2*j] = a*c[j] - bb*s[j]
					or[2*j+1] = a*s[j] + bb*c[j]
				}
			}
		}
	})
	if out.Grad != nil {
		nd := tp.record(rotateBackward[T]{}, out, x, cos, sin)
		*attrsOf[rotateAttrs](nd) = rotateAttrs{skip: skip}
	}
	return out
}

// rotateBackward, per pair with g0 = dout[2j], g1 = dout[2j+1]:
// da += g0·c + g1·s, db += −g0·s + g1·c, dc += g0·a + g1·b, ds += −g0·b + g1·a,
// with dc, ds summed over B (and over H when Hc = 1) in a fixed order.
type rotateBackward[T Float] struct{}

// rotateAttrs are the node attributes of Rotate and RotateBlocks: the
// tokens left unrotated.
type rotateAttrs struct{ skip int }

func (rotateBackward[T]) backward(nd *node[T]) {
	x, cos, sin, out := nd.in[0], nd.in[1], nd.in[2], nd.out
	skip := attrsOf[rotateAttrs](nd).skip
	b, h, n, dh := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	hc, half, nr := cos.Shape[0], dh/2, n-skip
	if x.Grad != nil {
		parallelFor(b*h, max(1, 4096/max(n*dh, 1)), func(lo, hi int) {
			for it := lo; it < hi; it++ {
				gi, dxi := out.Grad[it*n*dh:(it+1)*n*dh], x.Grad[it*n*dh:(it+1)*n*dh]
				for i, g := range gi[:skip*dh] {
					dxi[i] += g
				}
				ao := (it % h % hc) * nr * half
				for t := range nr {
					gr, dr := gi[(skip+t)*dh:(skip+t+1)*dh], dxi[(skip+t)*dh:(skip+t+1)*dh]
					c, s := cos.Data[ao+t*half:ao+(t+1)*half], sin.Data[ao+t*half:ao+(t+1)*half]
					for j := range half {
						g0, g1 := gr[2*j], gr[2*j+1]
						dr[2*j] += g0*c[j] + g1*s[j]
						dr[2*j+1] += g1*c[j] - g0*s[j]
					}
				}
			}
		})
	}
	if cos.Grad == nil && sin.Grad == nil {
		return
	}
	hpc := h / hc // heads sharing one angle table
	parallelFor(hc*nr, max(1, 4096/max(b*hpc*dh, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			a0, t := r/nr, r%nr
			var dc, ds []T
			if cos.Grad != nil {
				dc = cos.Grad[r*half : (r+1)*half]
			}
			if sin.Grad != nil {
				ds = sin.Grad[r*half : (r+1)*half]
			}
			for bi := range b {
				for hh := a0 * hpc; hh < (a0+1)*hpc; hh++ {
					off := ((bi*h+hh)*n + skip + t) * dh
					xr, gr := x.Data[off:off+dh], out.Grad[off:off+dh]
					for j := range half {
						a, bb, g0, g1 := xr[2*j], xr[2*j+1], gr[2*j], gr[2*j+1]
						if dc != nil {
							dc[j] += g0*a + g1*bb
						}
						if ds != nil {
							ds[j] += g1*a - g0*bb
						}
					}
				}
			}
		}
	})
}

// RotateBlocks applies one b×b matrix per channel block to x (B, H, N, Dh)
// for tokens skip..N−1 (tokens before skip pass through): with
// r (Hr, N−skip, Dh/b, b, b), Hr = 1 (shared over heads) or H, block j of
// token skip+t of head h becomes r[h mod Hr, t, j]·x[..., jb:(j+1)b]. It is
// the generalised rotation of ComRoPE, LieRE and STRING (b = Dh for a dense
// Dh×Dh matrix). Gradients flow to x and r. Shape (B, H, N, Dh).
func (tp *Tape[T]) RotateBlocks(x, r *Tensor[T], skip int) *Tensor[T] {
	ok := r != nil && len(x.Shape) == 4 && len(r.Shape) == 5 && skip >= 0 && skip <= x.Shape[2]
	if ok {
		bs := r.Shape[4]
		ok = bs > 0 && r.Shape[3] == bs && (r.Shape[0] == 1 || r.Shape[0] == x.Shape[1]) &&
			r.Shape[1] == x.Shape[2]-skip && r.Shape[2]*bs == x.Shape[3]
	}
	if !ok {
		panic(fmt.Sprintf("loope: RotateBlocks: shape mismatch x %v, r %v, skip %d (want r (1 or H, N−skip, Dh/b, b, b))",
			x.Shape, shapeOrNil(r), skip))
	}
	b, h, n, dh := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	hr, nr, bs := r.Shape[0], n-skip, r.Shape[4]
	rt := dh * bs // elements of one token's matrices
	out := tp.outNoZero(x.Shape, x, r)
	parallelFor(b*h, max(1, 4096/max(n*dh*bs, 1)), func(lo, hi int) {
		for it := lo; it < hi; it++ {
			xi, oi := x.Data[it*n*dh:(it+1)*n*dh], out.Data[it*n*dh:(it+1)*n*dh]
			copy(oi[:skip*dh], xi[:skip*dh])
			ro := (it % h % hr) * nr * rt
			for t := range nr {
				xr, or := xi[(skip+t)*dh:(skip+t+1)*dh], oi[(skip+t)*dh:(skip+t+1)*dh]
				rm := r.Data[ro+t*rt : ro+(t+1)*rt]
				for j0 := 0; j0 < dh; j0 += bs {
					xb, m := xr[j0:j0+bs], rm[j0*bs:(j0+bs)*bs]
					for i := range bs {
						var s T
						for k, v := range m[i*bs : (i+1)*bs] {
							s += v * xb[k]
						}
						or[j0+i] = s
					}
				}
			}
		}
	})
	if out.Grad != nil {
		nd := tp.record(rotateBlocksBackward[T]{}, out, x, r)
		*attrsOf[rotateAttrs](nd) = rotateAttrs{skip: skip}
	}
	return out
}

// rotateBlocksBackward, per block with g = dout and m its matrix:
// dx += mᵀ·g, dm += g·xᵀ, summed over B (and over H when Hr = 1) in a fixed
// order.
type rotateBlocksBackward[T Float] struct{}

func (rotateBlocksBackward[T]) backward(nd *node[T]) {
	x, r, out := nd.in[0], nd.in[1], nd.out
	skip := attrsOf[rotateAttrs](nd).skip
	b, h, n, dh := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	hr, nr, bs := r.Shape[0], n-skip, r.Shape[4]
	rt := dh * bs
	if x.Grad != nil {
		parallelFor(b*h, max(1, 4096/max(n*dh*bs, 1)), func(lo, hi int) {
			for it := lo; it < hi; it++ {
				gi, dxi := out.Grad[it*n*dh:(it+1)*n*dh], x.Grad[it*n*dh:(it+1)*n*dh]
				for i, g := range gi[:skip*dh] {
					dxi[i] += g
				}
				ro := (it % h % hr) * nr * rt
				for t := range nr {
					gr, dr := gi[(skip+t)*dh:(skip+t+1)*dh], dxi[(skip+t)*dh:(skip+t+1)*dh]
					rm := r.Data[ro+t*rt : ro+(t+1)*rt]
					for j0 := 0; j0 < dh; j0 += bs {
						m := rm[j0*bs : (j0+bs)*bs]
						for i := range bs {
							g := gr[j0+i]
							for k, v := range m[i*bs : (i+1)*bs] {
								dr[j0+k] += v * g
							}
						}
					}
				}
			}
		})
	}
	if r.Grad == nil {
		return
	}
	hpr := h / hr // heads sharing one matrix table
	parallelFor(hr*nr, max(1, 4096/max(b*hpr*rt, 1)), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			a0, t := row/nr, row%nr
			dm := r.Grad[row*rt : (row+1)*rt]
			for bi := range b {
				for hh := a0 * hpr; hh < (a0+1)*hpr; hh++ {
					off := ((bi*h+hh)*n + skip + t) * dh
					xr, gr := x.Data[off:off+dh], out.Grad[off:off+dh]
					for j0 := 0; j0 < dh; j0 += bs {
						d := dm[j0*bs : (j0+bs)*bs]
						for i := range bs {
							g := gr[j0+i]
							for k := range bs {
								d[i*bs+k] += g * xr[j0+k]
							}
						}
					}
				}
			}
		}
	})
}
