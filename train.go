// This file holds the training loop: seeded shuffling, mini-batches, the
// optimiser step with schedule and clipping, periodic evaluation, one
// progress line per interval on stderr and metrics as JSON lines.

package loope

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"time"

	"gonum.org/v1/gonum/floats"
)

// Dataset is a source of labelled images.
type Dataset interface {
	// Len returns the number of examples (per epoch, for streams).
	Len() int
	// Example writes example i: its image, normalised, (C, H, W) into img,
	// and its target into target: K label bits (0 or 1) for multi-label
	// (BCE) data, or target[0] = the class index for class (CE) data.
	Example(i int, img, target []float32)
}

// EpochSetter is implemented by streaming datasets that draw fresh
// examples every epoch; the loop calls SetEpoch before each epoch.
type EpochSetter interface{ SetEpoch(epoch int) }

// TrainConfig holds the optimisation settings of a run.
type TrainConfig struct {
	Steps       int     // optimiser steps in total (> 0)
	Batch       int     // examples per step (> 0)
	LR          float64 // peak learning rate
	MinLR       float64 // final learning rate of the cosine schedule
	Warmup      int     // linear warm-up steps
	WeightDecay float64 // AdamW decoupled weight decay (weights only)
	PELRScale   float64 // learning-rate factor of the PE's params (every PosEmbs param); 0 means 1
	Optimizer   string  // "adamw" (default) or "adam"
	ClipNorm    float64 // global gradient-norm clip; 0 disables
	Loss        string  // "bce" (multi-label bits) or "ce" (classes)
	Smoothing   float64 // label smoothing for "ce"
	Seed        uint64  // shuffling seed
	EvalEvery   int     // evaluate on the validation set every this many steps (0: only at the end)
	LogEvery    int     // progress line every this many steps (0: 50)
	// Replicas > 1 trains data-parallel: the batch is cut into Replicas
	// fixed parts that run at the same time on single-threaded kernels
	// (replica.go). 0 or 1: one model, each kernel split over threads.
	// The bits depend on Replicas (and, with one, on the thread count).
	Replicas int

	// CheckpointDir, if set, receives last.safetensors every
	// CheckpointEvery steps (0: only at the end) and best.safetensors
	// whenever the validation accuracy improves; both written atomically.
	CheckpointDir   string
	CheckpointEvery int
	// Resume, if set, is a checkpoint written by Train (last.safetensors)
	// to continue from: model, optimiser moments, step, schedule position,
	// RNG state and data order are restored, so the run continues bit for
	// bit as if it had never stopped.
	Resume string
	// OnResume, if set, is called with the checkpoint's step once a
	// Resume checkpoint has been checked and restored, before training on:
	// e.g. to cut a metrics log back to that step. An error stops Train.
	OnResume func(step int) error
	// Deadline, if set, ends the run early: once a step finishes after
	// it, Train evaluates, checkpoints and returns as if that step were
	// the last (EvalResult.Steps tells how many ran). For a wall-time
	// budget whose step count was planned from a timing the machine did
	// not keep up (loope train -time).
	Deadline time.Time
	// FitDeadline, with Deadline and EvalEvery, re-plans Steps at every
	// evaluation so that the schedule ends at Deadline at the pace of the
	// run so far (evaluations and checkpoints included; see fitSteps).
	// The cosine then continues from the current step towards the new
	// total: a small, logged change of the learning rate. Which step
	// counts the run takes depends on the machine's speed, so such a run
	// is not bit-reproducible. Changes under 1% are ignored.
	FitDeadline bool
	// Settings are further settings of the run that a resume must keep
	// (e.g. the data set, the validation split, augmentation), as name →
	// value. Train stores them with its own (batch, learning rates, weight
	// decay, clip, smoothing, seed, ...) in every checkpoint and refuses a
	// Resume whose settings differ, listing each difference. Steps,
	// Deadline and the thread count may change on resume.
	Settings map[string]string

	Log     io.Writer // progress lines (typically os.Stderr); nil discards
	Metrics io.Writer // JSON lines, one per log/eval point; nil discards
}

// MaxSteps bounds TrainConfig.Steps (and a checkpoint's step count).
const MaxSteps = 1_000_000_000

// Validate reports every invalid setting.
func (c TrainConfig) Validate() error {
	var errs []error
	if c.Steps <= 0 || c.Steps > MaxSteps {
		errs = append(errs, fmt.Errorf("steps must be in [1, %d], got %d", MaxSteps, c.Steps))
	}
	for _, v := range []struct {
		name string
		x    float64
	}{{"lr", c.LR}, {"min-lr", c.MinLR}, {"weight decay", c.WeightDecay}, {"PE learning-rate scale", c.PELRScale},
		{"clip", c.ClipNorm}, {"smoothing", c.Smoothing}} {
		if math.IsNaN(v.x) || math.IsInf(v.x, 0) {
			errs = append(errs, fmt.Errorf("%s must be finite, got %v", v.name, v.x))
		}
	}
	if c.Batch <= 0 {
		errs = append(errs, fmt.Errorf("batch must be > 0, got %d", c.Batch))
	}
	if !(c.LR > 0) || !(c.MinLR >= 0) || c.MinLR > c.LR {
		errs = append(errs, fmt.Errorf("need 0 <= min-lr <= lr and lr > 0, got lr %g min-lr %g", c.LR, c.MinLR))
	}
	if c.Warmup < 0 || c.WeightDecay < 0 || c.ClipNorm < 0 || c.Smoothing < 0 || c.Smoothing >= 1 {
		errs = append(errs, fmt.Errorf("warmup, weight decay, clip must be >= 0 and smoothing in [0, 1)"))
	}
	if !(c.PELRScale >= 0) || c.PELRScale > 1e6 {
		errs = append(errs, fmt.Errorf("PE learning-rate scale must be in [0, 10⁶], got %g", c.PELRScale))
	}
	if c.Optimizer != "" && c.Optimizer != "adamw" && c.Optimizer != "adam" {
		errs = append(errs, fmt.Errorf("unknown optimizer %q (valid: adamw, adam)", c.Optimizer))
	}
	if c.Replicas < 0 || c.Replicas > max(c.Batch, 1) {
		errs = append(errs, fmt.Errorf("replicas must be in [0, batch], got %d", c.Replicas))
	}
	if c.CheckpointEvery < 0 {
		errs = append(errs, fmt.Errorf("checkpoint interval must be >= 0, got %d", c.CheckpointEvery))
	}
	if c.Loss != "bce" && c.Loss != "ce" {
		errs = append(errs, fmt.Errorf("unknown loss %q (valid: bce, ce)", c.Loss))
	}
	if c.FitDeadline && (c.Deadline.IsZero() || c.EvalEvery <= 0) {
		errs = append(errs, errors.New("FitDeadline needs a Deadline and EvalEvery > 0"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("loope: invalid training config: %w", err)
	}
	return nil
}

// EvalResult is the outcome of Evaluate.
type EvalResult struct {
	Loss     float64   // mean loss
	Acc      float64   // class accuracy (ce) or mean bit accuracy (bce)
	BitAcc   []float64 // per-bit accuracy (bce only)
	Examples int
	Steps    int // from Train: optimiser steps done in total
}

// Metric is one JSON line of the metrics stream.
type Metric struct {
	Step     int       `json:"step"`
	Split    string    `json:"split"` // "train" or "val"
	Loss     float64   `json:"loss"`
	Acc      float64   `json:"acc"`
	BitAcc   []float64 `json:"bit_acc,omitempty"`
	LR       float64   `json:"lr,omitempty"`
	ImagesPS float64   `json:"images_per_s,omitempty"`
	ElapsedS float64   `json:"elapsed_s"`
}

// batcher fills model-precision batches from a Dataset without allocating.
type batcher[T Float] struct {
	ds          Dataset
	img, target []float32
	x, y        *Tensor[T] // (B, C, H, W), (B, K)
	labels      []int      // class indices (ce)
}

func newBatcher[T Float](ds Dataset, cfg Config, batch int) *batcher[T] {
	n := cfg.Channels * cfg.Image * cfg.Image
	return &batcher[T]{ds: ds, img: make([]float32, n), target: make([]float32, cfg.Classes),
		x: New[T](batch, cfg.Channels, cfg.Image, cfg.Image), y: New[T](batch, cfg.Classes), labels: make([]int, batch)}
}

// fill loads examples idx into the first len(idx) rows and returns views of
// exactly that many rows.
func (b *batcher[T]) fill(idx []int) (x, y *Tensor[T], labels []int) {
	n, k := len(b.img), len(b.target)
	for r, i := range idx {
		clear(b.target)
		b.ds.Example(i, b.img, b.target)
		for j, v := range b.img {
			b.x.Data[r*n+j] = T(v)
		}
		for j, v := range b.target {
			b.y.Data[r*k+j] = T(v)
		}
		b.labels[r] = int(b.target[0])
	}
	m := len(idx)
	x = &Tensor[T]{Shape: []int{m, b.x.Shape[1], b.x.Shape[2], b.x.Shape[3]}, Data: b.x.Data[:m*n]}
	y = &Tensor[T]{Shape: []int{m, k}, Data: b.y.Data[:m*k]}
	return x, y, b.labels[:m]
}

// loss adds the configured loss of logits to tp.
func lossOf[T Float](tp *Tape[T], kind string, smoothing float64, logits, y *Tensor[T], labels []int) *Tensor[T] {
	if kind == "ce" {
		return tp.CrossEntropy(logits, labels, smoothing)
	}
	return tp.BCEWithLogits(logits, y)
}

// Evaluate runs m over ds in inference mode and returns mean loss and
// accuracy.
func Evaluate[T Float](m Model[T], ds Dataset, kind string, batch int) EvalResult {
	b := newBatcher[T](ds, m.Config(), batch)
	tp := &Tape[T]{NoGrad: true}
	k := m.Config().Classes
	res := EvalResult{Examples: ds.Len()}
	correct := make([]float64, k)
	idx := make([]int, 0, batch)
	for lo := 0; lo < ds.Len(); lo += batch {
		idx = idx[:0]
		for i := lo; i < min(lo+batch, ds.Len()); i++ {
			idx = append(idx, i)
		}
		tp.Reset()
		x, y, labels := b.fill(idx)
		logits := m.Forward(tp, x)
		res.Loss += float64(lossOf(tp, kind, 0, logits, y, labels).Data[0]) * float64(len(idx))
		countCorrect(kind, logits, y, labels, correct)
	}
	n := float64(max(ds.Len(), 1))
	res.Loss /= n
	if kind == "ce" {
		res.Acc = correct[0] / n
		return res
	}
	res.BitAcc = make([]float64, k)
	for j := range k {
		res.BitAcc[j] = correct[j] / n
		res.Acc += res.BitAcc[j] / float64(k)
	}
	return res
}

// Train optimises m on train for config.Steps steps, evaluating on val
// (may be nil). Same seed and thread count give the same bits, also across
// a checkpoint and resume.
func Train[T Float](m Model[T], train, val Dataset, config TrainConfig) (EvalResult, error) {
	r, err := newTrainRun(m, train, val, config)
	if err != nil {
		return EvalResult{}, err
	}
	st, tc := &r.st, &r.tc
	start, first := time.Now(), st.Step
	meter := trainMeter{start: start, lastT: start, every: r.logEvery}
	for st.Step < tc.Steps {
		lr := CosineLR(st.Step, tc.Steps, tc.Warmup, tc.LR, tc.MinLR)
		lv, acc, err := r.step(lr)
		if err != nil {
			return r.last, err
		}
		meter.add(lv, acc, tc.Batch)
		st.Step++
		done := st.Step
		stop := !tc.Deadline.IsZero() && done < tc.Steps && time.Now().After(tc.Deadline)
		if stop {
			fmt.Fprintf(r.logw, "deadline: stopping after step %d of %d\n", done, tc.Steps)
		}
		if done%r.logEvery == 0 || done == tc.Steps || stop {
			meter.report(r.logw, r.enc, done, tc.Steps, tc.Batch, lr)
		}
		evalStep := tc.EvalEvery > 0 && done%tc.EvalEvery == 0
		if val != nil && (evalStep || done == tc.Steps || stop) {
			if err := r.validate(start); err != nil {
				return r.last, err
			}
		}
		if (tc.CheckpointEvery > 0 && done%tc.CheckpointEvery == 0) || done == tc.Steps || stop {
			if err := r.save("last.safetensors"); err != nil {
				return r.last, err
			}
		}
		if stop {
			break
		}
		if tc.FitDeadline && evalStep && done < tc.Steps {
			now := time.Now()
			n := fitSteps(done, done-first, now.Sub(start), tc.Deadline.Sub(now)-r.evalTime)
			if d := n - tc.Steps; 100*max(d, -d) >= tc.Steps {
				fmt.Fprintf(r.logw, "re-plan at step %d: %d steps instead of %d to end by the deadline at this pace\n", done, n, tc.Steps)
				tc.Steps = n
			}
		}
	}
	r.last.Steps = st.Step
	return r.last, nil
}

// trainRun is the state of one Train call.
type trainRun[T Float] struct {
	m          Model[T]
	train, val Dataset
	tc         TrainConfig
	logw       io.Writer     // progress lines
	enc        *json.Encoder // metrics as JSON lines
	logEvery   int
	params     []NamedParam[T]
	grads      []*Tensor[T] // the trainable parameters, for clipping
	opt        *Adam[T]
	pcg        *rand.PCG // the shuffling RNG's state, saved in checkpoints
	rng        *rand.Rand
	st         trainState
	b          *batcher[T]
	rs         *replicaSet[T]
	idx        []int     // (B) example indices of the step
	hits       []float64 // (K) correct counts of the step
	last       EvalResult
	evalTime   time.Duration // the latest validation pass
}

// newTrainRun checks tc and sets up a run of m: the optimiser, the
// shuffle (fresh, or restored from tc.Resume), the batcher and replicas.
func newTrainRun[T Float](m Model[T], train, val Dataset, tc TrainConfig) (*trainRun[T], error) {
	if err := tc.Validate(); err != nil {
		return nil, err
	}
	if train.Len() == 0 {
		return nil, errors.New("loope: empty training set")
	}
	r := &trainRun[T]{m: m, train: train, val: val, tc: tc, logw: cmp.Or[io.Writer](tc.Log, io.Discard),
		enc: json.NewEncoder(cmp.Or[io.Writer](tc.Metrics, io.Discard)), logEvery: cmp.Or(max(tc.LogEvery, 0), 50),
		params: m.Params(), opt: newTrainOptimizer(m, tc), grads: trainable(m),
		idx: make([]int, tc.Batch), hits: make([]float64, m.Config().Classes)}
	r.pcg = rand.NewPCG(tc.Seed, 0x5eed)
	r.rng = rand.New(r.pcg)
	var err error
	if r.st, err = startTrain(m, r.opt, train.Len(), tc, r.pcg, r.rng, r.logw); err != nil {
		return nil, err
	}
	if es, ok := train.(EpochSetter); ok {
		es.SetEpoch(r.st.Epoch)
	}
	r.b = newBatcher[T](train, m.Config(), tc.Batch)
	if r.rs, err = newReplicaSet(m, max(tc.Replicas, 1)); err != nil {
		return nil, err
	}
	return r, nil
}

// step takes one optimiser step at learning rate lr on the next batch and
// returns its loss and accuracy. A non-finite loss, gradient or parameter
// stops the run (the last checkpoint is kept).
func (r *trainRun[T]) step(lr float64) (lv, acc float64, err error) {
	tc, n := r.tc, r.st.Step+1
	r.st.nextBatch(r.idx, r.rng, r.train)
	x, y, labels := r.b.fill(r.idx)
	peTrainMode(r.rs.models, true, tc.Seed, r.st.Step)
	lv = r.rs.step(tc.Loss, tc.Smoothing, x, y, labels)
	peTrainMode(r.rs.models, false, 0, 0)
	if math.IsNaN(lv) || math.IsInf(lv, 0) {
		return lv, 0, fmt.Errorf("loope: non-finite loss %v at step %d (last good checkpoint kept)", lv, n)
	}
	if err := checkFinite(r.params, true); err != nil {
		return lv, 0, fmt.Errorf("loope: step %d: %w (last good checkpoint kept)", n, err)
	}
	if tc.ClipNorm > 0 {
		ClipGradNorm(r.grads, tc.ClipNorm)
	}
	r.opt.Update(lr)
	if err := checkFinite(r.params, false); err != nil {
		return lv, 0, fmt.Errorf("loope: step %d: %w (last good checkpoint kept)", n, err)
	}
	clear(r.hits)
	r.rs.countCorrect(tc.Loss, y, labels, r.hits)
	if tc.Loss == "ce" {
		return lv, r.hits[0] / float64(len(r.idx)), nil
	}
	return lv, floats.Sum(r.hits) / float64(len(r.idx)*len(r.hits)), nil
}

// validate evaluates the model on the validation set after the step just
// taken, logs the result and saves best.safetensors on a new best.
func (r *trainRun[T]) validate(start time.Time) error {
	done, t := r.st.Step, time.Now()
	r.last = Evaluate(r.m, r.val, r.tc.Loss, r.tc.Batch)
	r.evalTime = time.Since(t)
	if math.IsNaN(r.last.Loss) || math.IsInf(r.last.Loss, 0) {
		// The parameters were checked finite, so the validation data is at fault.
		return fmt.Errorf("loope: non-finite validation loss %v at step %d: check the validation data (last good checkpoint kept)", r.last.Loss, done)
	}
	fmt.Fprintf(r.logw, "eval step %d loss %.4f acc %.4f\n", done, r.last.Loss, r.last.Acc)
	r.enc.Encode(Metric{Step: done, Split: "val", Loss: r.last.Loss, Acc: r.last.Acc, BitAcc: r.last.BitAcc,
		ElapsedS: time.Since(start).Seconds()})
	if r.last.Acc <= r.st.BestAcc {
		return nil
	}
	r.st.BestAcc = r.last.Acc
	return r.save("best.safetensors")
}

// save writes the checkpoint name into tc.CheckpointDir (if set), with the
// shuffling RNG's state.
func (r *trainRun[T]) save(name string) error {
	if r.tc.CheckpointDir == "" {
		return nil
	}
	var err error
	if r.st.RNG, err = r.pcg.MarshalBinary(); err != nil {
		return err
	}
	return saveTrainCheckpoint(filepath.Join(r.tc.CheckpointDir, name), r.m, r.opt, r.st)
}

// trainMeter sums the training loss and accuracy between progress lines.
type trainMeter struct {
	lossSum, accSum float64
	seen, lastSeen  int       // images trained on, in all and at the last line
	start, lastT    time.Time // the run's start and the last line's time
	every           int       // steps between lines
}

// add counts one step of n images with loss lv and accuracy acc.
func (t *trainMeter) add(lv, acc float64, n int) {
	t.lossSum += lv
	t.accSum += acc
	t.seen += n
}

// report writes the progress line and the train metric after step done of
// total (means over the steps since the last line), and starts a new sum.
func (t *trainMeter) report(logw io.Writer, enc *json.Encoder, done, total, batch int, lr float64) {
	now := time.Now()
	steps := float64((done-1)%t.every + 1)
	ips := float64(t.seen-t.lastSeen) / now.Sub(t.lastT).Seconds()
	eta := time.Duration(float64(total-done) * float64(batch) / ips * float64(time.Second))
	fmt.Fprintf(logw, "step %d/%d loss %.4f acc %.4f lr %.3g %.1f img/s eta %s\n",
		done, total, t.lossSum/steps, t.accSum/steps, lr, ips, eta.Round(time.Second))
	enc.Encode(Metric{Step: done, Split: "train", Loss: t.lossSum / steps, Acc: t.accSum / steps,
		LR: lr, ImagesPS: ips, ElapsedS: now.Sub(t.start).Seconds()})
	t.lossSum, t.accSum, t.lastSeen, t.lastT = 0, 0, t.seen, now
}

// newTrainOptimizer returns tc's optimiser over m's parameters (AdamW, or
// Adam), with the PE's learning-rate factor set.
func newTrainOptimizer[T Float](m Model[T], tc TrainConfig) *Adam[T] {
	var opt *Adam[T]
	if tc.Optimizer == "adam" {
		opt = NewAdam(m.Params())
	} else {
		opt = NewAdamW(m.Params(), tc.WeightDecay)
	}
	if tc.PELRScale != 0 && tc.PELRScale != 1 {
		opt.SetLRScale(peParams(m), tc.PELRScale)
	}
	return opt
}

// fitSteps returns the total step count that uses the time left at the
// pace of the run so far: done steps taken, ran of them in elapsed since
// this run (or resume) started, all evaluations and checkpoints counted
// in. left is the time to the deadline less one more evaluation (the
// final one). It keeps 1% of left for the pace's drift (the deadline
// itself is the guard) and never goes below done+1.
func fitSteps(done, ran int, elapsed, left time.Duration) int {
	if ran <= 0 || elapsed <= 0 {
		return done + 1
	}
	more := math.Min(0.99*left.Seconds()/(elapsed.Seconds()/float64(ran)), 1e9)
	return done + max(int(more), 1)
}

// countCorrect adds, for each row of logits (B, K), its hits to correct:
// correct[0] += 1 for a right argmax class (ce), or correct[j] += 1 for
// each bit j whose logit sign matches the target (bce).
func countCorrect[T Float](kind string, logits, y *Tensor[T], labels []int, correct []float64) {
	b, k := logits.Shape[0], logits.Shape[1]
	for r := range b {
		row := logits.Data[r*k : (r+1)*k]
		if kind == "ce" {
			best := 0
			for j, v := range row {
				if v > row[best] {
					best = j
				}
			}
			if best == labels[r] {
				correct[0]++
			}
			continue
		}
		for j, v := range row {
			if (v > 0) == (y.Data[r*k+j] > 0.5) {
				correct[j]++
			}
		}
	}
}
