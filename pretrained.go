// This file imports pretrained timm ViTs (vit_tiny/small/base_patch16_224
// and friends, as safetensors state dicts): the model config read from the
// tensor shapes, the pos_embed resampled to a new patch grid as timm's
// resample_abs_pos_embed (timm/layers/pos_embed.py), any PE of the registry
// in place of the pretrained one, and a fresh head for a new class count.

package loope

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// timmHeads maps the width of timm's standard ViTs to their head count
// (vision_transformer.py: vit_tiny 192/3, vit_small 384/6, vit_base
// 768/12, vit_large 1024/16, vit_huge 1280/16); heads are not in the shapes.
var timmHeads = map[int]int{192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}

// TimmHeads returns the head count of timm's standard ViT of width dim
// (192→3, 384→6, 768→12, 1024→16, 1280→16) and whether dim is one of them.
func TimmHeads(dim int) (int, bool) {
	h, ok := timmHeads[dim]
	return h, ok
}

// TimmConfig reads the config of the timm VisionTransformer stored in f
// from its tensor shapes: Channels, Patch and Dim from
// patch_embed.proj.weight (D, C, P, P), Depth from the blocks.{i} names,
// MLP from blocks.0.mlp.fc1.weight (MLP, D), Image from pos_embed
// (1, 1+G², D) as G·P, Classes from head.weight (K, D) (0 if f has no
// head). heads > 0 sets Heads; heads = 0 infers it from the width (TimmHeads).
// PE is learnable and Eps 1e-6, timm's values.
func TimmConfig(f *SafeFile, heads int) (Config, error) {
	shape := func(name string) ([]int, error) {
		t, ok := f.Tensors[name]
		if !ok {
			return nil, fmt.Errorf("no tensor %q", name)
		}
		return t.Shape, nil
	}
	pw, err := shape("patch_embed.proj.weight")
	if err != nil {
		return Config{}, fmt.Errorf("loope: not a timm VisionTransformer checkpoint: %w", err)
	}
	if len(pw) != 4 || pw[2] != pw[3] {
		return Config{}, fmt.Errorf("loope: timm checkpoint: patch_embed.proj.weight has shape %v, want (D, C, P, P)", pw)
	}
	cfg := Config{Channels: pw[1], Patch: pw[2], Dim: pw[0], Heads: heads, Eps: 1e-6, PE: PEConfig{Name: "learnable"}}
	for _, name := range f.Names {
		rest, ok := strings.CutPrefix(name, "blocks.")
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 {
			return Config{}, fmt.Errorf("loope: timm checkpoint: tensor %q: block index %q is not a number", name, idx)
		}
		cfg.Depth = max(cfg.Depth, i+1)
	}
	if cfg.Depth == 0 {
		return Config{}, errors.New("loope: not a timm VisionTransformer checkpoint: no blocks.{i}.* tensors")
	}
	fc1, err := shape("blocks.0.mlp.fc1.weight")
	if err != nil {
		return Config{}, fmt.Errorf("loope: timm checkpoint: %w", err)
	}
	if len(fc1) != 2 {
		return Config{}, fmt.Errorf("loope: timm checkpoint: blocks.0.mlp.fc1.weight has shape %v, want (MLP, D)", fc1)
	}
	cfg.MLP = fc1[0]
	pos, err := shape("pos_embed")
	if err != nil {
		return Config{}, fmt.Errorf("loope: timm checkpoint: %w (the image size comes from it)", err)
	}
	g, ok := timmGrid(pos, cfg.Dim)
	if !ok {
		return Config{}, fmt.Errorf("loope: timm checkpoint: pos_embed has shape %v, want (1, 1+G², %d)", pos, cfg.Dim)
	}
	cfg.Image = g * cfg.Patch
	if hw, err := shape("head.weight"); err == nil && len(hw) == 2 {
		cfg.Classes = hw[0]
	}
	if heads == 0 {
		h, ok := TimmHeads(cfg.Dim)
		if !ok {
			return Config{}, fmt.Errorf("loope: timm checkpoint: width %d is not a standard timm ViT (192, 384, 768, 1024, 1280): give the head count", cfg.Dim)
		}
		cfg.Heads = h
	}
	return cfg, nil
}

// timmGrid returns G for a pos_embed of shape (1, 1+G², d).
func timmGrid(shape []int, d int) (int, bool) {
	if len(shape) != 3 || shape[0] != 1 || shape[2] != d || shape[1] < 2 {
		return 0, false
	}
	g := int(math.Round(math.Sqrt(float64(shape[1] - 1))))
	return g, g*g == shape[1]-1
}

// TimmOptions are the choices of LoadTimmViT that are not in the model config.
type TimmOptions struct {
	// Seed seeds the freshly initialised tensors (NewViT's timm init): a
	// new head, and the PE unless it is learnable.
	Seed uint64
	// NoAntialias resamples pos_embed and the patch embedding by plain
	// bicubic interpolation (F.interpolate's default, timm before 0.9)
	// instead of timm's default antialias=True (resample_abs_pos_embed,
	// resample_patch_embed, checkpoint_filter_fn).
	NoAntialias bool
}

// LoadTimmViT builds the model cfg and fills it from the timm ViT state
// dict f (our own checkpoints of learnable-PE models use the same names).
// cfg must have the file's Channels, Dim, Depth and MLP (start from
// TimmConfig); it may change:
//   - Patch: the patch embedding is resampled as timm's
//     resample_patch_embed (see ResamplePatchEmbed);
//   - Image: a learnable pos_embed is resampled to the new grid Image/Patch
//     as timm's resample_abs_pos_embed (CLS row kept, see ResamplePosEmbed);
//   - PE: any registered PE; unless it is learnable its parameters are
//     freshly initialised and the file's pos_embed is not used, as the
//     LOOPE paper does when it swaps the PE of a pretrained ViT;
//   - Classes: if it differs from the file's head (K, D), the head is new,
//     with timm's init (trunc_normal std 0.02, zero bias).
//
// Heads is not in the shapes: give the right one (TimmHeads). LoadTimmViT
// returns the model and the names of its tensors that did not come from f.
// A missing tensor, a wrong shape or a tensor a plain timm ViT does not
// have (e.g. fc_norm, ls1.gamma, a distillation token) is an error.
func LoadTimmViT[T Float](f *SafeFile, cfg Config, opt TimmOptions) (*ViT[T], []string, error) {
	fc, err := TimmConfig(f, max(cfg.Heads, 1))
	if err != nil {
		return nil, nil, err
	}
	if err := timmFits(fc, cfg); err != nil {
		return nil, nil, err
	}
	m, err := NewViT[T](cfg, opt.Seed)
	if err != nil {
		return nil, nil, err
	}
	used := map[string]bool{}
	var errs []error
	var fresh []string
	load := func(p NamedParam[T]) {
		if err := loadTimmTensor(f, p, nil, ""); err != nil {
			errs = append(errs, err)
		}
		used[p.Name] = true
	}
	learnable := cfg.PE.Name == "learnable"
	pe := map[string]bool{}
	for _, p := range m.PE.Params() {
		pe[p.Name] = true
	}
	for _, p := range m.Params() {
		switch {
		case p.Name == "pos_embed" && learnable:
			if err := loadPosEmbed(f, p.T, cfg, !opt.NoAntialias); err != nil {
				errs = append(errs, err)
			}
			used[p.Name] = true
		case pe[p.Name]:
			fresh = append(fresh, p.Name)
		case p.Name == "patch_embed.proj.weight" && fc.Patch != cfg.Patch:
			used[p.Name] = true
			data, _, err := timmFloat[float64](f, p.Name) // shape checked by TimmConfig
			if err != nil {
				errs = append(errs, err)
				break
			}
			for i, v := range ResamplePatchEmbed(data, cfg.Dim*cfg.Channels, fc.Patch, cfg.Patch, !opt.NoAntialias) {
				p.T.Data[i] = T(v)
			}
		case (p.Name == "head.weight" || p.Name == "head.bias") && fc.Classes != cfg.Classes:
			fresh = append(fresh, p.Name)
		default:
			load(p)
		}
	}
	errs = append(errs, unexpectedTimmTensors(f, used)...)
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("loope: loading timm checkpoint: %w", err)
	}
	return m, fresh, nil
}

// loadTimmTensor copies the tensor of f named as p into p, through adapt
// if not nil (which may reshape it), and returns an error naming the
// tensor if it is missing or its shape is not p's; hint ends that error.
func loadTimmTensor[T Float](f *SafeFile, p NamedParam[T], adapt func(data []T, shape []int) ([]T, []int, error), hint string) error {
	data, shape, err := timmFloat[T](f, p.Name)
	if err == nil && adapt != nil {
		data, shape, err = adapt(data, shape)
	}
	if err != nil {
		return err
	}
	if !sameShape(shape, p.T.Shape) {
		return fmt.Errorf("tensor %q has shape %v, model wants %v%s", p.Name, shape, p.T.Shape, hint)
	}
	copy(p.T.Data, data)
	return nil
}

// timmFits reports whether the checkpoint's shapes fc fit the model cfg:
// channels, width, depth and MLP width must agree (patch, grid and head
// are resampled or replaced).
func timmFits(fc, cfg Config) error {
	var diff []string
	for _, c := range []struct {
		name       string
		file, want int
	}{{"channels", fc.Channels, cfg.Channels}, {"dim", fc.Dim, cfg.Dim}, {"depth", fc.Depth, cfg.Depth}, {"mlp", fc.MLP, cfg.MLP}} {
		if c.file != c.want {
			diff = append(diff, fmt.Sprintf("%s %d (model %d)", c.name, c.file, c.want))
		}
	}
	if len(diff) > 0 {
		return errors.New("loope: timm checkpoint does not fit the model: it has " + strings.Join(diff, ", "))
	}
	return nil
}

// unexpectedTimmTensors returns an error for each tensor of f that the
// load did not use and that a plain timm VisionTransformer (or, in a loope
// checkpoint, the optimiser and training state) does not explain.
func unexpectedTimmTensors(f *SafeFile, used map[string]bool) []error {
	var errs []error
	ours := f.Metadata[metaFormat] == "loope-checkpoint/1"
	for _, name := range f.Names {
		switch {
		case used[name], name == "pos_embed", name == "head.weight", name == "head.bias":
		case ours && hasAnyPrefix(name, []string{"optim.", "train."}):
		default:
			errs = append(errs, fmt.Errorf("unexpected tensor %q: not part of a plain timm VisionTransformer (this timm variant is not supported)", name))
		}
	}
	return errs
}

// loadPosEmbed copies the file's pos_embed (1, 1+G², D) into dst
// (1, cfg.Tokens(), D), resampled to cfg.Grid() if G differs.
func loadPosEmbed[T Float](f *SafeFile, dst *Tensor[T], cfg Config, antialias bool) error {
	data, shape, err := timmFloat[float64](f, "pos_embed")
	if err != nil {
		return err
	}
	g, ok := timmGrid(shape, cfg.Dim)
	if !ok {
		return fmt.Errorf("tensor \"pos_embed\" has shape %v, want (1, 1+G², %d)", shape, cfg.Dim)
	}
	data = ResamplePosEmbed(data, cfg.Dim, g, cfg.Grid(), 1, antialias)
	for i, v := range data {
		dst.Data[i] = T(v)
	}
	return nil
}

// timmFloat reads a float tensor as GetFloat does, and also F16 and BF16
// (the half precisions some hub checkpoints use), widened exactly.
func timmFloat[T Float](f *SafeFile, name string) ([]T, []int, error) {
	t, ok := f.Tensors[name]
	if !ok || (t.DType != "F16" && t.DType != "BF16") {
		return GetFloat[T](f, name)
	}
	out := make([]T, len(t.Data)/2)
	for i := range out {
		h := binary.LittleEndian.Uint16(t.Data[2*i:])
		if t.DType == "BF16" {
			out[i] = T(math.Float32frombits(uint32(h) << 16))
		} else {
			out[i] = T(halfToFloat32(h))
		}
	}
	return out, slices.Clone(t.Shape), nil
}

// halfToFloat32 widens an IEEE 754 binary16 value exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp, mant := uint32(h>>10)&0x1f, uint32(h&0x3ff)
	switch exp {
	case 0: // zero or subnormal: mant·2⁻²⁴
		v := float32(mant) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	case 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// ResamplePosEmbed resamples an absolute position embedding pe
// (numPrefix + oldGrid², d), row-major with the prefix (CLS) rows first, to
// (numPrefix + newGrid², d) as timm's resample_abs_pos_embed: the prefix
// rows are kept apart and copied, the (d, oldGrid, oldGrid) map is resized
// by F.interpolate(mode='bicubic', align_corners=False, antialias=antialias).
// Without antialias that is Keys' cubic convolution with A = −0.75 at
// source x = (i+½)·old/new − ½, border indices clamped (PyTorch
// upsample_bicubic2d). With antialias (timm's default) it is PyTorch's
// separable antialiased filter (_upsample_bicubic2d_aa): the cubic with
// A = −0.5, widened by old/new when downsampling, normalised per output.
// The result is a new slice; equal grids return a copy.
func ResamplePosEmbed(pe []float64, d, oldGrid, newGrid, numPrefix int, antialias bool) []float64 {
	if d <= 0 || oldGrid <= 0 || newGrid <= 0 || numPrefix < 0 || len(pe) != (numPrefix+oldGrid*oldGrid)*d {
		panic(fmt.Sprintf("loope: ResamplePosEmbed: len %d, want (%d + %d²)·%d (d %d, new grid %d)",
			len(pe), numPrefix, oldGrid, d, d, newGrid))
	}
	if oldGrid == newGrid {
		return slices.Clone(pe)
	}
	w := bicubicWeights(oldGrid, newGrid, antialias) // (new, old), same for rows and columns
	src := pe[numPrefix*d:]
	// Columns first: tmp (old, new, d), then rows: out (new, new, d).
	tmp := make([]float64, oldGrid*newGrid*d)
	for y := range oldGrid {
		for j := range newGrid {
			dst := tmp[(y*newGrid+j)*d : (y*newGrid+j+1)*d]
			for x, wx := range w[j*oldGrid : (j+1)*oldGrid] {
				if wx == 0 {
					continue
				}
				row := src[(y*oldGrid+x)*d : (y*oldGrid+x+1)*d]
				for c, v := range row {
					dst[c] += wx * v
				}
			}
		}
	}
	out := make([]float64, (numPrefix+newGrid*newGrid)*d)
	copy(out, pe[:numPrefix*d])
	grid := out[numPrefix*d:]
	for i := range newGrid {
		for y, wy := range w[i*oldGrid : (i+1)*oldGrid] {
			if wy == 0 {
				continue
			}
			for j := range newGrid {
				dst := grid[(i*newGrid+j)*d : (i*newGrid+j+1)*d]
				for c, v := range tmp[(y*newGrid+j)*d : (y*newGrid+j+1)*d] {
					dst[c] += wy * v
				}
			}
		}
	}
	return out
}

// bicubicWeights returns the (out, in) matrix of 1-D bicubic resampling
// weights of PyTorch's F.interpolate(mode='bicubic', align_corners=False)
// from in to out samples, without or with antialias.
func bicubicWeights(in, out int, antialias bool) []float64 {
	w := make([]float64, out*in)
	scale := float64(in) / float64(out)
	if !antialias {
		// aten/src/ATen/native/UpSample.h: get_cubic_upsample_coefficients, A = −0.75,
		// upsample_get_value_bounded clamps the four taps to [0, in).
		const a = -0.75
		for i := range out {
			x := scale*(float64(i)+0.5) - 0.5
			x0 := math.Floor(x)
			t := x - x0
			taps := [4]float64{cubic2(t+1, a), cubic1(t, a), cubic1(1-t, a), cubic2(2-t, a)}
			for k, v := range taps {
				j := min(max(int(x0)-1+k, 0), in-1)
				w[i*in+j] += v
			}
		}
		return w
	}
	// aten/src/ATen/native/cpu/UpSampleKernel.cpp: _compute_indices_weights_aa
	// with HelperInterpCubic::aa_filter (A = −0.5); support 2, times the
	// scale when downsampling; the C++ int64 casts truncate toward zero, as Go's.
	support, invscale := 2.0, 1.0
	if scale >= 1 {
		support, invscale = 2*scale, 1/scale
	}
	for i := range out {
		center := scale * (float64(i) + 0.5)
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		total := 0.0
		for j := lo; j < hi; j++ {
			v := keysCubic((float64(j)-center+0.5)*invscale, -0.5)
			w[i*in+j] = v
			total += v
		}
		if total != 0 {
			for j := lo; j < hi; j++ {
				w[i*in+j] /= total
			}
		}
	}
	return w
}

// cubic1 is Keys' cubic convolution kernel on |x| ≤ 1: ((A+2)|x| − (A+3))x² + 1.
func cubic1(x, a float64) float64 { return ((a+2)*x-(a+3))*x*x + 1 }

// cubic2 is Keys' kernel on 1 < |x| < 2: ((A|x| − 5A)|x| + 8A)|x| − 4A.
func cubic2(x, a float64) float64 { return ((a*x-5*a)*x+8*a)*x - 4*a }

// keysCubic is Keys' cubic convolution kernel with parameter a, 0 for |x| ≥ 2.
func keysCubic(x, a float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return cubic1(x, a)
	case x < 2:
		return cubic2(x, a)
	}
	return 0
}

// ResamplePatchEmbed resamples patch-embedding kernels w (n, oldP, oldP),
// row-major (n = D·C), to (n, newP, newP) as timm's resample_patch_embed
// (timm/layers/patch_embed.py, from FlexiViT, arXiv 2212.08013): the new
// kernel is pinv(R)·vec(old), where R maps an oldP×oldP patch to its bicubic
// resize to newP×newP (F.interpolate, align_corners=False, antialias as
// given; timm's default is true). The resize is separable, X ↦ W·X·Wᵀ with
// W (newP, oldP) from bicubicWeights, so pinv(R) = pinv(W)ᵀ ⊗ pinv(W)ᵀ and
// the new kernel is pinv(W)ᵀ·K·pinv(W). A model with the new kernel on
// images resized by newP/oldP then sees the tokens the old model saw, as
// far as the resize can be inverted. Equal sizes return a copy.
func ResamplePatchEmbed(w []float64, n, oldP, newP int, antialias bool) []float64 {
	if n <= 0 || oldP <= 0 || newP <= 0 || len(w) != n*oldP*oldP {
		panic(fmt.Sprintf("loope: ResamplePatchEmbed: len %d, want %d·%d² (new patch %d)", len(w), n, oldP, newP))
	}
	if oldP == newP {
		return slices.Clone(w)
	}
	p := pinv(mat.NewDense(newP, oldP, bicubicWeights(oldP, newP, antialias))) // (oldP, newP)
	out := make([]float64, n*newP*newP)
	var t, r mat.Dense
	for k := range n {
		K := mat.NewDense(oldP, oldP, w[k*oldP*oldP:(k+1)*oldP*oldP])
		t.Mul(p.T(), K) // (newP, oldP)
		r.Mul(&t, p)    // (newP, newP)
		copy(out[k*newP*newP:], r.RawMatrix().Data)
	}
	return out
}

// pinv returns the Moore–Penrose pseudo-inverse of a by SVD, dropping
// singular values below max(rows, cols)·ε·σ_max (torch.linalg.pinv's default).
func pinv(a *mat.Dense) *mat.Dense {
	m, n := a.Dims()
	var svd mat.SVD
	if !svd.Factorize(a, mat.SVDThin) {
		panic("loope: pinv: SVD did not converge")
	}
	s := svd.Values(nil)
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	cut := float64(max(m, n)) * 0x1p-52 * s[0]
	for j, sv := range s { // v ← V·Σ⁺
		inv := 0.0
		if sv > cut {
			inv = 1 / sv
		}
		for i := range n {
			v.Set(i, j, v.At(i, j)*inv)
		}
	}
	var out mat.Dense
	out.Mul(&v, u.T()) // (n, m)
	return &out
}
