// This file holds data-parallel training on one machine: the batch of a
// step is cut into R fixed parts, R replicas of the model (sharing the
// parameter values, each with its own gradients and tape) run forward and
// backward on their parts at the same time with single-threaded kernels,
// and the part gradients are added in replica order. On a small model this
// keeps every core busy for the whole step: the kernels' own split waits at
// every op for the slowest core, the replicas only once per step.

package loope

import (
	"fmt"
	"sync"
)

// replicaOf returns a model with m's config whose parameters share m's
// values (Data) but have their own gradients, for data-parallel training.
// Every input a PE reads must be a param for the replica to compute what
// m computes (TestReplicaForward checks each registered PE).
func replicaOf[T Float](m Model[T]) (Model[T], error) {
	r, err := NewModel[T](m.Config(), 0)
	if err != nil {
		return nil, err
	}
	mp, rp := m.Params(), r.Params()
	if len(mp) != len(rp) {
		return nil, fmt.Errorf("loope: replica has %d params, the model %d", len(rp), len(mp))
	}
	for i, p := range rp {
		if p.Name != mp[i].Name || !sameShape(p.T.Shape, mp[i].T.Shape) {
			return nil, fmt.Errorf("loope: replica param %s %v differs from the model's %s %v", p.Name, p.T.Shape, mp[i].Name, mp[i].T.Shape)
		}
		p.T.Data = mp[i].T.Data
	}
	return r, nil
}

// replicaSet runs training steps of one model as len(models) data-parallel
// replicas; with one replica it is the plain step on the calling goroutine.
type replicaSet[T Float] struct {
	models []Model[T]     // [0] is the model being trained; the others share its values
	tapes  []*Tape[T]     // one tape per replica
	grads  [][]*Tensor[T] // the trainable tensors of each replica
	loss   []float64      // each replica's mean loss of the last step
	logits []*Tensor[T]   // each replica's logits (B_r, K) of the last step
}

// newReplicaSet prepares n replicas of m (n ≥ 1). More than one needs a
// model without batch statistics: replicas would normalise over their own
// part and race on the shared running statistics.
func newReplicaSet[T Float](m Model[T], n int) (*replicaSet[T], error) {
	if n > 1 && HasBatchStats(m) {
		// NOTE(spec): LOOPE's BatchNorm normalises over the whole batch, as in
		// the authors' single-process training; it trains with split kernels.
		return nil, fmt.Errorf("loope: %d data-parallel replicas need a model without batch statistics (%s %s has BatchNorm); use 1", n, archName(m.Config().Arch), peNames(m))
	}
	rs := &replicaSet[T]{models: []Model[T]{m}}
	for range n - 1 {
		r, err := replicaOf(m)
		if err != nil {
			return nil, err
		}
		rs.models = append(rs.models, r)
	}
	for _, r := range rs.models {
		rs.tapes = append(rs.tapes, &Tape[T]{})
		rs.grads = append(rs.grads, trainable(r))
	}
	rs.loss = make([]float64, n)
	rs.logits = make([]*Tensor[T], n)
	return rs, nil
}

// step runs forward and backward of the batch x (B, C, H, W) with targets
// y (B, K) and labels (B) and leaves the gradient of the mean loss over
// the batch in the model's params. Replica r takes rows [r·B/R, (r+1)·B/R)
// and runs single-threaded; part gradients are weighted by B_r/B and added
// in replica order, so the bits depend only on B and R. It returns the
// mean loss (non-finite values are left for the caller to report).
func (rs *replicaSet[T]) step(loss string, smoothing float64, x, y *Tensor[T], labels []int) float64 {
	n, b := len(rs.models), x.Shape[0]
	run := func(r int) {
		lo, hi := r*b/n, (r+1)*b/n
		tp := rs.tapes[r]
		tp.Reset()
		ZeroGrad(rs.grads[r])
		logits := rs.models[r].Forward(tp, rowsOf(x, lo, hi))
		l := lossOf(tp, loss, smoothing, logits, rowsOf(y, lo, hi), labels[lo:hi])
		rs.loss[r], rs.logits[r] = float64(l.Data[0]), logits
		tp.Backward(l)
	}
	if n == 1 {
		run(0)
		return rs.loss[0]
	}
	prev := threads.Load()
	SetThreads(1)
	var wg sync.WaitGroup
	for r := 1; r < n; r++ {
		wg.Add(1)
		go func() { defer wg.Done(); run(r) }()
	}
	run(0)
	wg.Wait()
	threads.Store(prev)
	// The mean over the batch is Σ_r (B_r/B)·mean_r, and so is its gradient.
	var mean float64
	w := make([]T, 0, 8)
	for r := range n {
		wr := float64((r+1)*b/n-r*b/n) / float64(b)
		w = append(w, T(wr))
		mean += wr * rs.loss[r]
	}
	for i, g := range rs.grads[0] {
		if g.Grad == nil {
			continue
		}
		for e := range g.Grad {
			s := w[0] * g.Grad[e]
			for r := 1; r < n; r++ {
				s += w[r] * rs.grads[r][i].Grad[e]
			}
			g.Grad[e] = s
		}
	}
	return mean
}

// countCorrect adds the hits of the last step's logits against y (B, K)
// and labels (B) to correct, as countCorrect does for one batch.
func (rs *replicaSet[T]) countCorrect(kind string, y *Tensor[T], labels []int, correct []float64) {
	n, b := len(rs.models), y.Shape[0]
	for r, lg := range rs.logits {
		lo, hi := r*b/n, (r+1)*b/n
		countCorrect(kind, lg, rowsOf(y, lo, hi), labels[lo:hi], correct)
	}
}

// rowsOf returns a view of rows [lo, hi) of x along its first axis.
func rowsOf[T Float](x *Tensor[T], lo, hi int) *Tensor[T] {
	row := x.Size() / max(x.Shape[0], 1)
	shape := append([]int{hi - lo}, x.Shape[1:]...)
	return &Tensor[T]{Shape: shape, Data: x.Data[lo*row : hi*row]}
}
