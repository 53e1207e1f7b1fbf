// This file maps a ViT to and from safetensors: checkpoints (weights with
// timm names, optimiser moments, config in the metadata) and the golden
// fixtures porters check their ports against.

package loope

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Metadata keys of our safetensors files.
const (
	metaFormat  = "format"   // "loope-checkpoint/1" or "loope-fixture/1"
	metaConfig  = "config"   // JSON of Config (incl. every PE option)
	metaParams  = "params"   // JSON list of parameter names, in model order
	metaNoDecay = "no_decay" // JSON list of names excluded from weight decay
	metaBuffers = "buffers"  // JSON list of names that are buffers, not trained (e.g. BatchNorm running stats)
	metaStep    = "step"     // optimiser steps taken (checkpoints)
)

// putParams stores every model tensor under its timm name.
func putParams[T Float](f *SafeFile, m Model[T]) error {
	names, nodecay, buffers := []string{}, []string{}, []string{}
	for _, p := range m.Params() {
		if err := PutFloat(f, p.Name, p.T.Data, p.T.Shape...); err != nil {
			return err
		}
		names = append(names, p.Name)
		if p.NoDecay {
			nodecay = append(nodecay, p.Name)
		}
		if p.Buffer {
			buffers = append(buffers, p.Name)
		}
	}
	cfg, err := json.Marshal(m.Config())
	if err != nil {
		return err
	}
	f.Metadata[metaConfig] = string(cfg)
	f.Metadata[metaParams] = mustJSON(names)
	f.Metadata[metaNoDecay] = mustJSON(nodecay)
	f.Metadata[metaBuffers] = mustJSON(buffers)
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// ConfigFromSafe reads the model config stored in f's metadata.
func ConfigFromSafe(f *SafeFile) (Config, error) {
	s, ok := f.Metadata[metaConfig]
	if !ok {
		return Config{}, errors.New("loope: no model config in safetensors metadata (key \"config\")")
	}
	var cfg Config
	if err := json.Unmarshal([]byte(s), &cfg); err != nil {
		return Config{}, fmt.Errorf("loope: bad model config in metadata: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	// A file with the config also holds the model's tensors, so a config
	// claiming more backbone scalars than the file has is corrupt; checked
	// here, before NewViT allocates the model.
	var have int64
	for _, t := range f.Tensors {
		n := int64(1)
		for _, s := range t.Shape {
			n *= int64(s)
		}
		have += n
	}
	if s, _ := lookupArch(cfg.Arch); s.minParams != nil && s.minParams(cfg) > have {
		need := s.minParams(cfg)
		return Config{}, fmt.Errorf("loope: model config needs at least %d parameters, the file holds %d values", need, have)
	}
	return cfg, nil
}

// LoadParams copies every tensor of m from f, checking that each name is
// present with the model's shape and holds only finite values (Train never
// saves a NaN or Inf, so one is corruption); a tensor stored in the other
// float precision is converted. Tensors of f that m does not have are an
// error unless they start with one of the prefixes in ignore.
func LoadParams[T Float](m Model[T], f *SafeFile, ignore ...string) error {
	want := map[string]bool{}
	var errs []error
	for _, p := range m.Params() {
		want[p.Name] = true
		data, shape, err := GetFloat[T](f, p.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !sameShape(shape, p.T.Shape) {
			errs = append(errs, fmt.Errorf("tensor %q has shape %v, model wants %v", p.Name, shape, p.T.Shape))
			continue
		}
		copy(p.T.Data, data)
		if err := checkFinite([]NamedParam[T]{p}, false); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range f.Names {
		if want[name] || hasAnyPrefix(name, ignore) {
			continue
		}
		errs = append(errs, fmt.Errorf("unexpected tensor %q (not a parameter of this %s model with PE %s)", name, archName(m.Config().Arch), peNames(m)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("loope: loading parameters: %w", err)
	}
	return nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if len(s) >= len(p) && s[:len(p)] == p {
			return true
		}
	}
	return false
}

// SaveCheckpoint writes m, the optimiser moments (as "optim.m.<name>" and
// "optim.v.<name>") and the step count to path, atomically.
func SaveCheckpoint[T Float](path string, m Model[T], opt *Adam[T]) error {
	f, err := checkpointFile(m, opt)
	if err != nil {
		return err
	}
	return f.WriteFile(path)
}

// checkpointFile builds the safetensors file of a checkpoint in memory.
func checkpointFile[T Float](m Model[T], opt *Adam[T]) (*SafeFile, error) {
	f := NewSafeFile()
	f.Metadata[metaFormat] = "loope-checkpoint/1"
	if err := putParams(f, m); err != nil {
		return nil, err
	}
	if opt == nil {
		return f, nil
	}
	f.Metadata[metaStep] = strconv.Itoa(opt.Step)
	mo, vo := opt.Moments()
	i := 0
	for _, p := range m.Params() {
		if p.Buffer {
			continue
		}
		if err := PutFloat(f, "optim.m."+p.Name, mo[i], p.T.Shape...); err != nil {
			return nil, err
		}
		if err := PutFloat(f, "optim.v."+p.Name, vo[i], p.T.Shape...); err != nil {
			return nil, err
		}
		i++
	}
	return f, nil
}

// LoadModel reads a checkpoint written by SaveCheckpoint: it rebuilds the
// model of any architecture from the stored config and loads its tensors.
// The returned file holds the rest (optimiser moments, training state) for
// LoadOptimizer.
func LoadModel[T Float](path string) (Model[T], *SafeFile, error) {
	f, err := ReadSafeFile(path)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := ConfigFromSafe(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	m, err := NewModel[T](cfg, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := LoadParams(m, f, "optim.", "train."); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, f, nil
}

// LoadCheckpoint is LoadModel for a ViT checkpoint; another architecture's
// checkpoint is an error.
func LoadCheckpoint[T Float](path string) (*ViT[T], *SafeFile, error) {
	m, f, err := LoadModel[T](path)
	if err != nil {
		return nil, nil, err
	}
	v, ok := m.(*ViT[T])
	if !ok {
		return nil, nil, fmt.Errorf("%s: a %s checkpoint, not a ViT's", path, archName(m.Config().Arch))
	}
	return v, f, nil
}

// LoadOptimizer restores opt (made for m's Params) from a checkpoint file.
// The file's "optim.*" tensors must be exactly the moments of m's trained
// parameters ("optim.m.<name>" and "optim.v.<name>", each with the
// parameter's shape), all finite, the second moments ≥ 0, and the step in
// [0, MaxSteps]: anything else is corruption and an error naming it.
func LoadOptimizer[T Float](opt *Adam[T], m Model[T], f *SafeFile) error {
	step, err := strconv.Atoi(f.Metadata[metaStep])
	if err != nil || step < 0 || step > MaxSteps {
		return fmt.Errorf("loope: checkpoint has no valid optimiser step (%q; want an integer in [0, %d])", f.Metadata[metaStep], MaxSteps)
	}
	mo, vo := opt.Moments()
	want := map[string]bool{}
	i := 0
	for _, p := range m.Params() {
		if p.Buffer {
			continue
		}
		for _, part := range []struct {
			prefix string
			dst    []T
		}{{"optim.m.", mo[i]}, {"optim.v.", vo[i]}} {
			name := part.prefix + p.Name
			want[name] = true
			data, shape, err := GetFloat[T](f, name)
			if err != nil {
				return err
			}
			if !sameShape(shape, p.T.Shape) {
				return fmt.Errorf("loope: %s has shape %v, want %v", name, shape, p.T.Shape)
			}
			for j, x := range data {
				if v := float64(x); math.IsNaN(v) || math.IsInf(v, 0) || (part.prefix == "optim.v." && v < 0) {
					return fmt.Errorf("loope: %s holds %v at element %d (want finite%s)", name, v, j,
						map[bool]string{true: ", ≥ 0", false: ""}[part.prefix == "optim.v."])
				}
			}
			copy(part.dst, data)
		}
		i++
	}
	for _, name := range f.Names {
		if hasAnyPrefix(name, []string{"optim."}) && !want[name] {
			return fmt.Errorf("loope: unexpected optimiser tensor %q (not a moment of this model's parameters)", name)
		}
	}
	opt.Step = step
	return nil
}

// FixtureConfig describes a golden fixture for porters.
type FixtureConfig struct {
	Model     Config  // model; Classes is the number of outputs
	Seed      uint64  // weights, input and targets all derive from it
	Batch     int     // images in the input batch
	Loss      string  // "bce" (6-bit targets) or "ce" (class targets)
	Smoothing float64 // label smoothing for "ce"
}

// Fixture builds the model of fc, runs one forward and backward pass on a
// seeded N(0, 1) input batch and random targets, and returns a safetensors
// file holding the initial weights (timm names), "input" (B, C, H, W),
// "targets" (B, K) bits or (B) class indices, "logits" (B, K), "loss" (a
// scalar), "grad.<name>" for every trained parameter and "after.<name>"
// for every buffer: its value after the (training-mode) forward pass.
func Fixture[T Float](fc FixtureConfig) (*SafeFile, error) {
	if fc.Batch <= 0 {
		return nil, fmt.Errorf("loope: fixture batch must be > 0, got %d", fc.Batch)
	}
	if fc.Loss != "bce" && fc.Loss != "ce" {
		return nil, fmt.Errorf("loope: fixture loss must be bce or ce, got %q", fc.Loss)
	}
	m, err := NewModel[T](fc.Model, fc.Seed)
	if err != nil {
		return nil, err
	}
	cfg := fc.Model
	rng := rand.New(rand.NewPCG(fc.Seed, 0xf1c7))
	x := New[T](fc.Batch, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rng, 0, 1)
	y := New[T](fc.Batch, cfg.Classes)
	labels := make([]int, fc.Batch)
	for r := range labels {
		labels[r] = rng.IntN(cfg.Classes)
		for j := range cfg.Classes {
			y.Data[r*cfg.Classes+j] = T(rng.IntN(2))
		}
	}
	f := NewSafeFile()
	f.Metadata[metaFormat] = "loope-fixture/1"
	f.Metadata["loss"] = fc.Loss
	f.Metadata["smoothing"] = strconv.FormatFloat(fc.Smoothing, 'g', -1, 64)
	f.Metadata["seed"] = strconv.FormatUint(fc.Seed, 10)
	f.Metadata["generator"] = "loope fixture (github.com/loope-go/loope)"
	// Stored before the forward pass: a training-mode forward updates
	// buffers (BatchNorm running statistics), and the file holds the start.
	if err := putParams(f, m); err != nil {
		return nil, err
	}
	var tp Tape[T]
	logits := m.Forward(&tp, x)
	loss := lossOf(&tp, fc.Loss, fc.Smoothing, logits, y, labels)
	tp.Backward(loss)
	put := func(name string, data []T, shape ...int) {
		if err == nil {
			err = PutFloat(f, name, data, shape...)
		}
	}
	put("input", x.Data, x.Shape...)
	if fc.Loss == "bce" {
		put("targets", y.Data, y.Shape...)
	} else if err == nil {
		err = PutInt64(f, "targets", toInt64(labels), fc.Batch)
	}
	put("logits", logits.Data, logits.Shape...)
	put("loss", loss.Data)
	for _, p := range m.Params() {
		if p.Buffer {
			put("after."+p.Name, p.T.Data, p.T.Shape...)
		} else {
			put("grad."+p.Name, p.T.Grad, p.T.Shape...)
		}
	}
	return f, err
}

func toInt64(xs []int) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(x)
	}
	return out
}
