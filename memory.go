// This file estimates the peak memory of a training run and reads how
// much memory the process may use, so that a run that cannot fit is
// refused up front with the numbers, instead of ending in the Go
// runtime's out-of-memory crash.

package loope

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// MemEstimate is the expected peak memory of a training run, in bytes.
type MemEstimate struct {
	Params      int64 // weights and gradients (one gradient set per replica)
	Optimizer   int64 // Adam's two moments
	Activations int64 // the tapes of one step: saved activations and their gradients
	Eval        int64 // the inference tape of the validation pass, alive beside the training tapes
	Data        int64 // the data sets as stored
}

// Total returns the sum of the parts plus a fixed 200 MB for the runtime,
// code and scratch.
func (e MemEstimate) Total() int64 {
	return e.Params + e.Optimizer + e.Activations + e.Eval + e.Data + 200<<20
}

// String describes the estimate in GB, part by part.
func (e MemEstimate) String() string {
	return fmt.Sprintf("%s (parameters and gradients %s, Adam moments %s, activations %s, evaluation %s, data %s)",
		GB(e.Total()), GB(e.Params), GB(e.Optimizer), GB(e.Activations), GB(e.Eval), GB(e.Data))
}

// GB formats a byte count in GB with two decimals.
func GB(b int64) string { return fmt.Sprintf("%.2f GB", float64(b)/(1<<30)) }

// EstimateTrainMemory returns the peak memory expected when Train runs a
// float32 model of cfg at batch images per step on replicas replicas
// (0 or 1: one), with data bytes of stored images.
//
// For the ViT the activation term counts, per image and block, the
// tensors the tape keeps for the backward pass and their gradients: 20 of
// (tokens × width), 5 of (tokens × MLP width) and 4 of (heads × tokens²)
// float32 values; the validation pass's tape, which lives beside them, is
// counted as 60% of that. The factors are set so the estimate errs high
// against the peaks measured in README "Train on real data" (Go's heap
// also keeps some garbage beyond the live tensors).
//
// The other architectures (CaiT, CrossViT and the CNNs) are measured
// instead: the model is built and one float32 training step (and one
// inference forward) runs at batch 2 and at batch 4 on a fresh tape; the
// tape's arena (activations, their gradients and scratch, part of which
// does not grow with the batch) is extrapolated linearly to batch and
// doubled, for the garbage Go's collector lets the heap hold (GOGC 100
// lets it grow to twice the live data). Parameters are counted exactly.
func EstimateTrainMemory(cfg Config, batch, replicas int, data int64) MemEstimate {
	const f32 = 4
	r := int64(max(replicas, 1))
	var p, act, eval int64
	if archName(cfg.Arch) == "vit" {
		p = cfg.backboneParams()
		t, d, m, h := int64(cfg.Tokens()), int64(cfg.Dim), int64(cfg.MLP), int64(cfg.Heads)
		block := 20*t*d + 5*t*m + 4*h*t*t
		img := int64(cfg.Channels) * int64(cfg.Image) * int64(cfg.Image)
		perImage := int64(cfg.Depth)*block + 4*img + 8*t*d
		act = int64(batch) * perImage * f32
		eval = act * 6 / 10
	} else {
		p, act, eval = measureArenas(cfg, int64(max(batch, 2)))
		act, eval = 2*act, 2*eval
	}
	return MemEstimate{
		Params:      (1 + r) * p * f32,
		Optimizer:   2 * p * f32,
		Activations: act,
		Eval:        eval,
		Data:        data,
	}
}

// EstimateMemory returns the peak memory expected of the sweep c: the
// largest EstimateTrainMemory among its model and its reference models
// (-ref), counted once for each run that trains side by side (-jobs).
// The sweep streams its data, so Data is 0.
func (c ThreeCellBenchConfig) EstimateMemory() MemEstimate {
	est := EstimateTrainMemory(c.Model, c.Batch, 1, 0)
	for _, ref := range c.Refs {
		if rc, err := c.refConfig(ref); err == nil {
			if e := EstimateTrainMemory(rc, c.Batch, 1, 0); e.Total() > est.Total() {
				est = e
			}
		}
	}
	j := int64(c.jobs(len(c.Runs())))
	est.Params, est.Optimizer, est.Activations, est.Eval = j*est.Params, j*est.Optimizer, j*est.Activations, j*est.Eval
	return est
}

// measureArenas builds a float32 model of cfg and returns its parameter
// count and the tape arena's bytes at batch b of a training step (forward
// and backward) and of an inference forward, each extrapolated from
// batches 2 and 4 on zero images. A config that does not build gives
// zeros (its errors are reported where it is built for training).
func measureArenas(cfg Config, b int64) (params, train, eval int64) {
	m, err := NewModel[float32](cfg, 0)
	if err != nil {
		return 0, 0, 0
	}
	arena := func(grad bool) int64 {
		var at [2]int64
		for i, n := range []int{2, 4} {
			tp := Tape[float32]{NoGrad: !grad}
			logits := m.Forward(&tp, New[float32](n, cfg.Channels, cfg.Image, cfg.Image))
			if grad {
				tp.backwardFrom(logits, make([]float32, len(logits.Data)))
			}
			at[i] = tp.arenaBytes()
		}
		return at[0] + max(at[1]-at[0], 0)*(b-2)/2
	}
	return int64(NumParams(m)), arena(true), arena(false)
}

// AvailableMemory returns how many bytes this process may still use: the
// smaller of the cgroup limit less its current use (cgroup v2
// memory.max, or v1 memory.limit_in_bytes) and MemAvailable of
// /proc/meminfo, with where that number came from. ok is false where
// neither can be read (not Linux).
func AvailableMemory() (bytes int64, source string, ok bool) {
	if b, err := meminfoAvailable(); err == nil {
		bytes, source, ok = b, "MemAvailable in /proc/meminfo", true
	}
	for _, cg := range []struct{ limit, usage string }{
		{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
		{"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"},
	} {
		limit, err := readInt(cg.limit)
		if err != nil || limit <= 0 || limit >= 1<<60 {
			continue
		}
		used, _ := readInt(cg.usage)
		if left := limit - used; !ok || left < bytes {
			bytes, source, ok = left, "the cgroup limit "+cg.limit+" less its current use", true
		}
		break
	}
	return bytes, source, ok
}

// readInt reads a file holding one integer ("max" is an error).
func readInt(path string) (int64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
}

// meminfoAvailable returns MemAvailable of /proc/meminfo in bytes.
func meminfoAvailable() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no MemAvailable in /proc/meminfo")
}
