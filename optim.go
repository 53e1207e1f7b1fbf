// This file holds the optimisers (AdamW, Adam), the cosine learning-rate
// schedule with linear warm-up, and global-norm gradient clipping. The update
// order follows PyTorch's single-tensor Adam/AdamW so float64 traces match.

package loope

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
)

// Adam is Adam (Decoupled false: L2 weight decay added to the gradient) or
// AdamW (Decoupled true: p ← p·(1 − lr·wd) before the Adam step), as
// torch.optim.Adam / AdamW. Moments are kept in the model's precision T.
type Adam[T Float] struct {
	Beta1, Beta2, Eps float64 // 0.9, 0.999, 1e-8 by default
	WeightDecay       float64 // applied only to params with decay set
	Decoupled         bool    // AdamW when true
	Step              int     // updates done so far

	params []*Tensor[T]
	decay  []bool // per param: weight decay applies
	scale  []T    // per param: learning-rate factor (SetLRScale; 1 by default)
	m, v   [][]T  // first and second moments, per param
	offs   []int  // offs[i]: index of params[i]'s first element in all params laid end to end
}

// NewAdamW returns AdamW over the trainable params with weight decay wd on
// every param not marked NoDecay (biases, norms, PE and CLS are NoDecay).
func NewAdamW[T Float](params []NamedParam[T], wd float64) *Adam[T] {
	o := &Adam[T]{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Decoupled: true}
	for _, p := range params {
		if p.Buffer {
			continue
		}
		o.params = append(o.params, p.T)
		o.decay = append(o.decay, !p.NoDecay)
		o.scale = append(o.scale, 1)
		o.m = append(o.m, make([]T, p.T.Size()))
		o.v = append(o.v, make([]T, p.T.Size()))
	}
	return o
}

// NewAdam returns Adam (no weight decay) over the trainable params.
func NewAdam[T Float](params []NamedParam[T]) *Adam[T] {
	o := NewAdamW(params, 0)
	o.Decoupled = false
	return o
}

// SetLRScale multiplies the learning rate of each of ts (tensors given to
// the constructor) by s, as a PyTorch param group with lr·s would: the
// Adam step and the decoupled weight decay both scale. It returns how many
// of ts it found.
func (o *Adam[T]) SetLRScale(ts []*Tensor[T], s float64) int {
	n := 0
	for i, p := range o.params {
		if slices.Contains(ts, p) {
			o.scale[i] = T(s)
			n++
		}
	}
	return n
}

// Moments returns the optimiser state for checkpointing: first and second
// moments in the order of the params given to the constructor.
func (o *Adam[T]) Moments() (m, v [][]T) { return o.m, o.v }

// Update applies one step with learning rate lr to every param, reading
// its Grad. It does not clear gradients. The elements of all params are
// split over threads as one range (every element's update is independent
// of the split), so small params do not run one after another on one core.
func (o *Adam[T]) Update(lr float64) {
	o.Step++
	bc1 := 1 - math.Pow(o.Beta1, float64(o.Step))
	bc2 := 1 - math.Pow(o.Beta2, float64(o.Step))
	if len(o.offs) != len(o.params)+1 {
		o.offs = append(o.offs[:0], 0)
		for _, p := range o.params {
			o.offs = append(o.offs, o.offs[len(o.offs)-1]+len(p.Data))
		}
	}
	total := o.offs[len(o.params)]
	job := adamJob[T]{o: o, lr: T(lr), b1: T(o.Beta1), b2: T(o.Beta2), eps: T(o.Eps),
		stepSize: T(lr / bc1), bc2Sqrt: T(math.Sqrt(bc2))}
	runPooled[T](&adamJobs, job, total, parGrain, serial(total))
}

// adamJob updates elements [lo, hi) of the params laid end to end (a
// pooled job: no closure).
type adamJob[T Float] struct {
	o                                  *Adam[T]
	lr, b1, b2, eps, stepSize, bc2Sqrt T
}

var adamJobs [2]sync.Pool // [0] float32, [1] float64

func (j *adamJob[T]) run(lo, hi int) {
	o := j.o
	i := sort.SearchInts(o.offs, lo+1) - 1 // the param holding element lo
	for ; lo < hi; i++ {
		p := o.params[i]
		a, b := lo-o.offs[i], min(hi, o.offs[i+1])-o.offs[i]
		wd := T(0)
		if o.decay[i] {
			wd = T(o.WeightDecay)
		}
		if p.Grad != nil { // a param without gradient is left as it is
			j.update(p.Data[a:b], p.Grad[a:b], o.m[i][a:b], o.v[i][a:b], wd, o.scale[i])
		}
		lo = o.offs[i+1]
	}
}

// update runs the Adam or AdamW step on one param slice p with gradient
// g and moments m, v, weight decay wd and learning-rate factor s.
func (j *adamJob[T]) update(p, g, m, v []T, wd, s T) {
	b1, b2, shrink, decoupled, stepSize := j.b1, j.b2, 1-s*j.lr*wd, j.o.Decoupled, j.stepSize
	if s != 1 {
		stepSize *= s
	}
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for k, gk := range g {
		if decoupled {
			p[k] *= shrink
		} else if wd != 0 {
			gk += wd * p[k]
		}
		m[k] = m[k]*b1 + (1-b1)*gk // torch 1.13: exp_avg.mul_(beta1).add_(grad, alpha=1-beta1)
		v[k] = v[k]*b2 + (1-b2)*gk*gk
		denom := T(math.Sqrt(float64(v[k])))/j.bc2Sqrt + j.eps
		p[k] -= stepSize * (m[k] / denom) // torch: param.addcdiv_(exp_avg, denom, value=-step_size)
	}
}

// CosineLR returns the learning rate at step (0-based) of total: a linear
// warm-up from base/warmup to base over warmup steps, then a cosine decay
// from base to min at the last step.
func CosineLR(step, total, warmup int, base, min float64) float64 {
	if step < warmup {
		return base * float64(step+1) / float64(warmup)
	}
	span := total - warmup
	if span <= 1 {
		return base
	}
	t := float64(step-warmup) / float64(span-1)
	return min + 0.5*(base-min)*(1+math.Cos(math.Pi*math.Min(t, 1)))
}

// ClipGradNorm scales every gradient so that their joint L2 norm is at most
// maxNorm (torch.nn.utils.clip_grad_norm_: factor maxNorm/(norm+1e-6),
// applied only when < 1). It returns the norm before clipping; a
// non-finite norm is returned unchanged and nothing is scaled.
func ClipGradNorm[T Float](params []*Tensor[T], maxNorm float64) float64 {
	var ss float64
	for _, p := range params {
		for _, g := range p.Grad {
			ss += float64(g) * float64(g)
		}
	}
	norm := math.Sqrt(ss)
	if maxNorm <= 0 || math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm
	}
	if c := maxNorm / (norm + 1e-6); c < 1 {
		for _, p := range params {
			for j := range p.Grad {
				p.Grad[j] *= T(c)
			}
		}
	}
	return norm
}

// checkFinite returns an error naming the first tensor with a NaN or Inf
// value in data (or grad, if grad is true).
func checkFinite[T Float](ps []NamedParam[T], grad bool) error {
	for _, p := range ps {
		buf := p.T.Data
		if grad {
			buf = p.T.Grad
		}
		for i, x := range buf {
			if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
				what := "value"
				if grad {
					what = "gradient"
				}
				return fmt.Errorf("non-finite %s %v in %s at element %d", what, f, p.Name, i)
			}
		}
	}
	return nil
}
