// This file holds the plain float64 twin, in the reference-layer style of
// ref_ops.go, of the kernel CrossViT adds in ops_crossvit.go: the bicubic
// branch resize, here as dense products with the (out, in) weight
// matrices of bicubicWeights. CrossAttention is a composition of existing
// ops and has none.

package loope

// RefResizeBicubicForward computes out = Rh·X·Rwᵀ for each of the planes
// X (h, w) of x (planes, h, w) into out (planes, oh, ow), with Rh (oh, h)
// and Rw (ow, w) PyTorch's bicubic weights (align_corners=False, no
// antialias).
func RefResizeBicubicForward(out, x []float64, planes, h, w, oh, ow int) {
	rh, rw := bicubicWeights(h, oh, false), bicubicWeights(w, ow, false)
	for p := 0; p < planes; p++ {
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				s := 0.0
				for r := 0; r < h; r++ {
					for c := 0; c < w; c++ {
						s += rh[i*h+r] * x[(p*h+r)*w+c] * rw[j*w+c]
					}
				}
				out[(p*oh+i)*ow+j] = s
			}
		}
	}
}

// RefResizeBicubicBackward adds dx += Rhᵀ·dOut·Rw per plane for the output
// gradient dout (planes, oh, ow).
func RefResizeBicubicBackward(dx, dout []float64, planes, h, w, oh, ow int) {
	rh, rw := bicubicWeights(h, oh, false), bicubicWeights(w, ow, false)
	for p := 0; p < planes; p++ {
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				g := dout[(p*oh+i)*ow+j]
				for r := 0; r < h; r++ {
					for c := 0; c < w; c++ {
						dx[(p*h+r)*w+c] += rh[i*h+r] * g * rw[j*w+c]
					}
				}
			}
		}
	}
}
