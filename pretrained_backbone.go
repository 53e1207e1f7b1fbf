// This file imports pretrained timm CaiT and CrossViT state dicts
// (cait_s24_224, crossvit_base_240, as safetensors), whose tensor names our
// models share (docs/architectures.md): the backbone is copied at its own
// size, with any PE of the registry in place of the pretrained one and a
// fresh head. Unlike the ViT's import (pretrained.go), nothing is
// resampled: the model config (a preset) must match the checkpoint.

package loope

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// LoadTimmBackbone builds the CaiT or CrossViT model cfg and fills it from
// the timm state dict f. Every backbone tensor must be in f with the
// model's shape; the error names each one that is not. Fresh (initialised
// from seed as NewModel does, and returned by name): the head (head.* and
// CrossViT's head.0.*, head.1.*), the PE's tensors, except a learnable
// PE's pos_embed* taken from f (for CaiT, whose learnable table holds the
// class token as row 0, timm's cls_token above timm's pos_embed), and
// CaiT's cls_token unless cfg.CaitCLS is "learned" (by default the PE's
// row 0 is the class token, as in the authors' wrapper). Tensors of f the
// model does not take are an error, so a checkpoint of another variant is
// not half loaded.
func LoadTimmBackbone[T Float](f *SafeFile, cfg Config, seed uint64) (Model[T], []string, error) {
	if a := archName(cfg.Arch); a != "cait" && a != "crossvit" {
		return nil, nil, fmt.Errorf("loope: LoadTimmBackbone: architecture %s (the ViT has LoadTimmViT)", a)
	}
	m, err := NewModel[T](cfg, seed)
	if err != nil {
		return nil, nil, err
	}
	pe := map[*Tensor[T]]bool{}
	for _, t := range peParams(m) {
		pe[t] = true
	}
	isHead := func(name string) bool { return strings.HasPrefix(name, "head.") }
	used := map[string]bool{}
	var errs []error
	var fresh []string
	for _, p := range m.Params() {
		learnableTable := cfg.PE.Name == "learnable" && strings.HasPrefix(p.Name, "pos_embed")
		if isHead(p.Name) || (pe[p.T] && !learnableTable) {
			fresh = append(fresh, p.Name)
			continue
		}
		var adapt func([]T, []int) ([]T, []int, error)
		if learnableTable && archName(cfg.Arch) == "cait" {
			adapt = func(data []T, shape []int) ([]T, []int, error) { return caitTable(f, data, shape, p.T.Shape) }
			used["cls_token"] = true
		}
		if err := loadTimmTensor(f, p, adapt, " (pick the -preset of this checkpoint)"); err != nil {
			errs = append(errs, err)
		}
		used[p.Name] = true
	}
	ours := f.Metadata[metaFormat] == "loope-checkpoint/1"
	for _, name := range f.Names {
		switch {
		case used[name], isHead(name), strings.HasPrefix(name, "pos_embed"), name == "cls_token":
		case ours && hasAnyPrefix(name, []string{"optim.", "train."}):
		default:
			errs = append(errs, fmt.Errorf("unexpected tensor %q: not part of a %s of this config", name, archName(cfg.Arch)))
		}
	}
	if len(errs) > 6 { // a checkpoint of another size differs everywhere: name the first few
		errs = append(errs[:5], fmt.Errorf("and %d more", len(errs)-5))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("loope: loading timm %s checkpoint: %w", archName(cfg.Arch), err)
	}
	slices.Sort(fresh)
	return m, fresh, nil
}

// caitTable returns the learnable CaiT table (1, 1+N, D) (shape want) for
// timm's pos_embed data (1, N, D): timm's cls_token as row 0 above it. A
// table already of shape want (our own checkpoints) is returned as is.
func caitTable[T Float](f *SafeFile, data []T, shape, want []int) ([]T, []int, error) {
	if sameShape(shape, want) || len(shape) != 3 || len(want) != 3 || shape[1]+1 != want[1] || shape[2] != want[2] {
		return data, shape, nil
	}
	cls, cshape, err := timmFloat[T](f, "cls_token")
	if err != nil {
		return nil, nil, fmt.Errorf("timm's pos_embed %v needs its cls_token as the table's row 0: %w", shape, err)
	}
	if !sameShape(cshape, []int{1, 1, want[2]}) {
		return nil, nil, fmt.Errorf("tensor \"cls_token\" has shape %v, want (1, 1, %d)", cshape, want[2])
	}
	return append(cls, data...), want, nil
}
