// This file holds the Three-Cell Experiment (arXiv 2504.14386, Table 4;
// docs/paper.md §4): the generator of supplement Algorithm 4, the six
// labels, rendering to model input and to RGB bytes, the fixed 8k/1k/1k
// split and fresh per-epoch draws, the group accuracies of Table 4, and the
// exact label priors obtained by enumerating the generator's distribution.
//
// Coordinates: a cell is (Row, Col) with 0 ≤ Row, Col < G. Following
// docs/paper.md §4.4 [I], the paper's x is the row and y is the column.

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Three-Cell constants from the paper and docs/paper.md §4.2–4.5 and §10.
const (
	ThreeCellGrid        = 14  // G of the paper: a 14×14 grid (docs/paper.md §4.2)
	ThreeCellCellPx      = 16  // pixels per cell side: 14·16 = 224 (docs/paper.md §4.2)
	ThreeCellMaxAttempts = 100 // inner retries of Algorithm 4 (docs/paper.md §4.3, §10 #19)
	ThreeCellBits        = 6   // K: label bits per image (docs/paper.md §4.4)

	ThreeCellN      = 10000 // images in the fixed dataset (docs/paper.md §4.2)
	ThreeCellTrainN = 8000  // fixed indices [0, 8000) (docs/paper.md §4.5, §10 #13)
	ThreeCellValN   = 1000  // fixed indices [8000, 9000)
	ThreeCellTestN  = 1000  // fixed indices [9000, 10000)

	// ThreeCellFixedStream is the stream of the fixed 10,000-image dataset.
	// Streaming training draws epoch e from stream 1+e (ThreeCell.Epoch).
	ThreeCellFixedStream = 0
)

// Cell is one grid cell: Row is the paper's x, Col its y (docs/paper.md §4.4 [I]).
type Cell struct{ Row, Col int }

// ThreeCellSample is one Three-Cell image: a G×G black grid with one red,
// one green and one blue cell, and its six label bits (docs/paper.md §4.4):
//
//	0 d_RG > d_RB    1 d_RB > d_RG         (Distance)
//	2 Δ_RGB > 0                             (Orientation, counter-clockwise)
//	3 A_RG > A_RB    4 A_RB > A_RG         (Area)
//	5 x_s > G−1 and y_s > G−1              (Vector Sum, AND form)
type ThreeCellSample struct {
	G                int      // grid side
	Red, Green, Blue Cell     // distinct, inside the grid, never collinear
	Labels           [6]uint8 // ThreeCellLabels(G, Red, Green, Blue), each 0 or 1
	Mode             int      // generator mode: 1 equal distances, 2 green not farther, 3 green not closer
}

// ThreeCellLabels returns the six label bits of docs/paper.md §4.4 for a red, green
// and blue cell on a g×g grid, with x = Row and y = Col:
//
//	d²_RG = |p_G − p_R|², d²_RB = |p_B − p_R|²
//	Δ = (x_G − x_R)(y_B − y_R) − (y_G − y_R)(x_B − x_R)       (Eq. 12)
//	A_RG = ½|(y_R + y_G)(x_G − x_R)|, A_RB = ½|(y_R + y_B)(x_B − x_R)|
//	p_s = p_R + p_G + p_B
//
// Ties give 0 in both bits of a pair.
//
// NOTE(spec): bit 5 is "x_s > 13 and y_s > 13" in the paper (G = 14, AND as
// docs/paper.md §10 #17 recommends); for other G the threshold is G−1.
func ThreeCellLabels(g int, r, gr, b Cell) [6]uint8 {
	m := threeCellMask(g, r, gr, b)
	var l [6]uint8
	for k := range l {
		l[k] = uint8(m>>k) & 1
	}
	return l
}

// threeCellMask returns the labels of ThreeCellLabels packed as bit k of a
// 6-bit mask.
func threeCellMask(g int, r, gr, b Cell) int {
	d2g := tcSq(gr.Row-r.Row) + tcSq(gr.Col-r.Col)
	d2b := tcSq(b.Row-r.Row) + tcSq(b.Col-r.Col)
	det := (gr.Row-r.Row)*(b.Col-r.Col) - (gr.Col-r.Col)*(b.Row-r.Row)
	a2g := tcAbs((r.Col + gr.Col) * (gr.Row - r.Row)) // 2·A_RG
	a2b := tcAbs((r.Col + b.Col) * (b.Row - r.Row))   // 2·A_RB
	xs, ys := r.Row+gr.Row+b.Row, r.Col+gr.Col+b.Col
	return tcBit(d2g > d2b) | tcBit(d2b > d2g)<<1 | tcBit(det > 0)<<2 |
		tcBit(a2g > a2b)<<3 | tcBit(a2b > a2g)<<4 | tcBit(xs > g-1 && ys > g-1)<<5
}

func tcSq(x int) int { return x * x }

func tcAbs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func tcBit(b bool) int {
	if b {
		return 1
	}
	return 0
}

// threeCellDict is the offset dictionary of Algorithm 4 step 1 for a g×g
// grid: keys n = a² + b² ≤ L = 2(G−1)² with at least two representations
// (a, b) ∈ [−m, m]², m = ⌊√L⌋, ascending; offs[k] lists the representations
// of keys[k] in the order "for a in −m..m: for b in −m..m".
//
// NOTE(spec): the supplement fixes L = 338 = 2·13² for G = 14; L = 2(G−1)²
// is the same rule (the largest squared in-grid offset) for any G.
type threeCellDict struct {
	keys  []int
	offs  [][][2]int // offs[k] (|D[keys[k]]|, 2): (dRow, dCol)
	index []int      // index[n] = k with keys[k] = n, or -1; len L+1
}

func newThreeCellDict(g int) *threeCellDict {
	l := 2 * tcSq(g-1)
	m := int(math.Sqrt(float64(l)))
	for tcSq(m+1) <= l { // guard the float square root
		m++
	}
	for tcSq(m) > l {
		m--
	}
	byN := make([][][2]int, l+1)
	for a := -m; a <= m; a++ {
		for b := -m; b <= m; b++ {
			if n := a*a + b*b; n <= l {
				byN[n] = append(byN[n], [2]int{a, b})
			}
		}
	}
	d := &threeCellDict{index: make([]int, l+1)}
	for n, o := range byN {
		d.index[n] = -1
		if len(o) >= 2 { // drops n = 0, whose only representation is (0, 0)
			d.index[n] = len(d.keys)
			d.keys = append(d.keys, n)
			d.offs = append(d.offs, o)
		}
	}
	return d
}

// ThreeCell generates Three-Cell samples for one grid size and seed. Every
// sample is a pure function of (seed, stream, index), so fixed splits,
// streaming epochs and any access order reproduce the same images.
//
// Seeding: sample (stream, index) runs Algorithm 4 on its own
// math/rand/v2 PCG seeded with (mix(seed), mix(stream<<32 | index)), where
// mix is the SplitMix64 finaliser (a bijection), so distinct (seed, stream,
// index) give distinct generator states. Stream 0 is the fixed dataset
// (indices [0, 10000): train [0, 8000), val [8000, 9000), test
// [9000, 10000)); stream 1+e is streaming epoch e. Stream and index must be
// below 2³².
//
// Draw order within one sample (each draw is rand.Rand.IntN):
//
//	mode = 1 + IntN(3)
//	repeat:                      // "repeat until valid"
//	  red = (IntN(G), IntN(G))   // row, then column
//	  mode 1: k = IntN(#keys); up to MaxAttempts times:
//	          i = IntN(n), j = IntN(n−1), j++ if j ≥ i   (n = |D[k]|)
//	          green = red + D[k][i], blue = red + D[k][j]
//	  mode 2, 3: up to MaxAttempts times:
//	          k1 = IntN(#keys), k2 = IntN(#keys)
//	          (kG, kB) = (min, max) in mode 2, (max, min) in mode 3
//	          green = red + D[kG][IntN(|D[kG]|)], blue = red + D[kB][IntN(|D[kB]|)]
//	  an attempt is accepted when green and blue are inside the grid,
//	  distinct from red and from each other, and Δ ≠ 0.
//
// When all MaxAttempts attempts fail, the outer loop draws a new red cell
// (and, in mode 1, a new key); the mode is kept.
//
// NOTE(spec): Algorithm 4 does not reject collinear triples; docs/paper.md §4.3 and
// §10 #18 do, and the check sits in each attempt's acceptance test.
//
// A ThreeCell holds a scratch random source, so one value must not be used
// from several goroutines at once; make one per goroutine.
type ThreeCell struct {
	CellPx      int    // pixels per cell side; images are (G·CellPx)²
	Seed        uint64 // dataset seed
	MaxAttempts int    // inner retries (ThreeCellMaxAttempts)

	g    int // grid side, ≥ 3; fixed because dict depends on it
	dict *threeCellDict
	src  rand.PCG
	rng  *rand.Rand
}

// NewThreeCell returns the generator for a g×g grid of cellPx-pixel cells
// (the paper: g = 14, cellPx = 16, 224×224 images) with MaxAttempts 100.
// It panics if g < 3 or cellPx < 1.
func NewThreeCell(g, cellPx int, seed uint64) *ThreeCell {
	if g < 3 || cellPx < 1 {
		panic(fmt.Sprintf("loope: NewThreeCell: need grid ≥ 3 and cell ≥ 1 pixel, got grid %d cell %d", g, cellPx))
	}
	tc := &ThreeCell{CellPx: cellPx, Seed: seed, MaxAttempts: ThreeCellMaxAttempts, g: g, dict: newThreeCellDict(g)}
	tc.rng = rand.New(&tc.src)
	return tc
}

// Grid returns the grid side G.
func (tc *ThreeCell) Grid() int { return tc.g }

// Side returns the image side in pixels, G·CellPx.
func (tc *ThreeCell) Side() int { return tc.g * tc.CellPx }

// Fixed returns image i of the fixed 10,000-image dataset (stream 0).
func (tc *ThreeCell) Fixed(i int) ThreeCellSample { return tc.Sample(ThreeCellFixedStream, i) }

// Epoch returns image i of streaming epoch e (stream 1+e): fresh images
// every epoch, disjoint in stream from the fixed dataset.
func (tc *ThreeCell) Epoch(e, i int) ThreeCellSample {
	if e < 0 {
		panic(fmt.Sprintf("loope: ThreeCell.Epoch: negative epoch %d", e))
	}
	return tc.Sample(uint64(e)+1, i)
}

// Sample returns image index of the given stream; see ThreeCell for how
// (Seed, stream, index) determine it.
func (tc *ThreeCell) Sample(stream uint64, index int) ThreeCellSample {
	if stream >= 1<<32 || index < 0 || uint64(index) >= 1<<32 {
		panic(fmt.Sprintf("loope: ThreeCell.Sample: stream %d or index %d outside [0, 2³²)", stream, index))
	}
	if tc.MaxAttempts < 1 {
		panic(fmt.Sprintf("loope: ThreeCell.Sample: MaxAttempts %d < 1", tc.MaxAttempts))
	}
	tc.src.Seed(tcMix64(tc.Seed), tcMix64(stream<<32|uint64(index)))
	return tc.draw(tc.rng)
}

// tcMix64 is the SplitMix64 output function, a bijection on uint64.
func tcMix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// draw runs Algorithm 4 once with rng (see ThreeCell for the draw order).
func (tc *ThreeCell) draw(rng *rand.Rand) ThreeCellSample {
	g, d := tc.g, tc.dict
	nk := len(d.keys)
	mode := 1 + rng.IntN(3)
	for {
		r := Cell{rng.IntN(g), rng.IntN(g)}
		if mode == 1 {
			offs := d.offs[rng.IntN(nk)]
			for range tc.MaxAttempts {
				i, j := rng.IntN(len(offs)), rng.IntN(len(offs)-1)
				if j >= i {
					j++
				}
				if s, ok := threeCellAccept(g, r, offs[i], offs[j]); ok {
					s.Mode = mode
					return s
				}
			}
			continue
		}
		for range tc.MaxAttempts {
			k1, k2 := rng.IntN(nk), rng.IntN(nk)
			kg, kb := min(k1, k2), max(k1, k2) // keys ascend, so index order is key order
			if mode == 3 {
				kg, kb = kb, kg
			}
			og := d.offs[kg][rng.IntN(len(d.offs[kg]))]
			ob := d.offs[kb][rng.IntN(len(d.offs[kb]))]
			if s, ok := threeCellAccept(g, r, og, ob); ok {
				s.Mode = mode
				return s
			}
		}
	}
}

// threeCellAccept applies the acceptance test of one attempt and, on
// success, returns the labelled sample.
func threeCellAccept(g int, r Cell, og, ob [2]int) (ThreeCellSample, bool) {
	gr := Cell{r.Row + og[0], r.Col + og[1]}
	b := Cell{r.Row + ob[0], r.Col + ob[1]}
	if !tcInGrid(g, gr) || !tcInGrid(g, b) || gr == r || b == r || gr == b || og[0]*ob[1]-og[1]*ob[0] == 0 {
		return ThreeCellSample{}, false
	}
	return ThreeCellSample{G: g, Red: r, Green: gr, Blue: b, Labels: ThreeCellLabels(g, r, gr, b)}, true
}

func tcInGrid(g int, c Cell) bool { return c.Row >= 0 && c.Row < g && c.Col >= 0 && c.Col < g }

// ThreeCellSplit names a part of the fixed dataset.
type ThreeCellSplit int

// The 8,000 / 1,000 / 1,000 split of the fixed dataset (docs/paper.md §4.5, §10 #13).
const (
	ThreeCellTrain ThreeCellSplit = iota // fixed indices [0, 8000)
	ThreeCellVal                         // fixed indices [8000, 9000)
	ThreeCellTest                        // fixed indices [9000, 10000)
)

// Range returns the first fixed-dataset index of the split and its size.
func (s ThreeCellSplit) Range() (first, n int) {
	switch s {
	case ThreeCellTrain:
		return 0, ThreeCellTrainN
	case ThreeCellVal:
		return ThreeCellTrainN, ThreeCellValN
	case ThreeCellTest:
		return ThreeCellTrainN + ThreeCellValN, ThreeCellTestN
	}
	panic(fmt.Sprintf("loope: ThreeCellSplit.Range: unknown split %d", int(s)))
}

// String returns "train", "val" or "test".
func (s ThreeCellSplit) String() string {
	switch s {
	case ThreeCellTrain:
		return "train"
	case ThreeCellVal:
		return "val"
	case ThreeCellTest:
		return "test"
	}
	return fmt.Sprintf("ThreeCellSplit(%d)", int(s))
}

// threeCellColour is the channel lit by each coloured cell: red, green, blue
// at full intensity on a black background (docs/paper.md §4.2 [I]).
var threeCellColour = [3]int{0, 1, 2}

// RenderThreeCell draws s into dst (3, H, W), H = W = s.G·cellPx, the
// model's input layout: channel c of a pixel is 1 in the red (c = 0), green
// (c = 1) or blue (c = 2) cell and 0 elsewhere, i.e. the uint8 image of
// RenderRGB divided by 255, black background, no mean/std normalisation
// (the models are trained from scratch; docs/paper.md §10 #15). Each cell is a
// cellPx×cellPx block (replication upsampling, docs/paper.md §4.2). Every element of
// dst is written.
func RenderThreeCell[T Float](dst []T, s ThreeCellSample, cellPx int) {
	side := s.G * cellPx
	if len(dst) != 3*side*side {
		panic(fmt.Sprintf("loope: RenderThreeCell: dst has %d values, want (3, %d, %d)", len(dst), side, side))
	}
	clear(dst)
	for i, c := range [3]Cell{s.Red, s.Green, s.Blue} {
		plane := dst[threeCellColour[i]*side*side:][:side*side]
		for y := c.Row * cellPx; y < (c.Row+1)*cellPx; y++ {
			row := plane[y*side+c.Col*cellPx:][:cellPx]
			for x := range row {
				row[x] = 1
			}
		}
	}
}

// RenderRGB draws s into dst (H, W, 3) as 8-bit RGB, H = W = s.G·cellPx:
// pure (255,0,0), (0,255,0) and (0,0,255) cells on (0,0,0). Every element of
// dst is written.
func (s ThreeCellSample) RenderRGB(dst []uint8, cellPx int) {
	side := s.G * cellPx
	if len(dst) != side*side*3 {
		panic(fmt.Sprintf("loope: RenderRGB: dst has %d values, want (%d, %d, 3)", len(dst), side, side))
	}
	clear(dst)
	for i, c := range [3]Cell{s.Red, s.Green, s.Blue} {
		for y := c.Row * cellPx; y < (c.Row+1)*cellPx; y++ {
			for x := c.Col * cellPx; x < (c.Col+1)*cellPx; x++ {
				dst[(y*side+x)*3+threeCellColour[i]] = 255
			}
		}
	}
}

// ThreeCellBatch renders samples idx[0..B) of the given stream into x
// (B, 3, H, W) and their labels as 0/1 into y (B, 6), B = len(idx). It
// allocates nothing; use stream ThreeCellFixedStream with indices from a
// ThreeCellSplit range for the fixed dataset, or stream 1+e for fresh
// streaming images in epoch e.
func ThreeCellBatch[T Float](x, y []T, tc *ThreeCell, stream uint64, idx []int) {
	side := tc.Side()
	img := 3 * side * side
	if len(x) != len(idx)*img || len(y) != len(idx)*ThreeCellBits {
		panic(fmt.Sprintf("loope: ThreeCellBatch: x has %d values and y %d, want (%d, 3, %d, %d) and (%d, 6)",
			len(x), len(y), len(idx), side, side, len(idx)))
	}
	for n, i := range idx {
		s := tc.Sample(stream, i)
		RenderThreeCell(x[n*img:(n+1)*img], s, tc.CellPx)
		for k, v := range s.Labels {
			y[n*ThreeCellBits+k] = T(v)
		}
	}
}

// ThreeCellAcc holds the columns of Table 4 as fractions in [0, 1].
type ThreeCellAcc struct {
	Distance    float64 // mean accuracy of bits 0 and 1
	Orientation float64 // accuracy of bit 2
	Area        float64 // mean accuracy of bits 3 and 4
	VectorSum   float64 // accuracy of bit 5
	Average     float64 // mean of the four groups
}

// String prints the five columns as percentages, in Table 4's order.
func (a ThreeCellAcc) String() string {
	return fmt.Sprintf("distance %.1f orientation %.1f area %.1f vecsum %.1f average %.1f",
		100*a.Distance, 100*a.Orientation, 100*a.Area, 100*a.VectorSum, 100*a.Average)
}

// ThreeCellGroups groups per-bit accuracies as the validator of docs/paper.md §4.5:
// Distance = mean of bits 0–1, Orientation = bit 2, Area = mean of bits
// 3–4, Vector Sum = bit 5, Average = mean of the four.
func ThreeCellGroups(bit [6]float64) ThreeCellAcc {
	a := ThreeCellAcc{
		Distance:    (bit[0] + bit[1]) / 2,
		Orientation: bit[2],
		Area:        (bit[3] + bit[4]) / 2,
		VectorSum:   bit[5],
	}
	a.Average = (a.Distance + a.Orientation + a.Area + a.VectorSum) / 4
	return a
}

// ThreeCellTally counts correct bits over any number of batches.
type ThreeCellTally struct {
	Correct [6]int // correct predictions per bit
	N       int    // images counted
}

// Acc returns the grouped accuracies of the counted images (zero if none).
func (t ThreeCellTally) Acc() ThreeCellAcc {
	var bit [6]float64
	if t.N > 0 {
		for k, c := range t.Correct {
			bit[k] = float64(c) / float64(t.N)
		}
	}
	return ThreeCellGroups(bit)
}

// TallyThreeCell adds a batch to t: logits (B, 6) predict bit 1 when > 0
// (sigmoid > 0.5, docs/paper.md §4.5); targets (B, 6) are 1 when > 0.5. Pass
// probabilities minus 0.5 to use probabilities.
func TallyThreeCell[T Float](t *ThreeCellTally, logits, targets []T) {
	if len(logits) != len(targets) || len(logits)%ThreeCellBits != 0 {
		panic(fmt.Sprintf("loope: TallyThreeCell: logits %d and targets %d values, want equal multiples of 6",
			len(logits), len(targets)))
	}
	for i, z := range logits {
		if (z > 0) == (targets[i] > 0.5) {
			t.Correct[i%ThreeCellBits]++
		}
	}
	t.N += len(logits) / ThreeCellBits
}

// ThreeCellAccuracy returns Table 4's columns for logits (B, 6) against
// targets (B, 6); see TallyThreeCell.
func ThreeCellAccuracy[T Float](logits, targets []T) ThreeCellAcc {
	var t ThreeCellTally
	TallyThreeCell(&t, logits, targets)
	return t.Acc()
}

// ThreeCellPriorAcc returns the grouped accuracies of the best constant
// predictor on a g×g grid: per bit max(p, 1−p) with p from ThreeCellPriors,
// grouped as ThreeCellGroups. A model blind to position should score near it.
func ThreeCellPriorAcc(g int) ThreeCellAcc {
	p := ThreeCellPriors(g)
	var bit [6]float64
	for k, v := range p {
		bit[k] = max(v, 1-v)
	}
	return ThreeCellGroups(bit)
}

// ThreeCellPriors returns P(bit k = 1), k = 0..5, under the generator on a
// g×g grid with MaxAttempts 100, computed exactly (up to float64 rounding)
// by enumerating its distribution, not by sampling. See threeCellPriors.
func ThreeCellPriors(g int) [6]float64 {
	if g < 3 {
		panic(fmt.Sprintf("loope: ThreeCellPriors: grid %d < 3", g))
	}
	return threeCellPriors(g, ThreeCellMaxAttempts)
}

// threeCellPriors enumerates the generator's output distribution.
//
// One outer iteration draws red r (prob 1/G²) and, in mode 1, key k (prob
// 1/K), then makes up to A independent attempts that each succeed with
// probability q. It therefore succeeds with probability s = 1 − (1 − q)^A,
// and given success its outcome is one attempt's outcome conditioned on
// acceptance. The outer loop repeats until success with the mode fixed, so
// the output is the success-weighted mixture over the outer draws:
//
//	mode 1:    P(r, k) ∝ s(r, k), then uniform over the n(r, k) accepted
//	           ordered offset pairs of key k; q(r, k) = n(r, k) / (|D_k|(|D_k|−1))
//	mode 2, 3: P(r) ∝ s(r), then P(g, b | r) = π(g, b) / q(r) over accepted
//	           pairs, π = c(k_g, k_b) / (K² |D_kg| |D_kb|), q(r) = Σ π,
//	           c = 2 if the keys are in the mode's strict order, 1 if equal, 0 otherwise
//
// and each mode has probability 1/3. (With A = ∞ every feasible outer draw
// would weigh the same; with A = 1 the weight would be q itself.) Accepted
// green and blue cells are grid cells other than r, so the sums run over
// cell pairs, not over the larger dictionary: G²·(G²−1)² triples in all.
// Red cells are split over cores and their partial sums added in red order,
// so the result does not depend on the thread count.
func threeCellPriors(g, attempts int) [6]float64 {
	d := newThreeCellDict(g)
	nc := g * g
	pc := priorCounts{d: d, g: g, attempts: attempts, k2: float64(len(d.keys)) * float64(len(d.keys))}
	parts := make([]priorPart, nc)
	parallelFor(nc, 1, func(lo, hi int) {
		ps := newPriorScratch(nc, len(d.keys))
		for ri := lo; ri < hi; ri++ {
			r := Cell{ri / g, ri % g}
			ps.collect(&pc, r)
			pc.mode1(ps, r, &parts[ri])
			pc.modes23(ps, r, &parts[ri])
		}
	})
	var tot priorPart
	for _, p := range parts {
		for md := range 3 {
			tot.den[md] += p.den[md]
			for b := range 6 {
				tot.num[md][b] += p.num[md][b]
			}
		}
	}
	var pr [6]float64
	for md := range 3 {
		for b := range pr {
			pr[b] += tot.num[md][b] / tot.den[md] / 3
		}
	}
	return pr
}

// priorCounts are the fixed inputs of threeCellPriors: the distance
// dictionary of grid g, the attempts A, and |keys|².
type priorCounts struct {
	d        *threeCellDict
	g        int
	attempts int
	k2       float64
}

// succ is 1 − (1 − q)^A, accurate for small q: the chance that A attempts
// of acceptance probability q succeed.
func (pc *priorCounts) succ(q float64) float64 {
	return -math.Expm1(float64(pc.attempts) * math.Log1p(-q))
}

// priorPart is one red cell's share of the priors: per sampling mode,
// Σ s·P(bit | outer draw) and Σ s.
type priorPart struct {
	num [3][6]float64
	den [3]float64
}

// priorScratch is one goroutine's scratch: the green/blue candidates of a
// red cell r (all cells but r), their offsets from r, key indices and
// weights 1/|D_k|, the candidates by key, and a weight per label mask and
// mode.
type priorScratch struct {
	cells []Cell
	off   [][2]int
	kix   []int
	wt    []float64
	byKey [][]int
	pat   [3][64]float64
}

func newPriorScratch(nc, keys int) *priorScratch {
	return &priorScratch{cells: make([]Cell, 0, nc), off: make([][2]int, 0, nc), kix: make([]int, 0, nc),
		wt: make([]float64, 0, nc), byKey: make([][]int, keys)}
}

// collect fills ps with the candidates of red cell r.
func (ps *priorScratch) collect(pc *priorCounts, r Cell) {
	d, g := pc.d, pc.g
	ps.cells, ps.off, ps.kix, ps.wt = ps.cells[:0], ps.off[:0], ps.kix[:0], ps.wt[:0]
	for k := range ps.byKey {
		ps.byKey[k] = ps.byKey[k][:0]
	}
	for ci := range g * g {
		c := Cell{ci / g, ci % g}
		if c == r {
			continue
		}
		o := [2]int{c.Row - r.Row, c.Col - r.Col}
		k := d.index[tcSq(o[0])+tcSq(o[1])]
		ps.byKey[k] = append(ps.byKey[k], len(ps.off))
		ps.cells, ps.off, ps.kix = append(ps.cells, c), append(ps.off, o), append(ps.kix, k)
		ps.wt = append(ps.wt, 1/float64(len(d.offs[k])))
	}
}

// mode1 adds red cell r's share of mode 1 to p: per key, uniform over the
// accepted ordered pairs of that key.
func (pc *priorCounts) mode1(ps *priorScratch, r Cell, p *priorPart) {
	off := ps.off
	for k, list := range ps.byKey {
		clear(ps.pat[0][:])
		n := 0
		for _, i := range list {
			for _, j := range list {
				if off[i][0]*off[j][1]-off[i][1]*off[j][0] != 0 { // also excludes i == j
					n++
					ps.pat[0][threeCellMask(pc.g, r, ps.cells[i], ps.cells[j])]++
				}
			}
		}
		if n == 0 {
			continue
		}
		dk := float64(len(pc.d.offs[k]))
		s := pc.succ(float64(n) / (dk * (dk - 1)))
		p.den[0] += s
		addMask(&p.num[0], &ps.pat[0], s/float64(n))
	}
}

// modes23 adds red cell r's shares of modes 2 and 3 to p; they accept the
// same pairs, only c differs.
func (pc *priorCounts) modes23(ps *priorScratch, r Cell, p *priorPart) {
	off := ps.off
	clear(ps.pat[1][:])
	clear(ps.pat[2][:])
	for i := range off {
		for j := range off {
			if off[i][0]*off[j][1]-off[i][1]*off[j][0] == 0 {
				continue
			}
			w, m := ps.wt[i]*ps.wt[j], threeCellMask(pc.g, r, ps.cells[i], ps.cells[j])
			switch ki, kj := ps.kix[i], ps.kix[j]; {
			case ki < kj:
				ps.pat[1][m] += 2 * w
			case ki > kj:
				ps.pat[2][m] += 2 * w
			default:
				ps.pat[1][m] += w
				ps.pat[2][m] += w
			}
		}
	}
	for md := 1; md <= 2; md++ {
		q := 0.0
		for _, v := range ps.pat[md] {
			q += v
		}
		if q == 0 {
			continue
		}
		s := pc.succ(q / pc.k2)
		p.den[md] += s
		addMask(&p.num[md], &ps.pat[md], s/q)
	}
}

// addMask adds scale·Σ_m pat[m]·bit_b(m) to num[b] for each bit b.
func addMask(num *[6]float64, pat *[64]float64, scale float64) {
	for m, v := range pat {
		if v == 0 {
			continue
		}
		for b := range num {
			if m>>b&1 == 1 {
				num[b] += scale * v
			}
		}
	}
}
