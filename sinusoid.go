// This file holds the fixed (non-learnable) sinusoidal positional-embedding
// tables and frequency sets: the 1-D Vaswani sinusoid at arbitrary (also
// fractional) positions, the curve-ordered sinusoid (raster = plain 1-D,
// Gilbert = the paper's "Hilbert" baseline and LOOPE with X_C ≡ 0), the MAE
// 2-D sin-cos, the LOOPE repo's summed 2-D variant, the frequency sets
// f1..f4 of the revised paper, and the RoPE frequency helpers.
//
// Tables are flat row-major []float64; a table of R rows and D columns is
// written (R, D). All sinusoids interleave: column 2i holds sin, 2i+1 cos.

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// VaswaniFreqs returns the D/2 frequencies ω_i = 10000^(−2i/D),
// i = 0…D/2−1 (docs/pe-zoo.md §5). dim must be even and positive.
func VaswaniFreqs(dim int) []float64 {
	checkDim("VaswaniFreqs", dim)
	f := make([]float64, dim/2)
	for i := range f {
		f[i] = math.Exp(-float64(2*i) * math.Log(10000) / float64(dim))
	}
	return f
}

func checkDim(op string, dim int) {
	if dim < 2 || dim%2 != 0 {
		panic(fmt.Sprintf("loope: %s: dim %d must be even and >= 2", op, dim))
	}
}

// FreqSetNames lists the frequency sets FreqSet knows.
var FreqSetNames = []string{"vaswani", "f1", "f2", "f3", "f4"}

// freqSetF4Seed seeds the PCG that draws f4; fixed so f4 is reproducible.
const freqSetF4Seed = 2504_14386

// FreqSet returns the D/2 frequencies of a named set: "vaswani" (the
// default, ω_i = 10000^(−2i/D)) or the revised paper's robustness sets
// (docs/paper.md §9), defined on i = 0…L−1 with L = dim (the paper's L = 768
// is D for ViT-Base), of which the first D/2 entries are used
// (docs/paper.md §9, "use the first D/2 entries"):
//
//	f1(i) = 0.978^i
//	f2(i) = 1 − i(1 − 0.0001)/(L − 1)     (linear from 1 towards 1e-4)
//	f3(i) = 0.9^i
//	f4    = L draws of Uniform(0.0001, 1), sorted descending
//
// NOTE(spec): f4's random draw is not published; it is drawn here from
// math/rand/v2 PCG(freqSetF4Seed, 0), so it is one fixed sample.
func FreqSet(name string, dim int) ([]float64, error) {
	if dim < 2 || dim%2 != 0 {
		return nil, fmt.Errorf("loope: frequency set %q: dim %d must be even and >= 2", name, dim)
	}
	L := dim
	f := make([]float64, L)
	switch name {
	case "vaswani", "":
		return VaswaniFreqs(dim), nil
	case "f1":
		for i := range f {
			f[i] = math.Pow(0.978, float64(i))
		}
	case "f2":
		for i := range f {
			f[i] = 1 - float64(i)*(1-0.0001)/float64(L-1)
		}
	case "f3":
		for i := range f {
			f[i] = math.Pow(0.9, float64(i))
		}
	case "f4":
		rng := rand.New(rand.NewPCG(freqSetF4Seed, 0))
		for i := range f {
			f[i] = 0.0001 + (1-0.0001)*rng.Float64()
		}
		slices.Sort(f)
		slices.Reverse(f)
	default:
		return nil, fmt.Errorf("loope: unknown frequency set %q (valid: %s)", name, strings.Join(FreqSetNames, ", "))
	}
	return f[:dim/2], nil
}

// freqsOrVaswani returns freqs, or VaswaniFreqs(dim) if freqs is nil, and
// panics if a given set does not have dim/2 entries.
func freqsOrVaswani(op string, dim int, freqs []float64) []float64 {
	checkDim(op, dim)
	if freqs == nil {
		return VaswaniFreqs(dim)
	}
	if len(freqs) != dim/2 {
		panic(fmt.Sprintf("loope: %s: %d frequencies for dim %d, want %d", op, len(freqs), dim, dim/2))
	}
	return freqs
}

// Sinusoid1D returns the (len(pos), dim) table PE[p, 2i] = sin(pos[p]·ω_i),
// PE[p, 2i+1] = cos(pos[p]·ω_i) (interleaved, docs/pe-zoo.md §5; docs/paper.md §2.4, Eq. 11
// with the code's layout). Positions may be fractional (X_G + X_C). freqs
// (dim/2) are the ω_i; nil means VaswaniFreqs(dim).
func Sinusoid1D(pos []float64, dim int, freqs []float64) []float64 {
	freqs = freqsOrVaswani("Sinusoid1D", dim, freqs)
	pe := make([]float64, len(pos)*dim)
	for p, x := range pos {
		row := pe[p*dim : (p+1)*dim]
		for i, w := range freqs {
			row[2*i], row[2*i+1] = math.Sincos(x * w)
		}
	}
	return pe
}

// OrderPositions returns the sinusoid positions of the LOOPE repo's ordered
// encoders (N+1): CLS at 0, patch token t at order[t]+1 (order (N), 0-based,
// see Gilbert). For the Gilbert order the patch positions are X_G = 1…N.
func OrderPositions(order []int) []float64 {
	pos := make([]float64, len(order)+1)
	for t, k := range order {
		pos[t+1] = float64(k + 1)
	}
	return pos
}

// OrderedSinusoid returns the (N+1, dim) table of the LOOPE repo's
// curve-ordered sinusoid: row 0 is CLS at position 0 (sin 0 = 0, cos 0 = 1),
// row t+1 is patch token t at position order[t]+1 (docs/pe-zoo.md §6; docs/paper.md
// §3, "Sinusoid" and "Hilbert"). The raster order gives the plain 1-D
// sinusoid over the whole sequence. freqs (dim/2) nil means Vaswani.
func OrderedSinusoid(order []int, dim int, freqs []float64) []float64 {
	return Sinusoid1D(OrderPositions(order), dim, freqs)
}

// SinCos2D returns the (h·w+1, dim) MAE 2-D sin-cos table
// (facebookresearch/mae util/pos_embed.py get_2d_sincos_pos_embed with
// cls_token=True; docs/pe-zoo.md §7): row 0 (CLS) is zero; patch token t = r·w + c
// gets, with D/4 frequencies ω_i (nil means ω_i = 10000^(−i/(D/4)), i.e.
// VaswaniFreqs(dim/2)), the concatenated quarters
//
//	[sin(c·ω) | cos(c·ω) | sin(r·ω) | cos(r·ω)]
//
// at integer grid coordinates (column first: MAE's meshgrid(grid_w, grid_h)
// puts the column in grid[0]). dim must be a multiple of 4.
func SinCos2D(dim, h, w int, freqs []float64) []float64 {
	return sinCos2D("SinCos2D", dim, h, w, freqs, [4]int{qsinC, qcosC, qsinR, qcosR}, true)
}

// SinCos2DMoCo returns the (h·w+1, dim) MoCo v3 2-D sin-cos table
// (vits.py build_2d_sincos_position_embedding; docs/pe-zoo.md §7), the transpose of
// SinCos2D: quarters [sin(r·ω) | cos(r·ω) | sin(c·ω) | cos(c·ω)], CLS row zero.
func SinCos2DMoCo(dim, h, w int, freqs []float64) []float64 {
	return sinCos2D("SinCos2DMoCo", dim, h, w, freqs, [4]int{qsinR, qcosR, qsinC, qcosC}, true)
}

// SinCos2DTimm returns the (h·w, dim) timm 2-D sin-cos table
// (layers/pos_embed_sincos.py build_sincos2d_pos_embed defaults; docs/pe-zoo.md §7):
// quarters [sin(r·ω) | sin(c·ω) | cos(r·ω) | cos(c·ω)] and no CLS row.
func SinCos2DTimm(dim, h, w int, freqs []float64) []float64 {
	return sinCos2D("SinCos2DTimm", dim, h, w, freqs, [4]int{qsinR, qsinC, qcosR, qcosC}, false)
}

// Quarter contents of the 2-D sin-cos layouts.
const (
	qsinC = iota // sin(column·ω)
	qcosC        // cos(column·ω)
	qsinR        // sin(row·ω)
	qcosR        // cos(row·ω)
)

// sinCos2D fills quarters in the given layout order, after a zero CLS row
// if cls.
func sinCos2D(op string, dim, h, w int, freqs []float64, layout [4]int, cls bool) []float64 {
	checkGrid(op, h, w)
	if dim%4 != 0 || dim < 4 {
		panic(fmt.Sprintf("loope: %s: dim %d must be a positive multiple of 4", op, dim))
	}
	q := dim / 4
	freqs = freqsOrVaswani(op, dim/2, freqs)
	off := 0
	if cls {
		off = 1
	}
	pe := make([]float64, (h*w+off)*dim)
	var v [4]float64
	for r := range h {
		for c := range w {
			row := pe[(off+r*w+c)*dim : (off+1+r*w+c)*dim]
			for i, om := range freqs {
				v[qsinC], v[qcosC] = math.Sincos(float64(c) * om)
				v[qsinR], v[qcosR] = math.Sincos(float64(r) * om)
				for k, src := range layout {
					row[k*q+i] = v[src]
				}
			}
		}
	}
	return pe
}

// linspace returns n evenly spaced values from a to b inclusive (numpy
// linspace; n = 1 gives [a]).
func linspace(a, b float64, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		if n == 1 {
			v[i] = a
		} else {
			v[i] = a + (b-a)*float64(i)/float64(n-1)
		}
	}
	return v
}

// SinCos2DSum returns the (h·w+1, dim) table of the LOOPE repo's
// "SinCos2D" (models/vit_sincos2d.py Sin2DPositionalEncoding, docs/pe-zoo.md §8;
// docs/paper.md §3 "2D Sinusoid"): coordinates x = linspace(−1, 1, w)[c]
// (column), y = linspace(−1, 1, h)[r] (row), D/2 frequencies ω_i (nil means
// Vaswani 10000^(−2i/D)), and the per-axis sinusoids SUMMED into every
// channel pair:
//
//	PE[t, 2i] = sin(x ω_i) + sin(y ω_i),  PE[t, 2i+1] = cos(x ω_i) + cos(y ω_i).
//
// Row 0 (CLS) is zero. Patch t = r·w + c is row t+1.
func SinCos2DSum(dim, h, w int, freqs []float64) []float64 {
	checkGrid("SinCos2DSum", h, w)
	freqs = freqsOrVaswani("SinCos2DSum", dim, freqs)
	xs, ys := linspace(-1, 1, w), linspace(-1, 1, h)
	pe := make([]float64, (h*w+1)*dim)
	for r := range h {
		for c := range w {
			row := pe[(1+r*w+c)*dim : (2+r*w+c)*dim]
			for i, om := range freqs {
				sx, cx := math.Sincos(xs[c] * om)
				sy, cy := math.Sincos(ys[r] * om)
				row[2*i], row[2*i+1] = sx+sy, cx+cy
			}
		}
	}
	return pe
}

// RopeAxialFreqs returns the d/4 axial RoPE frequencies
// f_j = 1/θ^(4j/d), j = 0…d/4−1, of naver-ai/rope-vit compute_axial_cis
// (docs/pe-zoo.md §14; θ = 100 for RoPE-Axial). Pairs j < d/4 rotate by t_x·f_j
// (column), pairs d/4 + j by t_y·f_j (row). headDim must be a positive
// multiple of 4.
func RopeAxialFreqs(headDim int, theta float64) []float64 {
	if headDim < 4 || headDim%4 != 0 {
		panic(fmt.Sprintf("loope: RopeAxialFreqs: head dim %d must be a positive multiple of 4", headDim))
	}
	f := make([]float64, headDim/4)
	for j := range f {
		f[j] = math.Pow(theta, -float64(4*j)/float64(headDim))
	}
	return f
}

// RopeMixedMagnitudes returns the d/4 initial frequency magnitudes
// mag_j = 1/θ^(4j/d) of RoPE-Mixed (rope-vit init_random_2d_freqs,
// docs/pe-zoo.md §14; θ = 10 there). It is the axial formula at the mixed default θ:
// each layer and head then draws an angle a ~ U[0, 2π) and sets
// Fx = [mag·cos a, mag·cos(a+π/2)], Fy = [mag·sin a, mag·sin(a+π/2)].
func RopeMixedMagnitudes(headDim int, theta float64) []float64 {
	if headDim < 4 || headDim%4 != 0 {
		panic(fmt.Sprintf("loope: RopeMixedMagnitudes: head dim %d must be a positive multiple of 4", headDim))
	}
	return RopeAxialFreqs(headDim, theta)
}

// Rope1DFreqs returns the d/2 1-D RoPE frequencies θ_j = θ^(−2j/d),
// j = 0…d/2−1 (RoFormer/LLaMA precompute_freqs_cis, docs/pe-zoo.md §14; θ = 10000),
// applied to adjacent channel pairs (2j, 2j+1) at angle p·θ_j.
func Rope1DFreqs(headDim int, theta float64) []float64 {
	checkDim("Rope1DFreqs", headDim)
	f := make([]float64, headDim/2)
	for j := range f {
		f[j] = math.Pow(theta, -float64(2*j)/float64(headDim))
	}
	return f
}

// FixedPENames lists the fixed PE tables FixedPE builds, in display order.
var FixedPENames = []string{"sin1d", "hilbert", "snake", "zigzag", "morton", "peano", "hilbert-classic", "hilbert-crop", "sincos2d", "sincos2d-sum"}

// FixedPE returns the (h·w+1, dim) table (CLS row first) of a named fixed
// PE on an h×w grid with the frequency set freqSet (see FreqSet; "" means
// Vaswani):
//
//	sin1d            1-D sinusoid, raster positions (CLS 0, patches 1…N)
//	hilbert, gilbert sinusoid at the Gilbert positions X_G (the paper's "Hilbert")
//	snake, zigzag, morton, peano, hilbert-classic
//	                 sinusoid at order[t]+1 of that ordering (OrderByName)
//	hilbert-crop     sinusoid at HilbertCurveIndex+1 (unranked, docs/paper.md §5.5)
//	sincos2d         MAE 2-D sin-cos (D/4 frequencies: FreqSet(freqSet, dim/2))
//	sincos2d-sum     the LOOPE repo's summed 2-D variant on [−1, 1] coordinates
func FixedPE(name string, dim, h, w int, freqSet string) ([]float64, error) {
	if h < 1 || w < 1 {
		return nil, fmt.Errorf("loope: PE %q: grid %d×%d must be at least 1×1", name, h, w)
	}
	fdim := dim
	if name == "sincos2d" {
		if dim < 4 || dim%4 != 0 {
			return nil, fmt.Errorf("loope: PE sincos2d: dim %d must be a positive multiple of 4", dim)
		}
		fdim = dim / 2
	}
	freqs, err := FreqSet(freqSet, fdim)
	if err != nil {
		return nil, err
	}
	var order []int
	switch name {
	case "sincos2d":
		return SinCos2D(dim, h, w, freqs), nil
	case "sincos2d-sum":
		return SinCos2DSum(dim, h, w, freqs), nil
	case "hilbert-crop":
		order = HilbertCurveIndex(h, w)
	case "sin1d":
		order = Raster(h, w)
	case "hilbert", "gilbert", "snake", "zigzag", "morton", "peano", "hilbert-classic":
		order, _ = OrderByName(name, h, w)
	default:
		return nil, fmt.Errorf("loope: unknown fixed PE %q (valid: %s)", name, strings.Join(FixedPENames, ", "))
	}
	return OrderedSinusoid(order, dim, freqs), nil
}
