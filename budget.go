// This file holds PlanSteps, the planner of a wall-time budget: how many
// training steps fit, timed on the machine that runs them.

package loope

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// PlanSteps returns how many training steps of batch images fit in the
// time left to end (a wall-time budget, `loope train -time`), and the
// deadline for training. It times Train (cross-entropy, AdamW, the run's
// replicas) on a fresh model of cfg and generated images, and inference
// passes, on this machine, and reserves the run's evaluations (ten passes
// over val images, one over test images) plus 3 % slack for logging,
// checkpoints and the PNG. A shared machine's speed drifts within minutes,
// so no fixed slack both fills and keeps a budget (docs/benchmarks.md §4):
// it plans for the timed speed and returns a deadline, the end less 1.5
// times the timed test pass and 3 s for the PNG and the best checkpoint.
// Train then re-plans at each evaluation to end at that deadline
// (TrainConfig.FitDeadline) and stops there if the machine slows after
// the last one (TrainConfig.Deadline). The measured speeds go to log.
func PlanSteps(cfg Config, batch, replicas int, end time.Time, val, test int, log io.Writer) (int, time.Time, error) {
	if log == nil {
		log = io.Discard
	}
	ds := noiseSet{n: 4 * batch, size: cfg.Channels * cfg.Image * cfg.Image, classes: cfg.Classes}
	train := func(steps int) (time.Duration, Model[float32], error) {
		m, err := NewModel[float32](cfg, 1)
		if err != nil {
			return 0, nil, err
		}
		start := time.Now()
		_, err = Train(m, ds, nil, TrainConfig{Steps: steps, Batch: batch, LR: 1e-4, WeightDecay: 0.05,
			ClipNorm: 1, Loss: "ce", Replicas: replicas})
		return time.Since(start), m, err
	}
	// The difference of a 2- and a 14-step run leaves out the first steps'
	// set-up (replicas, tape arenas, optimiser state).
	const warm, timed = 2, 12
	short, _, err := train(warm)
	if err != nil {
		return 0, time.Time{}, err
	}
	long, m, err := train(warm + timed)
	if err != nil {
		return 0, time.Time{}, err
	}
	perImage := max(long-short, time.Microsecond).Seconds() / float64(timed*batch)
	x := New[float32](batch, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rand.New(rand.NewPCG(1, 2)), 0, 1)
	infer := Tape[float32]{NoGrad: true}
	var start time.Time
	for i := range 1 + timed/2 { // the first pass grows the tape's arena
		if i == 1 {
			start = time.Now()
		}
		infer.Reset()
		m.Forward(&infer, x)
	}
	evalPerImage := time.Since(start).Seconds() / float64(timed/2*batch)
	left := time.Until(end)
	eval := evalPerImage * float64(10*val+test)
	n := int((left.Seconds()/1.03 - eval) / (perImage * float64(batch)))
	if n < 1 {
		return 0, time.Time{}, fmt.Errorf("too short: %v of it is left after loading the data and timing, one step of batch %d takes %.2fs here and the evaluations %.0fs",
			max(left, 0).Round(time.Millisecond), batch, perImage*float64(batch), eval)
	}
	fmt.Fprintf(log, "time budget: %.0f images/s training, %.0f images/s inference measured here → %d steps\n", 1/perImage, 1/evalPerImage, n)
	deadline := end.Add(-time.Duration((1.5*evalPerImage*float64(test) + 3) * float64(time.Second)))
	return n, deadline, nil
}

// noiseSet is a Dataset of n images of size values drawn from a fixed
// pattern, with classes cycling: input for timing runs.
type noiseSet struct{ n, size, classes int }

func (d noiseSet) Len() int { return d.n }

func (d noiseSet) Example(i int, img, target []float32) {
	for j := range img {
		img[j] = float32((i*31+j*17)%13)/6 - 1
	}
	target[0] = float32(i % max(d.classes, 1))
}
