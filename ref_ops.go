// This file and ref_vit.go are the reference layer: the math of one ViT
// forward and backward pass written out plainly, in the spirit of llm.c's
// train_gpt2.c. Everything is float64 on flat row-major slices; each
// layer's Forward sits right above its Backward; a Backward adds into its
// gradient slices (the caller zeroes them once), so a tensor that feeds two
// layers simply receives both contributions. There are no goroutines, no
// arena, no fusion and no saved-state slices: what a Backward needs, its
// Forward returned.
//
// Reading target: a porter understands one whole ViT forward and backward
// (patch embedding, LOOPE or another additive PE or RoPE, the blocks, the
// head, the losses, one AdamW step) from these 2 files and their 26
// functions alone: 19 here and 7 in ref_vit.go.
//
// The fast path (the Tape and the ops_*.go files) answers to this layer:
// ref_vit_test.go checks the tape's logits, loss and every gradient against
// RefViTForward/RefViTBackward in float64, and each float32 kernel, fused
// or not, against the Ref op it replaces.
//
// Shapes use the legend of doc.go; each function's comment gives its own.

package loope

import "math"

// RefGemm adds op(A)·op(B) to c: c (m, n), op(A) (m, k), op(B) (k, n),
// where op(A) is A (m, k) or, with transA, Aᵀ of A (k, m); likewise B.
func RefGemm(c, a, b []float64, m, n, k int, transA, transB bool) {
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				av, bv := a[i*k+p], b[p*n+j]
				if transA {
					av = a[p*m+i]
				}
				if transB {
					bv = b[j*k+p]
				}
				s += av * bv
			}
			c[i*n+j] += s
		}
	}
}

// RefConv is the geometry of a 2-D convolution as PyTorch's nn.Conv2d:
// input (B, C, H, W), weight (O, C/Groups, KH, KW), output (B, O, Ho, Wo)
// with Ho = (H + 2·Pad − KH)/Stride + 1 and Wo likewise.
type RefConv struct {
	B, C, H, W, O, KH, KW, Stride, Pad, Groups int
}

// RefConv2dForward sets out (B, O, Ho, Wo) to the convolution of x
// (B, C, H, W) with w (O, C/Groups, KH, KW) plus bias (O) (nil: none),
// zero padding, as the direct seven-loop sum.
func RefConv2dForward(out, x, w, bias []float64, g RefConv) {
	ho, wo := (g.H+2*g.Pad-g.KH)/g.Stride+1, (g.W+2*g.Pad-g.KW)/g.Stride+1
	cg, og := g.C/g.Groups, g.O/g.Groups // input channels per group, outputs per group
	for b := range g.B {
		for o := range g.O {
			for oh := range ho {
				for ow := range wo {
					s := 0.0
					if bias != nil {
						s = bias[o]
					}
					for c := range cg {
						ci := o/og*cg + c
						for kh := range g.KH {
							for kw := range g.KW {
								ih, iw := oh*g.Stride-g.Pad+kh, ow*g.Stride-g.Pad+kw
								if ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
									s += w[((o*cg+c)*g.KH+kh)*g.KW+kw] * x[((b*g.C+ci)*g.H+ih)*g.W+iw]
								}
							}
						}
					}
					out[((b*g.O+o)*ho+oh)*wo+ow] = s
				}
			}
		}
	}
}

// RefConv2dBackward adds the gradients of Σ out⊙dout to dx (B, C, H, W),
// dw (O, C/Groups, KH, KW) and dbias (O); any of them may be nil.
func RefConv2dBackward(dx, dw, dbias, dout, x, w []float64, g RefConv) {
	ho, wo := (g.H+2*g.Pad-g.KH)/g.Stride+1, (g.W+2*g.Pad-g.KW)/g.Stride+1
	cg, og := g.C/g.Groups, g.O/g.Groups
	for b := range g.B {
		for o := range g.O {
			for oh := range ho {
				for ow := range wo {
					d := dout[((b*g.O+o)*ho+oh)*wo+ow]
					if dbias != nil {
						dbias[o] += d
					}
					for c := range cg {
						ci := o/og*cg + c
						for kh := range g.KH {
							for kw := range g.KW {
								ih, iw := oh*g.Stride-g.Pad+kh, ow*g.Stride-g.Pad+kw
								if ih < 0 || ih >= g.H || iw < 0 || iw >= g.W {
									continue
								}
								xi, wi := ((b*g.C+ci)*g.H+ih)*g.W+iw, ((o*cg+c)*g.KH+kh)*g.KW+kw
								if dx != nil {
									dx[xi] += w[wi] * d
								}
								if dw != nil {
									dw[wi] += x[xi] * d
								}
							}
						}
					}
				}
			}
		}
	}
}

// RefLayerNormForward normalises each row of x (rows, d) over its d values:
// out = (x − μ)·rstd·γ + β with the row mean μ and rstd = 1/√(σ² + eps),
// σ² the biased row variance. It stores μ and rstd (rows) for the backward.
// gamma, beta (d).
func RefLayerNormForward(out, mean, rstd, x, gamma, beta []float64, rows, d int, eps float64) {
	for i := range rows {
		xi := x[i*d : (i+1)*d]
		mu, v := 0.0, 0.0
		for _, e := range xi {
			mu += e
		}
		mu /= float64(d)
		for _, e := range xi {
			v += (e - mu) * (e - mu)
		}
		r := 1 / math.Sqrt(v/float64(d)+eps)
		for k, e := range xi {
			out[i*d+k] = (e-mu)*r*gamma[k] + beta[k]
		}
		mean[i], rstd[i] = mu, r
	}
}

// RefLayerNormBackward adds the gradients of LayerNorm to dx (rows, d),
// dgamma and dbeta (d). With n = (x − μ)·rstd and dn = dout·γ:
// dx = rstd·(dn − mean(dn) − n·mean(dn⊙n)), dγ = Σ dout⊙n, dβ = Σ dout.
func RefLayerNormBackward(dx, dgamma, dbeta, dout, x, gamma, mean, rstd []float64, rows, d int) {
	for i := range rows {
		xi, gi := x[i*d:(i+1)*d], dout[i*d:(i+1)*d]
		md, mdn := 0.0, 0.0 // mean(dn), mean(dn⊙n)
		for k, e := range xi {
			n := (e - mean[i]) * rstd[i]
			md += gi[k] * gamma[k] / float64(d)
			mdn += gi[k] * gamma[k] * n / float64(d)
			dgamma[k] += gi[k] * n
			dbeta[k] += gi[k]
		}
		for k, e := range xi {
			n := (e - mean[i]) * rstd[i]
			dx[i*d+k] += rstd[i] * (gi[k]*gamma[k] - md - n*mdn)
		}
	}
}

// RefLinearForward sets out (rows, nOut) to x·wᵀ + bias for x (rows, nIn),
// w (nOut, nIn) as nn.Linear stores it, and bias (nOut) or nil.
func RefLinearForward(out, x, w, bias []float64, rows, nIn, nOut int) {
	for r := range rows {
		for o := range nOut {
			out[r*nOut+o] = 0
			if bias != nil {
				out[r*nOut+o] = bias[o]
			}
		}
	}
	RefGemm(out, x, w, rows, nOut, nIn, false, true)
}

// RefLinearBackward adds dx += dout·w, dw += doutᵀ·x and dbias += Σ_rows dout;
// dx and dbias may be nil. Shapes as RefLinearForward.
func RefLinearBackward(dx, dw, dbias, dout, x, w []float64, rows, nIn, nOut int) {
	if dx != nil {
		RefGemm(dx, dout, w, rows, nIn, nOut, false, false)
	}
	RefGemm(dw, dout, x, nOut, nIn, rows, true, false)
	for r := 0; dbias != nil && r < rows; r++ {
		for o := range nOut {
			dbias[o] += dout[r*nOut+o]
		}
	}
}

// RefGELUForward sets out = x·Φ(x), the exact (erf) GELU of nn.GELU(),
// with Φ(x) = ½·erfc(−x/√2) the standard normal CDF. out, x (n).
func RefGELUForward(out, x []float64) {
	for i, v := range x {
		out[i] = v * 0.5 * math.Erfc(-v/math.Sqrt2)
	}
}

// RefGELUBackward adds dx += dout·(Φ(x) + x·φ(x)), φ the normal density.
func RefGELUBackward(dx, dout, x []float64) {
	for i, v := range x {
		dx[i] += dout[i] * (0.5*math.Erfc(-v/math.Sqrt2) + v*math.Exp(-0.5*v*v)/math.Sqrt(2*math.Pi))
	}
}

// RefSoftmax sets each row of out (rows, n) to the softmax of that row of x,
// shifted by the row maximum; out may be x.
func RefSoftmax(out, x []float64, n int) {
	for r := 0; r < len(x); r += n {
		mx := math.Inf(-1)
		for _, v := range x[r : r+n] {
			mx = max(mx, v)
		}
		s := 0.0
		for j := r; j < r+n; j++ {
			out[j] = math.Exp(x[j] - mx)
			s += out[j]
		}
		for j := r; j < r+n; j++ {
			out[j] /= s
		}
	}
}

// RefAttentionForward is timm's attention core on the fused projection
// qkv (B, N, 3D): per batch item and head hh, q, k, v are columns
// [hh·Dh, (hh+1)·Dh) of the q, k and v thirds of each token's row, and
//
//	S = (q·scale)·kᵀ + bias,  P = softmax(S) by rows,  out = P·v,
//
// written into columns [hh·Dh, (hh+1)·Dh) of out (B, N, D): the heads
// merged back. att (B, H, N, N) receives P; bias is (H, N, N) or nil.
func RefAttentionForward(out, att, qkv, bias []float64, b, n, d, h int, scale float64) {
	dh := d / h
	for bi := range b {
		for hh := range h {
			p := att[(bi*h+hh)*n*n : (bi*h+hh+1)*n*n]
			for t := range n {
				q := qkv[(bi*n+t)*3*d+hh*dh:]
				for u := range n {
					k := qkv[(bi*n+u)*3*d+d+hh*dh:]
					s := 0.0
					for c := range dh {
						s += q[c] * scale * k[c]
					}
					if bias != nil {
						s += bias[(hh*n+t)*n+u]
					}
					p[t*n+u] = s
				}
			}
			RefSoftmax(p, p, n)
			for t := range n {
				o := out[(bi*n+t)*d+hh*dh : (bi*n+t)*d+(hh+1)*dh]
				clear(o)
				for u := range n {
					v := qkv[(bi*n+u)*3*d+2*d+hh*dh:]
					for c := range o {
						o[c] += p[t*n+u] * v[c]
					}
				}
			}
		}
	}
}

// RefAttentionBackward adds the gradients of RefAttentionForward to dqkv
// (B, N, 3D) and, if not nil, to the bias gradient dbias (H, N, N). Per
// item, with dP = dout·vᵀ and the softmax backward
// dS = P⊙(dP − rowsum(dP⊙P)): dv = Pᵀ·dout, dq = scale·dS·k,
// dk = scale·dSᵀ·q, dbias = Σ_B dS.
func RefAttentionBackward(dqkv, dbias, dout, att, qkv []float64, b, n, d, h int, scale float64) {
	dh := d / h
	ds := make([]float64, n*n)
	for bi := range b {
		for hh := range h {
			p := att[(bi*h+hh)*n*n : (bi*h+hh+1)*n*n]
			row := func(t, part int) int { return (bi*n+t)*3*d + part*d + hh*dh } // q, k, v offset
			for t := range n {
				do := dout[(bi*n+t)*d+hh*dh : (bi*n+t)*d+(hh+1)*dh]
				dot := 0.0 // rowsum(dP⊙P)
				for u := range n {
					v := qkv[row(u, 2):]
					dp := 0.0
					for c := range dh {
						dp += do[c] * v[c]
						dqkv[row(u, 2)+c] += p[t*n+u] * do[c] // dv
					}
					ds[t*n+u] = dp
					dot += dp * p[t*n+u]
				}
				for u := range n {
					ds[t*n+u] = p[t*n+u] * (ds[t*n+u] - dot)
				}
			}
			for t := range n {
				for u := range n {
					g := ds[t*n+u]
					if dbias != nil {
						dbias[(hh*n+t)*n+u] += g
					}
					for c := range dh {
						dqkv[row(t, 0)+c] += scale * g * qkv[row(u, 1)+c]
						dqkv[row(u, 1)+c] += scale * g * qkv[row(t, 0)+c]
					}
				}
			}
		}
	}
}

// RefRopeForward copies qkv (B, N, 3D) to out and rotates the q and k
// parts of the tokens t ≥ skip (RoPE; the CLS token when skip = 1 passes
// through): for each head's adjacent channel pair (a, b) = (x[2j], x[2j+1])
// and the angle table entries c = cos[t−skip, j], s = sin[t−skip, j],
// (a, b) → (a·c − b·s, a·s + b·c). cos, sin (N−skip, Dh/2) are shared by
// every head and layer, as in rope-axial and rope-1d.
func RefRopeForward(out, qkv, cos, sin []float64, b, n, d, h, skip int) {
	copy(out, qkv[:b*n*3*d])
	half := d / h / 2
	for bi := range b {
		for t := skip; t < n; t++ {
			c, s := cos[(t-skip)*half:], sin[(t-skip)*half:]
			for part := range 2 { // q, then k
				for hh := range h {
					x := qkv[(bi*n+t)*3*d+part*d+hh*2*half:]
					o := out[(bi*n+t)*3*d+part*d+hh*2*half:]
					for j := range half {
						o[2*j] = x[2*j]*c[j] - x[2*j+1]*s[j]
						o[2*j+1] = x[2*j]*s[j] + x[2*j+1]*c[j]
					}
				}
			}
		}
	}
}

// RefRopeBackward adds the gradient of RefRopeForward to dqkv (B, N, 3D):
// the v part and the skipped tokens pass dout through, and the rotated
// pairs get the transposed rotation, (ga, gb) → (ga·c + gb·s, gb·c − ga·s).
// The angle tables are constants (no gradient).
func RefRopeBackward(dqkv, dout, cos, sin []float64, b, n, d, h, skip int) {
	half := d / h / 2
	for bi := range b {
		for t := range n {
			row := (bi*n + t) * 3 * d
			if t < skip {
				for c := range 3 * d {
					dqkv[row+c] += dout[row+c]
				}
				continue
			}
			c, s := cos[(t-skip)*half:], sin[(t-skip)*half:]
			for i := 2 * d; i < 3*d; i++ {
				dqkv[row+i] += dout[row+i]
			}
			for i := 0; i < 2*d; i += 2 {
				j := i / 2 % half
				ga, gb := dout[row+i], dout[row+i+1]
				dqkv[row+i] += ga*c[j] + gb*s[j]
				dqkv[row+i+1] += gb*c[j] - ga*s[j]
			}
		}
	}
}

// RefBatchNormForward is nn.BatchNorm2d in training mode on x (B, C, hw):
// per channel the batch mean μ and biased variance σ² over (B, hw),
// out = (x − μ)·rstd·γ + β with rstd = 1/√(σ² + eps), stored in mean and
// rstd (C); the running statistics runMean, runVar (C) move by momentum
// toward μ and the unbiased variance, as PyTorch does.
func RefBatchNormForward(out, mean, rstd, x, gamma, beta, runMean, runVar []float64, b, c, hw int, momentum, eps float64) {
	cnt := float64(b * hw)
	for ch := range c {
		mu, v := 0.0, 0.0
		for bi := range b {
			for _, e := range x[(bi*c+ch)*hw : (bi*c+ch+1)*hw] {
				mu += e
			}
		}
		mu /= cnt
		for bi := range b {
			for _, e := range x[(bi*c+ch)*hw : (bi*c+ch+1)*hw] {
				v += (e - mu) * (e - mu)
			}
		}
		mean[ch], rstd[ch] = mu, 1/math.Sqrt(v/cnt+eps)
		runMean[ch] = (1-momentum)*runMean[ch] + momentum*mu
		runVar[ch] = (1-momentum)*runVar[ch] + momentum*v/(cnt-1)
		for bi := range b {
			for i := (bi*c + ch) * hw; i < (bi*c+ch+1)*hw; i++ {
				out[i] = (x[i]-mu)*rstd[ch]*gamma[ch] + beta[ch]
			}
		}
	}
}

// RefBatchNormBackward adds the training-mode gradients to dx (B, C, hw),
// dgamma and dbeta (C): LayerNorm's formula with the mean taken per
// channel over (B, hw) instead of per row.
func RefBatchNormBackward(dx, dgamma, dbeta, dout, x, gamma, mean, rstd []float64, b, c, hw int) {
	cnt := float64(b * hw)
	for ch := range c {
		md, mdn := 0.0, 0.0 // mean(dn), mean(dn⊙n) with dn = dout·γ
		for bi := range b {
			for i := (bi*c + ch) * hw; i < (bi*c+ch+1)*hw; i++ {
				n := (x[i] - mean[ch]) * rstd[ch]
				md += dout[i] * gamma[ch] / cnt
				mdn += dout[i] * gamma[ch] * n / cnt
				dgamma[ch] += dout[i] * n
				dbeta[ch] += dout[i]
			}
		}
		for bi := range b {
			for i := (bi*c + ch) * hw; i < (bi*c+ch+1)*hw; i++ {
				n := (x[i] - mean[ch]) * rstd[ch]
				dx[i] += rstd[ch] * (dout[i]*gamma[ch] - md - n*mdn)
			}
		}
	}
}

// RefBCEWithLogits returns the mean binary cross-entropy of sigmoid(logits)
// against targets (both (n)), ℓ = max(x, 0) − x·t + log(1 + e^(−|x|)), and
// adds its gradient (σ(x) − t)/n to dlogits.
func RefBCEWithLogits(dlogits, logits, targets []float64) float64 {
	loss, n := 0.0, float64(len(logits))
	for i, x := range logits {
		t := targets[i]
		loss += max(x, 0) - x*t + math.Log1p(math.Exp(-math.Abs(x)))
		dlogits[i] += (1/(1+math.Exp(-x)) - t) / n
	}
	return loss / n
}

// RefCrossEntropy returns the mean over the rows of logits (B, K) of the
// softmax cross-entropy against labels (B) with label smoothing ε, as
// F.cross_entropy(label_smoothing=ε):
// ℓ = (1−ε)·(−log p_y) + ε·mean_k(−log p_k), p = softmax(row). It adds the
// gradient (p − (1−ε)·onehot(y) − ε/K)/B to dlogits.
func RefCrossEntropy(dlogits, logits []float64, labels []int, k int, smoothing float64) float64 {
	loss, b, eps := 0.0, float64(len(labels)), smoothing
	for r, y := range labels {
		x := logits[r*k : (r+1)*k]
		mx, s := math.Inf(-1), 0.0
		for _, v := range x {
			mx = max(mx, v)
		}
		for _, v := range x {
			s += math.Exp(v - mx)
		}
		lse := mx + math.Log(s) // −log p_j = lse − x_j
		for j, v := range x {
			loss += eps / float64(k) * (lse - v)
			dlogits[r*k+j] += (math.Exp(v-lse) - eps/float64(k)) / b
		}
		loss += (1 - eps) * (lse - x[y])
		dlogits[r*k+y] -= (1 - eps) / b
	}
	return loss / b
}

// RefAdamW applies step (1-based) of torch.optim.AdamW to one parameter p
// with gradient g and moments m, v (all (n)):
//
//	p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//	p ← p − lr/(1−β1^step) · m / (√v/√(1−β2^step) + eps)
//
// Pass wd = 0 for the parameters AdamW does not decay (NoDecay).
func RefAdamW(p, g, m, v []float64, step int, lr, beta1, beta2, eps, wd float64) {
	bc1, bc2 := 1-math.Pow(beta1, float64(step)), 1-math.Pow(beta2, float64(step))
	for i := range p {
		p[i] *= 1 - lr*wd
		m[i] = beta1*m[i] + (1-beta1)*g[i]
		v[i] = beta2*v[i] + (1-beta2)*g[i]*g[i]
		p[i] -= lr / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + eps)
	}
}
