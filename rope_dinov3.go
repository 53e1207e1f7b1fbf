// This file holds rope-dinov3 (docs/pe-zoo.md §21), the axial RoPE of DINOv3
// (facebookresearch/dinov3 dinov3/layers/rope_position_encoding.py, as
// ported in HF transformers DINOv3ViTRopePositionEmbedding): patch centres
// normalised to [−1, 1], periods from base 100, and, while training only, a
// random shift, jitter and rescale of those coordinates. No parameters.
//
// Coordinates: patch token t at row r = ⌊t/G⌋, column c = t mod G has
// (y, x) = (2(r+½)/G − 1, 2(c+½)/G − 1). With f_j = base^(−4j/Dh),
// j < Dh/4, the angle of pair j < Dh/4 is 2π·y·f_j and of pair Dh/4 + j
// is 2π·x·f_j. CLS is not rotated.
//
// Training augmentation (HF augment_patches_center_coordinates, in this
// order, one draw per forward shared by the batch): shift (y, x) by
// U(−s, s) each; multiply (y, x) by exp(U(−ln J, ln J)) each (jitter);
// multiply both by one exp(U(−ln R, ln R)) (rescale). Defaults are the
// authors': no shift, no jitter, rescale 2. The draws come from a PCG
// seeded by (run seed, step) (trainStep), so a run is bit-reproducible and
// a resumed run draws what the uninterrupted run would have drawn.
//
// DINOv3 rotates channel i with channel i + Dh/2 (rotate_half), angle i of
// the list above for i < Dh/2. The Go Rotate op turns adjacent pairs, so q
// and k are gathered into the order (0, Dh/2, 1, Dh/2+1, …), rotated and
// gathered back: the same function of the same weights as DINOv3's.
//
// NOTE(spec): the Go draws are not PyTorch's (another generator); the
// distributions and their order are the authors' (docs/pe-zoo.md §21).
//
// Checkpoint names and shapes: none (fixed angles, 0 parameters).

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
)

func init() {
	registerPE("rope-dinov3", "DINOv3 axial RoPE: patch centres in [−1,1], base 100; training rescales coords ×[½,2] (log-uniform), CLS unrotated, 0 params",
		newRopeDinov3[float32], newRopeDinov3[float64])
}

// DINOv3 RoPE defaults (HF DINOv3ViTConfig rope_theta, pos_embed_rescale).
const (
	RopeDinov3Base    = 100.0
	RopeDinov3Rescale = 2.0
)

// RopeDinov3Coords returns the (G², 2) DINOv3 patch-centre coordinates
// (y, x) ∈ (−1, 1).
func RopeDinov3Coords(grid int) []float64 {
	c := make([]float64, 2*grid*grid)
	for t := range grid * grid {
		c[2*t] = 2*(float64(t/grid)+0.5)/float64(grid) - 1
		c[2*t+1] = 2*(float64(t%grid)+0.5)/float64(grid) - 1
	}
	return c
}

// RopeDinov3Angles returns the (G², Dh/2) angles for coordinates coords
// (G², 2) = (y, x): pair j < Dh/4 turns by 2π·y·f_j, pair Dh/4 + j by
// 2π·x·f_j, f_j = base^(−4j/Dh).
func RopeDinov3Angles(coords []float64, headDim int, base float64) []float64 {
	q, half := headDim/4, headDim/2
	n := len(coords) / 2
	a := make([]float64, n*half)
	for t := range n {
		for j := range q {
			f := 2 * math.Pi * math.Pow(base, -4*float64(j)/float64(headDim))
			a[t*half+j] = coords[2*t] * f
			a[t*half+q+j] = coords[2*t+1] * f
		}
	}
	return a
}

// ropeDinov3PE is rope-dinov3.
type ropeDinov3PE[T Float] struct {
	NoHooks[T]
	coords        []float64  // (G², 2) plain (y, x)
	perm, inv     []int      // channel order (0, Dh/2, 1, Dh/2+1, …) and its inverse
	cos, sin      *Tensor[T] // (1, G², Dh/2) of the plain coordinates
	dh            int
	shift, jitter float64 // 0: off
	rescale       float64 // 1: off
	// Training state (trainStep): the current step's tables, or nil.
	pcg          rand.PCG
	tcos, tsin   *Tensor[T]
	aug          []float64 // augmented coordinates, (G², 2)
	trainingStep bool
}

func newRopeDinov3[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	dh, err := ropeHeadDim("rope-dinov3", cfg, 4)
	if err != nil {
		return nil, err
	}
	pc := cfg.PE
	if pc.DinoShift < 0 {
		return nil, fmt.Errorf("loope: rope-dinov3: -dino-shift must be ≥ 0 (0 = off), got %g", pc.DinoShift)
	}
	if pc.DinoJitter != 0 && pc.DinoJitter < 1 {
		return nil, fmt.Errorf("loope: rope-dinov3: -dino-jitter must be 0 (off) or ≥ 1, got %g", pc.DinoJitter)
	}
	if pc.DinoRescale != 0 && pc.DinoRescale < 1 {
		return nil, fmt.Errorf("loope: rope-dinov3: -dino-rescale must be 0 (default 2) or ≥ 1 (1 = off), got %g", pc.DinoRescale)
	}
	g := cfg.Grid()
	p := &ropeDinov3PE[T]{coords: RopeDinov3Coords(g), dh: dh, shift: pc.DinoShift, jitter: pc.DinoJitter,
		rescale: pc.DinoRescale, cos: New[T](1, g*g, dh/2), sin: New[T](1, g*g, dh/2),
		tcos: New[T](1, g*g, dh/2), tsin: New[T](1, g*g, dh/2), aug: make([]float64, 2*g*g)}
	p.perm, p.inv = make([]int, dh), make([]int, dh)
	for j := range dh / 2 {
		p.perm[2*j], p.perm[2*j+1] = j, j+dh/2
		p.inv[j], p.inv[j+dh/2] = 2*j, 2*j+1
	}
	if p.rescale == 0 {
		p.rescale = RopeDinov3Rescale
	}
	fillCosSin(p.cos, p.sin, RopeDinov3Angles(p.coords, dh, RopeDinov3Base))
	return p, nil
}

// fillCosSin writes cos and sin of angles into c and s.
func fillCosSin[T Float](c, s *Tensor[T], angles []float64) {
	for i, a := range angles {
		sn, cs := math.Sincos(a)
		c.Data[i], s.Data[i] = T(cs), T(sn)
	}
}

func (p *ropeDinov3PE[T]) Name() string            { return "rope-dinov3" }
func (p *ropeDinov3PE[T]) Params() []NamedParam[T] { return nil }

// trainStep switches to training mode for step of the run seeded with
// seed: it draws the step's augmentation from a PCG seeded by (seed, step)
// and builds the augmented tables.
func (p *ropeDinov3PE[T]) trainStep(seed uint64, step int) {
	p.pcg.Seed(seed^0xd1_0e3_0000, uint64(step))
	rng := rand.New(&p.pcg)
	copy(p.aug, p.coords)
	var d [5]float64
	d[2], d[3], d[4] = 1, 1, 1
	if p.shift > 0 {
		d[0], d[1] = p.shift*(2*rng.Float64()-1), p.shift*(2*rng.Float64()-1)
	}
	if p.jitter > 1 {
		lj := math.Log(p.jitter)
		d[2], d[3] = math.Exp(lj*(2*rng.Float64()-1)), math.Exp(lj*(2*rng.Float64()-1))
	}
	if p.rescale > 1 {
		d[4] = math.Exp(math.Log(p.rescale) * (2*rng.Float64() - 1))
	}
	for t := 0; t < len(p.aug); t += 2 {
		p.aug[t] = (p.aug[t] + d[0]) * d[2] * d[4]
		p.aug[t+1] = (p.aug[t+1] + d[1]) * d[3] * d[4]
	}
	fillCosSin(p.tcos, p.tsin, RopeDinov3Angles(p.aug, p.dh, RopeDinov3Base))
	p.trainingStep = true
}

// evalMode returns to the plain coordinates.
func (p *ropeDinov3PE[T]) evalMode() { p.trainingStep = false }

// RotateQK rotates q and k (B, H, N, Dh) of the patch tokens (skip 1), by
// the augmented coordinates during a training step, else the plain ones.
func (p *ropeDinov3PE[T]) RotateQK(tp *Tape[T], layer int, q, k *Tensor[T]) (*Tensor[T], *Tensor[T]) {
	c, s := p.cos, p.sin
	if p.trainingStep {
		c, s = p.tcos, p.tsin
	}
	rot := func(x *Tensor[T]) *Tensor[T] {
		return tp.Gather(tp.Rotate(tp.Gather(x, 3, p.perm), c, s, 1), 3, p.inv)
	}
	return rot(q), rot(k)
}

// attnTables exports the plain angles (see AttentionPETables).
func (p *ropeDinov3PE[T]) attnTables() (map[string]*Tensor[float64], string) {
	n := len(p.coords) / 2
	return map[string]*Tensor[float64]{
			"rope.angles": FromData(RopeDinov3Angles(p.coords, p.dh, RopeDinov3Base), n, p.dh/2),
			"rope.coords": FromData(append([]float64(nil), p.coords...), n, 2),
		}, fmt.Sprintf("rope-dinov3 rotates q and k of patch token t (CLS unrotated) pair by pair: channels (j, j+Dh/2) "+
			"by rope.angles[t, j] radians, the same in every layer and head; (G², Dh/2) = (%d, %d). Pair j < Dh/4 turns by "+
			"2π·y·100^(−4j/Dh), pair Dh/4 + j by 2π·x·100^(−4j/Dh), (y, x) = rope.coords[t], the patch centre in (−1, 1). "+
			"These are the inference angles; while training, the coordinates are shifted (%g), jittered (%g) and rescaled "+
			"(%g) by a fresh draw every step.", n, p.dh/2, p.shift, p.jitter, p.rescale)
}
