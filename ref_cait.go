// This file holds the plain float64 twins, in the reference-layer style of
// ref_ops.go (loops over flat slices, no tape), of the kernels CaiT adds in
// ops_cait.go: the talking-heads mixing HeadMix and the LayerScale
// residual. ClassAttention is a composition of existing ops and has none.

package loope

// RefHeadMixForward computes out[b, g, p] = Σ_h w[g, h]·x[b, h, p] + bias[g]
// for x, out (b, h, nm) and w (h, h), bias (h): timm's talking-heads
// proj_l / proj_w over the head axis of (B, H, N, M) attention maps.
func RefHeadMixForward(out, x, w, bias []float64, b, h, nm int) {
	for bi := 0; bi < b; bi++ {
		for g := 0; g < h; g++ {
			for p := 0; p < nm; p++ {
				s := bias[g]
				for k := 0; k < h; k++ {
					s += w[g*h+k] * x[(bi*h+k)*nm+p]
				}
				out[(bi*h+g)*nm+p] = s
			}
		}
	}
}

// RefHeadMixBackward adds the gradients of RefHeadMixForward for the output
// gradient dout: dx += wᵀ·dout, dw += dout·xᵀ, dbias += Σ dout.
func RefHeadMixBackward(dx, dw, dbias, dout, x, w []float64, b, h, nm int) {
	for bi := 0; bi < b; bi++ {
		for g := 0; g < h; g++ {
			for p := 0; p < nm; p++ {
				d := dout[(bi*h+g)*nm+p]
				dbias[g] += d
				for k := 0; k < h; k++ {
					dw[g*h+k] += d * x[(bi*h+k)*nm+p]
					dx[(bi*h+k)*nm+p] += w[g*h+k] * d
				}
			}
		}
	}
}

// RefLayerScaleForward computes out = x + γ⊙y for x, y, out (rows, d) and
// gamma (d).
func RefLayerScaleForward(out, x, y, gamma []float64, rows, d int) {
	for r := 0; r < rows; r++ {
		for j := 0; j < d; j++ {
			out[r*d+j] = x[r*d+j] + gamma[j]*y[r*d+j]
		}
	}
}

// RefLayerScaleBackward adds the gradients of RefLayerScaleForward for the
// output gradient dout: dx += dout, dy += γ⊙dout, dγ += Σ_rows dout⊙y.
func RefLayerScaleBackward(dx, dy, dgamma, dout, y, gamma []float64, rows, d int) {
	for r := 0; r < rows; r++ {
		for j := 0; j < d; j++ {
			g := dout[r*d+j]
			dx[r*d+j] += g
			dy[r*d+j] += gamma[j] * g
			dgamma[j] += g * y[r*d+j]
		}
	}
}
