// This file holds the seam between a network and the code that drives it:
// the Model interface that Train, Evaluate, the checkpoints and the
// data-parallel replicas work through, and the registry of architectures
// (Config.Arch) that NewModel builds from. The ViT (vit.go) is the
// architecture "vit"; other files register theirs in an init function.

package loope

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Model is a network that maps images to logits and names its tensors the
// way its reference implementation's state dict does.
type Model[T Float] interface {
	// Config returns the model's shape; Config().Arch names its architecture.
	Config() Config
	// Forward maps images img (B, C, H, W) to logits (B, K) on tp.
	Forward(tp *Tape[T], img *Tensor[T]) *Tensor[T]
	// Params returns every tensor with its checkpoint name, in a fixed order.
	Params() []NamedParam[T]
	// PosEmbs returns the model's positional embeddings: one for the ViT,
	// one per branch for a multi-branch model, none for a CNN.
	PosEmbs() []PosEmb[T]
}

// archSpec is one architecture of the registry.
type archSpec struct {
	summary string
	// validate reports what is wrong with a config of this architecture
	// beyond image, channels and classes, which Config.Validate checks
	// first; it may assume those are in range.
	validate func(Config) error
	// minParams returns the scalars every checkpoint of a valid config
	// holds at least (ConfigFromSafe refuses a file with fewer); nil: no
	// check.
	minParams func(Config) int64
	// reference, if set, makes the architecture a reference model of the
	// Three-Cell table (-ref): it returns the config for the input and
	// outputs (Image, Channels, Classes) of a benchmark's model config.
	reference func(model Config) (Config, error)
	f32       func(cfg Config, seed uint64) (Model[float32], error)
	f64       func(cfg Config, seed uint64) (Model[float64], error)
}

// archRegistry maps Config.Arch names to their constructors; "" is "vit".
var archRegistry = map[string]archSpec{}

// asModel returns a constructor's model m as a Model, or nil with its
// error: a nil *ViT (or *CaiT, …) is not a nil Model.
func asModel[T Float, M Model[T]](m M, err error) (Model[T], error) {
	if err != nil {
		return nil, err
	}
	return m, nil
}

// registerArch adds an architecture; a name registered twice panics.
func registerArch(name string, s archSpec) {
	if _, dup := archRegistry[name]; dup {
		panic("loope: architecture " + name + " registered twice")
	}
	archRegistry[name] = s
}

// ArchNames returns the registered architecture names, sorted.
func ArchNames() []string {
	names := make([]string, 0, len(archRegistry))
	for n := range archRegistry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ReferenceModels returns the architectures the Three-Cell benchmark can
// run as reference rows (-ref), sorted.
func ReferenceModels() []string {
	var names []string
	for _, n := range ArchNames() {
		if archRegistry[n].reference != nil {
			names = append(names, n)
		}
	}
	return names
}

// referenceConfig returns the config of reference model name for the
// image and outputs of model.
func referenceConfig(name string, model Config) (Config, error) {
	s, ok := archRegistry[name]
	if !ok || s.reference == nil {
		return Config{}, fmt.Errorf("loope: unknown reference model %q (valid: %s)", name, strings.Join(ReferenceModels(), ", "))
	}
	return s.reference(model)
}

// ArchSummary returns the one-line description of a registered architecture.
func ArchSummary(name string) string { return archRegistry[archName(name)].summary }

// archName returns the registry name of arch ("" is the ViT).
func archName(arch string) string {
	if arch == "" {
		return "vit"
	}
	return arch
}

// lookupArch returns the spec of cfg's architecture or an error naming the
// valid ones.
func lookupArch(arch string) (archSpec, error) {
	s, ok := archRegistry[archName(arch)]
	if !ok {
		return archSpec{}, fmt.Errorf("loope: unknown architecture %q (valid: %s)", arch, strings.Join(ArchNames(), ", "))
	}
	return s, nil
}

// NewModel builds the model of cfg's architecture with its reference
// initialisation, drawing every random value from seed.
func NewModel[T Float](cfg Config, seed uint64) (Model[T], error) {
	s, err := lookupArch(cfg.Arch)
	if err != nil {
		return nil, err
	}
	var m any
	if isFloat64[T]() {
		m, err = s.f64(cfg, seed)
	} else {
		m, err = s.f32(cfg, seed)
	}
	if err != nil {
		return nil, err
	}
	return m.(Model[T]), nil
}

// isFloat64 reports whether T is float64.
func isFloat64[T Float]() bool {
	var z T
	_, ok := any(z).(float64)
	return ok
}

// trainable returns the tensors the optimiser updates: m's Params without
// buffers.
func trainable[T Float](m Model[T]) []*Tensor[T] {
	var ts []*Tensor[T]
	for _, p := range m.Params() {
		if !p.Buffer {
			ts = append(ts, p.T)
		}
	}
	return ts
}

// NumParams returns the number of trainable scalars of m.
func NumParams[T Float](m Model[T]) int {
	n := 0
	for _, t := range trainable(m) {
		n += t.Size()
	}
	return n
}

// HasBatchStats reports whether m keeps statistics over the batch (buffers
// such as the running mean of LOOPE's or a CNN's BatchNorm), which
// data-parallel replicas (TrainConfig.Replicas) cannot share.
func HasBatchStats[T Float](m Model[T]) bool {
	return slices.ContainsFunc(m.Params(), func(p NamedParam[T]) bool { return p.Buffer })
}

// peParams returns the tensors of all of m's positional embeddings.
func peParams[T Float](m Model[T]) []*Tensor[T] {
	var ts []*Tensor[T]
	for _, pe := range m.PosEmbs() {
		for _, p := range pe.Params() {
			ts = append(ts, p.T)
		}
	}
	return ts
}

// peNames returns the names of m's PEs joined by "+" ("none" without one),
// for messages.
func peNames[T Float](m Model[T]) string {
	var names []string
	for _, pe := range m.PosEmbs() {
		names = append(names, pe.Name())
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}
