// This file holds the training checkpoint: what a run saves beyond model
// and optimiser (its position in the data order, the shuffling RNG, the
// best validation accuracy and the settings a resume must keep), how it is
// written, and how a resume restores and checks it.

package loope

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// trainState is the position of a run that a checkpoint must restore
// beyond model and optimiser: saved as JSON metadata plus the data order.
type trainState struct {
	Step     int               `json:"step"`               // steps done
	Epoch    int               `json:"epoch"`              // current epoch
	Pos      int               `json:"pos"`                // next index into perm
	RNG      []byte            `json:"rng"`                // shuffling PCG state
	BestAcc  float64           `json:"best_acc"`           // best validation accuracy so far (-1: none)
	Settings map[string]string `json:"settings,omitempty"` // runSettings of the run (absent in checkpoints before issue 19)
	perm     []int             // data order of the current epoch ("train.perm")
}

// runSettings returns the settings of c that a resume must keep: its own
// optimisation settings and c.Settings.
func (c TrainConfig) runSettings() map[string]string {
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	opt := c.Optimizer
	if opt == "" {
		opt = "adamw"
	}
	s := map[string]string{"batch": strconv.Itoa(c.Batch), "lr": g(c.LR), "min_lr": g(c.MinLR), "weight_decay": g(c.WeightDecay),
		"pe_lr_scale": g(c.PELRScale), "optimizer": opt, "clip": g(c.ClipNorm), "loss": c.Loss, "smoothing": g(c.Smoothing),
		"seed": strconv.FormatUint(c.Seed, 10)}
	maps.Copy(s, c.Settings)
	return s
}

// settingsDiff lists, one per line, each setting whose value differs
// between a checkpoint (was) and this run (now), in name order.
func settingsDiff(was, now map[string]string) []string {
	keys := maps.Clone(was)
	maps.Copy(keys, now)
	var diff []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		a, okA := was[k]
		b, okB := now[k]
		switch {
		case !okA:
			diff = append(diff, fmt.Sprintf("%s: not in the checkpoint, %s in this run", k, b))
		case !okB:
			diff = append(diff, fmt.Sprintf("%s: %s in the checkpoint, not set in this run", k, a))
		case a != b:
			diff = append(diff, fmt.Sprintf("%s: %s in the checkpoint, %s in this run", k, a, b))
		}
	}
	return diff
}

// configDiff lists the fields of the model configs a and b that differ.
func configDiff(a, b Config) []string {
	var ma, mb map[string]any
	json.Unmarshal([]byte(mustJSON(a)), &ma)
	json.Unmarshal([]byte(mustJSON(b)), &mb)
	was, now := map[string]string{}, map[string]string{}
	for k, v := range ma {
		was["model."+k] = mustJSON(v)
	}
	for k, v := range mb {
		now["model."+k] = mustJSON(v)
	}
	return settingsDiff(was, now)
}

// checkPerm returns an error unless perm is a permutation of [0, n).
func checkPerm(perm []int, n int) error {
	if len(perm) != n {
		return fmt.Errorf("train.perm has %d entries, the training set %d images", len(perm), n)
	}
	seen := make([]bool, n)
	for i, v := range perm {
		if v < 0 || v >= n {
			return fmt.Errorf("train.perm[%d] = %d is outside [0, %d)", i, v, n)
		}
		if seen[v] {
			return fmt.Errorf("train.perm[%d] = %d repeats an earlier entry (want a permutation of [0, %d))", i, v, n)
		}
		seen[v] = true
	}
	return nil
}

// saveTrainCheckpoint writes m, opt and st to path atomically.
func saveTrainCheckpoint[T Float](path string, m Model[T], opt *Adam[T], st trainState) error {
	f, err := checkpointFile(m, opt)
	if err != nil {
		return err
	}
	f.Metadata["train_state"] = mustJSON(st)
	if err := PutInts(f, "train.perm", st.perm, len(st.perm)); err != nil {
		return err
	}
	return f.WriteFile(path)
}

// resumeTrain restores m, opt and the run position from a checkpoint
// written by saveTrainCheckpoint for a run of tc on n training examples.
// Everything restored is checked: the model config and tc's settings
// (runSettings) must equal the checkpoint's, the tensors must be exactly
// the model's and the optimiser's (LoadParams, LoadOptimizer) plus
// train.perm, a permutation of [0, n), and the position must be one a run
// of this batch size reaches: epoch·n + pos = step·batch, with step below
// tc.Steps.
func resumeTrain[T Float](path string, m Model[T], opt *Adam[T], n int, tc TrainConfig, logw io.Writer) (trainState, error) {
	f, err := ReadSafeFile(path)
	if err != nil {
		return trainState{}, err
	}
	st, err := restoreTrain(f, m, opt, n, tc, logw)
	if err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// CheckpointStep returns the number of steps a training checkpoint (a
// last.safetensors or best.safetensors of Train) was saved after, from its
// train_state: what a resumed run with a time budget adds its steps to.
func CheckpointStep(path string) (int, error) {
	f, err := ReadSafeFile(path)
	if err != nil {
		return 0, err
	}
	st, err := trainStateOf(f)
	if err != nil {
		return 0, fmt.Errorf("loope: %s: %w", path, err)
	}
	if st.Step < 0 || st.Step > MaxSteps {
		return 0, fmt.Errorf("loope: %s: train_state step %d outside [0, %d]", path, st.Step, MaxSteps)
	}
	return st.Step, nil
}

// trainStateOf parses the train_state metadata of a training checkpoint
// (without train.perm).
func trainStateOf(f *SafeFile) (trainState, error) {
	var st trainState
	if err := json.Unmarshal([]byte(f.Metadata["train_state"]), &st); err != nil {
		return st, fmt.Errorf("bad train_state metadata: %v", err)
	}
	return st, nil
}

// restoreTrain is resumeTrain on a parsed checkpoint f.
func restoreTrain[T Float](f *SafeFile, m Model[T], opt *Adam[T], n int, tc TrainConfig, logw io.Writer) (trainState, error) {
	var st trainState
	bad := func(format string, a ...any) (trainState, error) {
		return st, fmt.Errorf(format, a...)
	}
	cfg, err := ConfigFromSafe(f)
	if err != nil {
		return bad("%v", err)
	}
	if st, err = trainStateOf(f); err != nil {
		return bad("%v", err)
	}
	diff := configDiff(cfg, m.Config())
	if st.Settings == nil {
		fmt.Fprintln(logw, "warning: the checkpoint predates stored training settings; only the model config is checked")
	} else {
		diff = append(diff, settingsDiff(st.Settings, tc.runSettings())...)
	}
	if len(diff) > 0 {
		return bad("what the checkpoint was trained with differs from this run (only the step count, time budget and threads may change on resume):\n  %s",
			strings.Join(diff, "\n  "))
	}
	if err := LoadParams(m, f, "optim.", "train."); err != nil {
		return bad("%v", err)
	}
	if err := LoadOptimizer(opt, m, f); err != nil {
		return bad("%v", err)
	}
	for _, name := range f.Names {
		if hasAnyPrefix(name, []string{"train."}) && name != "train.perm" {
			return bad("unexpected tensor %q (a training checkpoint holds only train.perm)", name)
		}
	}
	if st.perm, _, err = GetInts(f, "train.perm"); err != nil {
		return bad("%v", err)
	}
	if err := checkPerm(st.perm, n); err != nil {
		return bad("%v", err)
	}
	switch {
	case st.Step != opt.Step || st.Step < 1:
		return bad("train state step %d does not match the optimiser step %d (want equal, ≥ 1)", st.Step, opt.Step)
	case st.Pos < 0 || st.Pos > n || st.Epoch < 0 || st.Epoch > MaxSteps ||
		int64(st.Epoch)*int64(n)+int64(st.Pos) != int64(st.Step)*int64(tc.Batch):
		return bad("train state (step %d, epoch %d, pos %d) is not a position a run of batch %d on %d examples reaches (epoch·%d + pos = step·batch)",
			st.Step, st.Epoch, st.Pos, tc.Batch, n, n)
	case !(st.BestAcc >= -1 && st.BestAcc <= 1):
		return bad("train state best_acc %v outside [-1, 1]", st.BestAcc)
	case st.Step >= tc.Steps:
		return bad("the checkpoint is at step %d, this run has %d steps: nothing to do (give more steps to continue it)", st.Step, tc.Steps)
	}
	return st, nil
}

// startTrain returns the position a run starts from: a fresh data order
// drawn from rng, or, with tc.Resume, the checkpoint's position, model,
// optimiser and RNG state pcg (restored and checked by resumeTrain), after
// which tc.OnResume runs. n is the training set's size.
func startTrain[T Float](m Model[T], opt *Adam[T], n int, tc TrainConfig, pcg *rand.PCG, rng *rand.Rand, logw io.Writer) (trainState, error) {
	if tc.Resume == "" {
		return trainState{BestAcc: -1, Settings: tc.runSettings(), perm: rng.Perm(n)}, nil
	}
	st, err := resumeTrain(tc.Resume, m, opt, n, tc, logw)
	if err != nil {
		return st, err
	}
	if err := pcg.UnmarshalBinary(st.RNG); err != nil {
		return st, fmt.Errorf("%s: bad RNG state: %w", tc.Resume, err)
	}
	st.Settings = tc.runSettings() // equal, or absent in an old checkpoint
	if tc.OnResume != nil {
		if err := tc.OnResume(st.Step); err != nil {
			return st, err
		}
	}
	fmt.Fprintf(logw, "resumed from %s at step %d\n", tc.Resume, st.Step)
	return st, nil
}

// nextBatch fills idx with the next examples of the seeded shuffle,
// drawing a new order from rng (and moving train to the next epoch) when
// the current one is used up.
func (st *trainState) nextBatch(idx []int, rng *rand.Rand, train Dataset) {
	for r := range idx {
		if st.Pos == len(st.perm) {
			st.Pos, st.Epoch = 0, st.Epoch+1
			st.perm = rng.Perm(train.Len())
			if es, ok := train.(EpochSetter); ok {
				es.SetEpoch(st.Epoch)
			}
		}
		idx[r] = st.perm[st.Pos]
		st.Pos++
	}
}
