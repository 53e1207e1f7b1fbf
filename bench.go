// This file holds TimeTrainSteps, the timing behind `loope bench`: full
// training steps of a model on one fixed batch, as a training loop runs
// them.

package loope

import (
	"fmt"
	"math"
	"time"
)

// TimeTrainSteps runs untimed steps, then steps timed steps of training m
// on the batch x (B, C, H, W) with 0/1 targets y (B, K): zero the
// gradients, forward, mean BCE over the K outputs, backward, one AdamW
// update (lr 1e-3, weight decay 0.05). It returns the wall time of the
// timed steps, or an error at a non-finite loss (the timing would be of
// NaN arithmetic).
func TimeTrainSteps[T Float](m Model[T], x, y *Tensor[T], untimed, steps int) (time.Duration, error) {
	opt := NewAdamW(m.Params(), 0.05)
	trainable := trainable(m)
	var tp Tape[T]
	var start time.Time
	for i := range untimed + steps {
		if i == untimed {
			start = time.Now()
		}
		tp.Reset()
		ZeroGrad(trainable)
		loss := tp.BCEWithLogits(m.Forward(&tp, x), y)
		if l := float64(loss.Data[0]); math.IsNaN(l) || math.IsInf(l, 0) {
			return 0, fmt.Errorf("loope: non-finite loss %v at step %d: the timing would be of NaN arithmetic", l, i+1)
		}
		tp.Backward(loss)
		opt.Update(1e-3)
	}
	return time.Since(start), nil
}
