// This file holds the rotary positional embeddings of the ViT (docs/pe-zoo.md §14):
// rope-axial and rope-mixed (naver-ai/rope-vit models/vit_rope.py) and
// rope-1d (RoFormer/LLaMA over the raster order). All rotate adjacent channel
// pairs (2j, 2j+1) of q and k of the patch tokens before q·kᵀ; the CLS token
// (sequence index 0) is never rotated, as in rope-vit's q[:, :, 1:].
//
// Positions: patch token t (raster, CLS not counted) sits at column
// t_x = t mod G and row t_y = ⌊t/G⌋ (integer grid coordinates, not
// normalised). rope-1d uses p = t, i.e. 0…G²−1.
//
// NOTE(spec): rope-1d keeps CLS unrotated and starts the patches at p = 0
// (docs/pe-zoo.md §14 leaves the CLS choice open). RoPE scores depend only on
// position differences, so p = t and p = t+1 give the same model.
//
// Checkpoint names and shapes (D width, L depth, H heads, Dh = D/H):
//
//	rope-axial  none (fixed angles, 0 parameters)
//	rope-1d     none (fixed angles, 0 parameters)
//	rope-mixed  pos_embed.freqs  (2, L, H·Dh/2)  [x then y; per layer, head-major], no weight decay

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
)

func init() {
	registerPE("rope-axial", "RoPE-Axial (rope-vit, θ 100): q,k rotated by column/row angles, CLS unrotated, 0 params",
		newRopeAxial[float32], newRopeAxial[float64])
	registerPE("rope-mixed", "RoPE-Mixed (rope-vit, θ 10): learnable per layer/head 2-D frequencies, CLS unrotated",
		newRopeMixed[float32], newRopeMixed[float64])
	registerPE("rope-1d", "1-D RoPE (RoFormer, θ 10000) over the raster order, CLS unrotated, 0 params",
		newRope1D[float32], newRope1D[float64])
}

// RoPE base frequencies θ of the three variants (docs/pe-zoo.md §14).
const (
	RopeAxialTheta = 100.0
	RopeMixedTheta = 10.0
	Rope1DTheta    = 10000.0
)

// RopeAxialAngles returns the (G², Dh/2) RoPE-Axial angles of rope-vit
// compute_axial_cis: for patch token t and pair j < Dh/4 the angle is
// t_x·f_j, for pair Dh/4 + j it is t_y·f_j, with f = RopeAxialFreqs(Dh, θ).
func RopeAxialAngles(headDim, grid int, theta float64) []float64 {
	f := RopeAxialFreqs(headDim, theta)
	q, half := len(f), headDim/2
	a := make([]float64, grid*grid*half)
	for t := range grid * grid {
		tx, ty := float64(t%grid), float64(t/grid)
		row := a[t*half : (t+1)*half]
		for j, fj := range f {
			row[j], row[q+j] = tx*fj, ty*fj
		}
	}
	return a
}

// Rope1DAngles returns the (n, Dh/2) 1-D RoPE angles p·θ_j for positions
// p = 0…n−1 and θ_j = Rope1DFreqs(Dh, θ) (LLaMA precompute_freqs_cis).
func Rope1DAngles(headDim, n int, theta float64) []float64 {
	f := Rope1DFreqs(headDim, theta)
	half := len(f)
	a := make([]float64, n*half)
	for p := range n {
		for j, fj := range f {
			a[p*half+j] = float64(p) * fj
		}
	}
	return a
}

// RopeMixedInit returns rope-vit's initial RoPE-Mixed frequencies
// (init_random_2d_freqs, stacked as in rope_vit_models): a (2, depth,
// heads·Dh/2) table, x then y. For each layer, then each head, one angle
// a ~ U[0, 2π) is drawn from rng, and with mag = RopeMixedMagnitudes(Dh, θ):
// Fx = [mag·cos a, mag·cos(a+π/2)], Fy = [mag·sin a, mag·sin(a+π/2)].
func RopeMixedInit(headDim, heads, depth int, theta float64, rng *rand.Rand) []float64 {
	mag := RopeMixedMagnitudes(headDim, theta)
	q, half := len(mag), headDim/2
	f := make([]float64, 2*depth*heads*half)
	fy := f[depth*heads*half:]
	for l := range depth {
		for h := range heads {
			a := 2 * math.Pi * rng.Float64()
			off := (l*heads + h) * half
			for j, m := range mag {
				f[off+j], f[off+q+j] = m*math.Cos(a), m*math.Cos(a+math.Pi/2)
				fy[off+j], fy[off+q+j] = m*math.Sin(a), m*math.Sin(a+math.Pi/2)
			}
		}
	}
	return f
}

// ropeXY returns the (G², 2) table of patch coordinates (t_x, t_y).
func ropeXY[T Float](grid int) *Tensor[T] {
	xy := New[T](grid*grid, 2)
	for t := range grid * grid {
		xy.Data[2*t], xy.Data[2*t+1] = T(t%grid), T(t/grid)
	}
	return xy
}

// ropePE rotates q and k of the patch tokens. Fixed variants hold one
// cos/sin table shared by every layer and head; rope-mixed builds its
// angles per layer from the learnable Freqs with tape ops, so Freqs get
// gradients through Cos, Sin and Rotate.
type ropePE[T Float] struct {
	NoHooks[T]
	name     string
	angles   []float64  // (G², Dh/2) fixed angles in float64 (axial, 1d)
	cos, sin *Tensor[T] // (1, G², Dh/2) their cos and sin
	Freqs    *Tensor[T] // (2, L, H·Dh/2) rope-mixed frequencies
	xy       *Tensor[T] // (G², 2) patch coordinates (rope-mixed)
	grid     int        // G
	heads    int        // H
	half     int        // Dh/2
}

// ropeHeadDim checks the head dim a rope variant needs (mult = 4 for the
// 2-D variants, 2 for rope-1d) and returns it.
func ropeHeadDim(name string, cfg Config, mult int) (int, error) {
	dh := cfg.Dim / cfg.Heads
	if dh <= 0 || dh%mult != 0 {
		return 0, fmt.Errorf("loope: %s needs a head dim (dim/heads) that is a positive multiple of %d, got %d", name, mult, dh)
	}
	return dh, nil
}

func newFixedRope[T Float](name string, angles []float64, cfg Config, dh int) *ropePE[T] {
	g, half := cfg.Grid(), dh/2
	p := &ropePE[T]{name: name, grid: g, heads: cfg.Heads, half: half, angles: angles,
		cos: New[T](1, g*g, half), sin: New[T](1, g*g, half)}
	for i, a := range angles {
		s, c := math.Sincos(a)
		p.cos.Data[i], p.sin.Data[i] = T(c), T(s)
	}
	return p
}

func newRopeAxial[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	dh, err := ropeHeadDim("rope-axial", cfg, 4)
	if err != nil {
		return nil, err
	}
	return newFixedRope[T]("rope-axial", RopeAxialAngles(dh, cfg.Grid(), RopeAxialTheta), cfg, dh), nil
}

func newRope1D[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	dh, err := ropeHeadDim("rope-1d", cfg, 2)
	if err != nil {
		return nil, err
	}
	g := cfg.Grid()
	return newFixedRope[T]("rope-1d", Rope1DAngles(dh, g*g, Rope1DTheta), cfg, dh), nil
}

func newRopeMixed[T Float](cfg Config, rng *rand.Rand) (PosEmb[T], error) {
	dh, err := ropeHeadDim("rope-mixed", cfg, 4)
	if err != nil {
		return nil, err
	}
	g, half := cfg.Grid(), dh/2
	p := &ropePE[T]{name: "rope-mixed", grid: g, heads: cfg.Heads, half: half,
		Freqs: NewParam[T](2, cfg.Depth, cfg.Heads*half), xy: ropeXY[T](g)}
	for i, v := range RopeMixedInit(dh, cfg.Heads, cfg.Depth, RopeMixedTheta, rng) {
		p.Freqs.Data[i] = T(v)
	}
	return p, nil
}

func (p *ropePE[T]) Name() string { return p.name }

func (p *ropePE[T]) Params() []NamedParam[T] {
	if p.Freqs == nil {
		return nil
	}
	return []NamedParam[T]{{Name: "pos_embed.freqs", T: p.Freqs, NoDecay: true}}
}

// RotateQK rotates q and k (B, H, N, Dh) of the patch tokens (skip 1).
func (p *ropePE[T]) RotateQK(tp *Tape[T], layer int, q, k *Tensor[T]) (*Tensor[T], *Tensor[T]) {
	c, s := p.cos, p.sin
	if p.Freqs != nil {
		c, s = p.mixedCosSin(tp, layer)
	}
	return tp.Rotate(q, c, s, 1), tp.Rotate(k, c, s, 1)
}

// mixedCosSin builds rope-vit compute_mixed_cis for one layer with ops:
// angles (G², H·Dh/2) = [t_x t_y]·[Fx; Fy], reshaped to (H, G², Dh/2).
func (p *ropePE[T]) mixedCosSin(tp *Tape[T], layer int) (*Tensor[T], *Tensor[T]) {
	return p.cosSinOf(tp, tp.Reshape(tp.Slice(p.Freqs, 1, layer, layer+1), 2, p.heads*p.half))
}

// cosSinOf returns the cos and sin (H, G², Dh/2) of the angles
// t_x·f[0] + t_y·f[1] of frequencies f (2, H·Dh/2).
func (p *ropePE[T]) cosSinOf(tp *Tape[T], f *Tensor[T]) (*Tensor[T], *Tensor[T]) {
	ang := tp.Transpose(tp.Reshape(tp.MatMul(p.xy, f), p.grid*p.grid, p.heads, p.half), 0, 1)
	return tp.Cos(ang), tp.Sin(ang)
}

// attnTables exports the rotation angles (see AttentionPETables).
func (p *ropePE[T]) attnTables() (map[string]*Tensor[float64], string) {
	n := p.grid * p.grid
	out := map[string]*Tensor[float64]{}
	if p.Freqs == nil {
		out["rope.angles"] = FromData(append([]float64(nil), p.angles...), n, p.half)
		return out, fmt.Sprintf("%s rotates q and k of patch token t (CLS unrotated) pair by pair: channels (2j, 2j+1) "+
			"by rope.angles[t, j] radians, the same in every layer and head; (G², Dh/2) = (%d, %d).", p.name, n, p.half)
	}
	depth := p.Freqs.Shape[1]
	fr := New[float64](p.Freqs.Shape...)
	for i, v := range p.Freqs.Data {
		fr.Data[i] = float64(v)
	}
	out["rope.freqs"] = fr
	for l := range depth {
		f := fr.Data[l*p.heads*p.half : (l+1)*p.heads*p.half]
		fy := fr.Data[(depth+l)*p.heads*p.half : (depth+l+1)*p.heads*p.half]
		a := New[float64](p.heads, n, p.half)
		for h := range p.heads {
			for t := range n {
				tx, ty := float64(t%p.grid), float64(t/p.grid)
				for j := range p.half {
					a.Data[(h*n+t)*p.half+j] = tx*f[h*p.half+j] + ty*fy[h*p.half+j]
				}
			}
		}
		out[fmt.Sprintf("rope.angles.layer%d", l)] = a
	}
	return out, fmt.Sprintf("rope-mixed rotates q and k of patch token t (CLS unrotated) in layer l, head h, pair j by "+
		"rope.angles.layer<l>[h, t, j] = t_x·Fx + t_y·Fy radians (t_x column, t_y row), (H, G², Dh/2) = (%d, %d, %d); "+
		"rope.freqs (2, L, H·Dh/2) holds the learnt Fx (row 0) and Fy (row 1).", p.heads, n, p.half)
}
