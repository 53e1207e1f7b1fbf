// This file holds the normalisation ops: LayerNorm over the last axis (the
// ViT's pre-norm, docs/pe-zoo.md §1) and BatchNorm2d per channel over (B, H, W).
// Each op is a thin Tape method over a forward kernel and its backward
// kernel, side by side, as in llm.c's layernorm_forward/_backward.
//
// Sums over a row or a channel are accumulated in float64 for both element
// types. Work is split so that every output element (including parameter
// gradients) is computed by one goroutine in a fixed order: results are
// bit-identical for any thread count.

package loope

import (
	"fmt"
	"math"
	"sync"
)

// LayerNorm returns y = (x − μ)/√(σ² + eps)·γ + β over the last axis of
// x (..., D), with the row mean μ and the biased row variance σ²;
// gamma (D), beta (D). timm's ViT uses eps = 1e-6 (docs/pe-zoo.md §1).
func (tp *Tape[T]) LayerNorm(x, gamma, beta *Tensor[T], eps float64) *Tensor[T] {
	if len(x.Shape) < 1 || gamma == nil || beta == nil || len(gamma.Shape) != 1 ||
		!sameShape(gamma.Shape, beta.Shape) || gamma.Shape[0] != x.Dim(-1) {
		panic(fmt.Sprintf("loope: LayerNorm: shape mismatch x %v, gamma %v, beta %v", x.Shape, shapeOrNil(gamma), shapeOrNil(beta)))
	}
	d := x.Dim(-1)
	rows := numel("LayerNorm", x.Shape[:len(x.Shape)-1])
	out := tp.outNoZero(x.Shape, x, gamma, beta) // the forward writes every element
	stats := tp.scratch(2 * rows)                // mean (rows), rstd (rows)
	layerNormForward(out.Data, stats[:rows], stats[rows:], x.Data, gamma.Data, beta.Data, rows, d, eps)
	if out.Grad != nil {
		nd := tp.record(layerNormBackward[T]{}, out, x, gamma, beta)
		*attrsOf[layerNormAttrs](nd) = layerNormAttrs{rows: rows, d: d}
		var part []T // partial dγ and dβ rows, one pair per row chunk
		if gamma.Grad != nil || beta.Grad != nil {
			part = tp.scratch(2 * rowChunks(rows, d) * d)
		}
		nd.saved = append(nd.saved, stats[:rows], stats[rows:], part)
	}
	return out
}

// layerNormForward normalises each of the rows of x (rows, d) and stores the
// row mean and rstd = 1/√(σ² + eps) for the backward.
func layerNormForward[T Float](out, mean, rstd, x, gamma, beta []T, rows, d int, eps float64) {
	job := layerNormJob[T]{out: out, mean: mean, rstd: rstd, x: x, gamma: gamma, beta: beta, d: d, eps: eps}
	runPooled[T](&layerNormJobs, job, rows, max(1, 4096/max(d, 1)), false)
}

// layerNormJob is the forward over rows [lo, hi) (a pooled job: no closure).
type layerNormJob[T Float] struct {
	out, mean, rstd, x, gamma, beta []T
	d                               int
	eps                             float64
}

func (j *layerNormJob[T]) run(lo, hi int) {
	d := j.d
	gamma, beta := j.gamma[:d], j.beta[:d]
	for i := lo; i < hi; i++ {
		xi, oi := j.x[i*d:(i+1)*d], j.out[i*d:(i+1)*d]
		oi = oi[:len(xi)]
		mu := sum64(xi) / float64(d)
		// Σ (x − μ)² in four partial sums, added as (s0 + s1) + (s2 + s3).
		var s0, s1, s2, s3 float64
		k := 0
		for ; k+4 <= len(xi); k += 4 {
			v0, v1, v2, v3 := float64(xi[k])-mu, float64(xi[k+1])-mu, float64(xi[k+2])-mu, float64(xi[k+3])-mu
			s0, s1, s2, s3 = s0+v0*v0, s1+v1*v1, s2+v2*v2, s3+v3*v3
		}
		for ; k < len(xi); k++ {
			v := float64(xi[k]) - mu
			s0 += v * v
		}
		ss := (s0 + s1) + (s2 + s3)
		m, r := T(mu), T(1/math.Sqrt(ss/float64(d)+j.eps))
		j.mean[i], j.rstd[i] = m, r
		for k, v := range xi {
			oi[k] = (v-m)*r*gamma[k] + beta[k]
		}
	}
}

// sum64 returns Σ x in float64, in four partial sums added as
// (s0 + s1) + (s2 + s3) (a fixed order: the same bits on every call).
func sum64[T Float](x []T) float64 {
	var s0, s1, s2, s3 float64
	k := 0
	for ; k+4 <= len(x); k += 4 {
		s0, s1, s2, s3 = s0+float64(x[k]), s1+float64(x[k+1]), s2+float64(x[k+2]), s3+float64(x[k+3])
	}
	for ; k < len(x); k++ {
		s0 += float64(x[k])
	}
	return (s0 + s1) + (s2 + s3)
}

var layerNormJobs, layerNormGradJobs [2]sync.Pool // [0] float32, [1] float64

// layerNormBackward, per row with n = (x − μ)·rstd and dn = dy⊙γ
// (llm.c doc/layernorm): dx += rstd·(dn − mean(dn) − n·mean(dn⊙n)),
// dγ += Σ_rows dy⊙n, dβ += Σ_rows dy.
//
// One pass over fixed row chunks (rowChunks(rows, D), independent of the
// thread count) computes dx and each chunk's partial dγ and dβ rows; the
// partial rows are then added in chunk order, so results are bit-identical
// for any thread count.
type layerNormBackward[T Float] struct{}

// layerNormAttrs are LayerNorm's node attributes: rows of d values.
type layerNormAttrs struct{ rows, d int }

func (layerNormBackward[T]) backward(nd *node[T]) {
	x, gamma, beta, y := nd.in[0], nd.in[1], nd.in[2], nd.out
	at := attrsOf[layerNormAttrs](nd)
	rows, d := at.rows, at.d
	if x.Grad == nil && gamma.Grad == nil && beta.Grad == nil {
		return
	}
	c := rowChunks(rows, d)
	part := nd.saved[2]
	var pg, pb []T
	if gamma.Grad != nil {
		pg = part[:c*d]
	}
	if beta.Grad != nil {
		pb = part[c*d : 2*c*d]
	}
	job := layerNormGradJob[T]{x: x.Data, dy: y.Grad, gamma: gamma.Data, mean: nd.saved[0], rstd: nd.saved[1],
		dx: x.Grad, pg: pg, pb: pb, rows: rows, d: d, chunks: c}
	runPooled[T](&layerNormGradJobs, job, c, 1, false)
	for k := range c {
		if pg != nil {
			addTo(gamma.Grad[:d], pg[k*d:(k+1)*d])
		}
		if pb != nil {
			addTo(beta.Grad[:d], pb[k*d:(k+1)*d])
		}
	}
}

// layerNormGradJob runs the backward over row chunks [lo, hi): it adds
// into dx (nil when absent) and sets each chunk's row of the partial
// dγ sums pg and dβ sums pb (chunks, d) (nil when absent).
type layerNormGradJob[T Float] struct {
	x, dy, gamma, mean, rstd []T
	dx, pg, pb               []T
	rows, d, chunks          int
}

func (j *layerNormGradJob[T]) run(lo, hi int) {
	d := j.d
	gamma := j.gamma[:d]
	for k := lo; k < hi; k++ {
		var pg, pb []T
		if j.pg != nil {
			pg = j.pg[k*d : (k+1)*d]
			clear(pg)
		}
		if j.pb != nil {
			pb = j.pb[k*d : (k+1)*d]
			clear(pb)
		}
		for i := k * j.rows / j.chunks; i < (k+1)*j.rows/j.chunks; i++ {
			j.row(i, gamma, pg, pb)
		}
	}
}

// row runs the backward of row i: it adds the row's terms into the partial
// sums pg and pb (either may be nil) and, if dx is set, into dx, in two
// passes over the row. Σ dn and Σ dn⊙n accumulate in float64, in two
// partial sums each.
func (j *layerNormGradJob[T]) row(i int, gamma, pg, pb []T) {
	d := j.d
	xi, dyi := j.x[i*d:(i+1)*d], j.dy[i*d:(i+1)*d]
	dyi, gamma = dyi[:len(xi)], gamma[:len(xi)]
	m, r := j.mean[i], j.rstd[i]
	switch {
	case pg != nil && pb != nil:
		pg, pb = pg[:len(xi)], pb[:len(xi)]
		for c, v := range xi {
			g := dyi[c]
			pg[c] += g * ((v - m) * r)
			pb[c] += g
		}
	case pg != nil:
		pg = pg[:len(xi)]
		for c, v := range xi {
			pg[c] += dyi[c] * ((v - m) * r)
		}
	case pb != nil:
		addTo(pb, dyi)
	}
	if j.dx == nil {
		return
	}
	var sd0, sd1, sdn0, sdn1 float64
	c := 0
	for ; c+2 <= len(xi); c += 2 {
		dn0, dn1 := dyi[c]*gamma[c], dyi[c+1]*gamma[c+1]
		sd0, sd1 = sd0+float64(dn0), sd1+float64(dn1)
		sdn0 += float64(dn0 * (xi[c] - m) * r)
		sdn1 += float64(dn1 * (xi[c+1] - m) * r)
	}
	if c < len(xi) {
		dn := dyi[c] * gamma[c]
		sd0 += float64(dn)
		sdn0 += float64(dn * (xi[c] - m) * r)
	}
	md, mdn := T((sd0+sd1)/float64(d)), T((sdn0+sdn1)/float64(d))
	dxi := j.dx[i*d : (i+1)*d]
	dxi = dxi[:len(xi)]
	for c, v := range xi {
		n := (v - m) * r
		dxi[c] += (dyi[c]*gamma[c] - md - n*mdn) * r
	}
}

// BatchNorm2d normalises x (B, C, H, W) per channel: y = (x − μ_c)·rstd_c·γ_c + β_c
// with gamma, beta (C). In training mode μ_c and the biased variance σ²_c
// come from the batch (over B, H, W) and the running statistics
// runMean, runVar (C) are updated in place as PyTorch does:
// running = (1 − momentum)·running + momentum·batch, with the unbiased
// variance for runVar. In eval mode (training false) μ_c = runMean_c and
// σ²_c = runVar_c, so y is an affine map of x. rstd_c = 1/√(σ²_c + eps).
// runMean and runVar never receive gradients. As in PyTorch, the running
// update happens whenever training is true, also on a no-grad tape.
func (tp *Tape[T]) BatchNorm2d(x, gamma, beta, runMean, runVar *Tensor[T], momentum, eps float64, training bool) *Tensor[T] {
	ok := len(x.Shape) == 4 && gamma != nil && beta != nil && runMean != nil && runVar != nil
	if ok {
		c := []int{x.Shape[1]}
		ok = sameShape(gamma.Shape, c) && sameShape(beta.Shape, c) && sameShape(runMean.Shape, c) && sameShape(runVar.Shape, c)
	}
	if !ok {
		panic(fmt.Sprintf("loope: BatchNorm2d: shape mismatch x %v, gamma %v, beta %v, runMean %v, runVar %v",
			x.Shape, shapeOrNil(gamma), shapeOrNil(beta), shapeOrNil(runMean), shapeOrNil(runVar)))
	}
	b, c, hw := x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3]
	if training && b*hw < 2 {
		panic(fmt.Sprintf("loope: BatchNorm2d: training needs more than one value per channel, x %v", x.Shape))
	}
	out := tp.out(x.Shape, x, gamma, beta)
	stats := tp.scratch(2 * c) // mean (C), rstd (C) used by the forward
	batchNormForward(out.Data, stats[:c], stats[c:], x.Data, gamma.Data, beta.Data, runMean.Data, runVar.Data,
		b, c, hw, momentum, eps, training)
	if out.Grad != nil {
		nd := tp.record(batchNormBackward[T]{}, out, x, gamma, beta)
		*attrsOf[batchNormAttrs](nd) = batchNormAttrs{b: b, c: c, hw: hw, training: training}
		nd.saved = append(nd.saved, stats[:c], stats[c:])
	}
	return out
}

// batchNormForward normalises each channel of x (b, c, hw) and stores the
// mean and rstd it used; in training mode it also updates runMean, runVar.
func batchNormForward[T Float](out, mean, rstd, x, gamma, beta, runMean, runVar []T,
	b, c, hw int, momentum, eps float64, training bool) {
	parallelFor(c, max(1, 4096/max(b*hw, 1)), func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			if training {
				var s float64
				for bi := range b {
					for _, v := range x[(bi*c+ch)*hw : (bi*c+ch+1)*hw] {
						s += float64(v)
					}
				}
				n := float64(b * hw)
				mu := s / n
				var ss float64
				for bi := range b {
					for _, v := range x[(bi*c+ch)*hw : (bi*c+ch+1)*hw] {
						dv := float64(v) - mu
						ss += dv * dv
					}
				}
				mean[ch], rstd[ch] = T(mu), T(1/math.Sqrt(ss/n+eps))
				runMean[ch] = T((1-momentum)*float64(runMean[ch]) + momentum*mu)
				runVar[ch] = T((1-momentum)*float64(runVar[ch]) + momentum*ss/(n-1))
			} else {
				mean[ch], rstd[ch] = runMean[ch], T(1/math.Sqrt(float64(runVar[ch])+eps))
			}
			m, r, g, be := mean[ch], rstd[ch], gamma[ch], beta[ch]
			for bi := range b {
				o := (bi*c + ch) * hw
				for i, v := range x[o : o+hw] {
					out[o+i] = (v-m)*r*g + be
				}
			}
		}
	})
}

// batchNormBackward, per channel with n = (x − μ)·rstd and dn = dy·γ:
// training: dx += rstd·(dn − mean(dn) − n·mean(dn⊙n)) (μ and σ² depend on x);
// eval: dx += rstd·dn. Both: dγ += Σ dy⊙n, dβ += Σ dy.
type batchNormBackward[T Float] struct{}

// batchNormAttrs are BatchNorm2d's node attributes: x (b, c, hw), and
// whether the forward used batch statistics.
type batchNormAttrs struct {
	b, c, hw int
	training bool
}

func (batchNormBackward[T]) backward(nd *node[T]) {
	x, gamma, beta, y := nd.in[0], nd.in[1], nd.in[2], nd.out
	at := attrsOf[batchNormAttrs](nd)
	b, c, hw, training := at.b, at.c, at.hw, at.training
	mean, rstd := nd.saved[0], nd.saved[1]
	parallelFor(c, max(1, 4096/max(b*hw, 1)), func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			m, r, g := mean[ch], rstd[ch], gamma.Data[ch]
			var sdy, sdyn float64 // Σ dy, Σ dy⊙n
			for bi := range b {
				o := (bi*c + ch) * hw
				dy := y.Grad[o : o+hw]
				for i, v := range x.Data[o : o+hw] {
					sdy += float64(dy[i])
					sdyn += float64(dy[i] * ((v - m) * r))
				}
			}
			if gamma.Grad != nil {
				gamma.Grad[ch] += T(sdyn)
			}
			if beta.Grad != nil {
				beta.Grad[ch] += T(sdy)
			}
			if x.Grad == nil {
				continue
			}
			var md, mdn T // mean(dn), mean(dn⊙n)
			if training {
				cnt := float64(b * hw)
				md, mdn = T(float64(g)*sdy/cnt), T(float64(g)*sdyn/cnt)
			}
			for bi := range b {
				o := (bi*c + ch) * hw
				dy, dx := y.Grad[o:o+hw], x.Grad[o:o+hw]
				for i, v := range x.Data[o : o+hw] {
					dx[i] += (dy[i]*g - md - (v-m)*r*mdn) * r
				}
			}
		}
	})
}

// shapeOrNil returns t's shape, or nil for a nil tensor (for panic messages).
func shapeOrNil[T Float](t *Tensor[T]) []int {
	if t == nil {
		return nil
	}
	return t.Shape
}
