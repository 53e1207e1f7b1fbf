// This file extends the reference layer (ref_ops.go) with the kernels the
// CNN reference models add (docs/cnn.md): max and average pooling and the
// bilinear resize, written out plainly on float64 slices in the same style
// (each Forward above its Backward, Backwards add into their gradients).
// ref_cnn_test.go checks the Tape's MaxPool2d, AvgPool2d and
// ResizeBilinear against them in float32 and float64.

package loope

import "math"

// RefPool is the geometry of a square 2-D pooling window as nn.MaxPool2d
// and nn.AvgPool2d in floor mode: input (B, C, H, W), output (B, C, Ho, Wo)
// with Ho = (H + 2·Pad − K)/Stride + 1 and Wo likewise.
type RefPool struct {
	B, C, H, W, K, Stride, Pad int
}

// out returns Ho, Wo.
func (g RefPool) out() (int, int) {
	return (g.H+2*g.Pad-g.K)/g.Stride + 1, (g.W+2*g.Pad-g.K)/g.Stride + 1
}

// RefMaxPool2dForward sets out (B, C, Ho, Wo) to the window maxima of x,
// the padding being −∞ (ties: the first in row-major window order; NaN
// wins), and arg (B·C·Ho·Wo) to the flat x index of each maximum.
func RefMaxPool2dForward(out []float64, arg []int, x []float64, g RefPool) {
	ho, wo := g.out()
	for p := range g.B * g.C {
		for oh := range ho {
			for ow := range wo {
				best, bi := math.Inf(-1), -1
				for kh := range g.K {
					for kw := range g.K {
						ih, iw := oh*g.Stride-g.Pad+kh, ow*g.Stride-g.Pad+kw
						if ih < 0 || ih >= g.H || iw < 0 || iw >= g.W {
							continue
						}
						xi := (p*g.H+ih)*g.W + iw
						if v := x[xi]; bi < 0 || v > best || math.IsNaN(v) {
							best, bi = v, xi
						}
					}
				}
				out[(p*ho+oh)*wo+ow], arg[(p*ho+oh)*wo+ow] = best, bi
			}
		}
	}
}

// RefMaxPool2dBackward adds dout (B, C, Ho, Wo) to dx at the maxima arg.
func RefMaxPool2dBackward(dx, dout []float64, arg []int) {
	for o, d := range dout {
		dx[arg[o]] += d
	}
}

// RefAvgPool2dForward sets out (B, C, Ho, Wo) to the window means of x:
// the sum over the window's pixels inside the image, divided by K² with
// countIncludePad, else by their number.
func RefAvgPool2dForward(out, x []float64, g RefPool, countIncludePad bool) {
	ho, wo := g.out()
	for p := range g.B * g.C {
		for oh := range ho {
			for ow := range wo {
				s, n := 0.0, 0
				for kh := range g.K {
					for kw := range g.K {
						ih, iw := oh*g.Stride-g.Pad+kh, ow*g.Stride-g.Pad+kw
						if ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
							s += x[(p*g.H+ih)*g.W+iw]
							n++
						}
					}
				}
				if countIncludePad {
					n = g.K * g.K
				}
				out[(p*ho+oh)*wo+ow] = s / float64(n)
			}
		}
	}
}

// RefAvgPool2dBackward adds the gradient of Σ out⊙dout to dx (B, C, H, W).
func RefAvgPool2dBackward(dx, dout []float64, g RefPool, countIncludePad bool) {
	ho, wo := g.out()
	for p := range g.B * g.C {
		for oh := range ho {
			for ow := range wo {
				var idx []int
				for kh := range g.K {
					for kw := range g.K {
						ih, iw := oh*g.Stride-g.Pad+kh, ow*g.Stride-g.Pad+kw
						if ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
							idx = append(idx, (p*g.H+ih)*g.W+iw)
						}
					}
				}
				n := len(idx)
				if countIncludePad {
					n = g.K * g.K
				}
				for _, i := range idx {
					dx[i] += dout[(p*ho+oh)*wo+ow] / float64(n)
				}
			}
		}
	}
}

// RefResizeBilinearForward sets out (planes, ho, wo) to the bilinear
// resize of x (planes, h, w) with align_corners=False: output pixel o
// samples the input at (o + ½)·h/ho − ½ (clamped at 0) along each axis.
func RefResizeBilinearForward(out, x []float64, planes, h, w, ho, wo int) {
	for p := range planes {
		for oh := range ho {
			for ow := range wo {
				s := 0.0
				for _, t := range refBilinearTaps(oh, ow, h, w, ho, wo) {
					s += t.wt * x[p*h*w+t.i]
				}
				out[(p*ho+oh)*wo+ow] = s
			}
		}
	}
}

// RefResizeBilinearBackward adds the gradient of Σ out⊙dout to dx
// (planes, h, w).
func RefResizeBilinearBackward(dx, dout []float64, planes, h, w, ho, wo int) {
	for p := range planes {
		for oh := range ho {
			for ow := range wo {
				for _, t := range refBilinearTaps(oh, ow, h, w, ho, wo) {
					dx[p*h*w+t.i] += t.wt * dout[(p*ho+oh)*wo+ow]
				}
			}
		}
	}
}

// refTap is one input pixel (index i in its plane) of a resized pixel,
// with its weight.
type refTap struct {
	i  int
	wt float64
}

// refBilinearTaps returns the four taps of output pixel (oh, ow).
func refBilinearTaps(oh, ow, h, w, ho, wo int) [4]refTap {
	src := func(o, n, m int) (int, int, float64) {
		s := max((float64(o)+0.5)*float64(n)/float64(m)-0.5, 0)
		i0 := int(math.Floor(s))
		return i0, min(i0+1, n-1), s - float64(i0)
	}
	h0, h1, lh := src(oh, h, ho)
	w0, w1, lw := src(ow, w, wo)
	return [4]refTap{{h0*w + w0, (1 - lh) * (1 - lw)}, {h0*w + w1, (1 - lh) * lw},
		{h1*w + w0, lh * (1 - lw)}, {h1*w + w1, lh * lw}}
}
