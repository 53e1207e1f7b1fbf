// This file holds PESI (Positional Embeddings Structural Integrity), the
// three scalar scores of a PE table's cosine-similarity structure from LOOPE
// (arXiv 2504.14386, Eqs. 14–25; supplement Alg. 5–7): undirected
// monotonicity M_U, directed monotonicity M_D and undirected asymmetry A_SU.
//
// Conventions (docs/paper.md §5 and §10 #20, which reproduce Table 5):
//   - The input is the (h·w, D) table of patch PEs in raster token order,
//     CLS excluded (DropCLS removes a leading CLS row).
//   - Grid cells are (i, j) = (row, column); the centre is (x, y) in the same
//     axes; d = √((i−x)² + (j−y)²).
//   - Radial bins r = round(d), r = 0 (the centre alone) included.
//   - Direction θ = atan2(j − y, i − x), bucket k = ⌊θ/δ⌋ mod N with δ = 2π/N;
//     θ/δ within 1e-9 of an integer is snapped to it first, so cells on an
//     axis land on their exact boundary bucket (N = 60: +column → 15,
//     −row → 30, −column → 45).
//     The centre (θ = atan2(0,0) = 0, d = 0) is in bucket 0.
//   - Spearman ρ = Pearson correlation of average ranks. Similarities (and
//     radial means, all cosines in [−1, 1]) within 1e-12 of each other rank
//     as ties (a chain of such neighbours is one tie group); distances are
//     compared exactly via the integer d².
//   - A bucket with < 2 cells counts ρ = 0; a NaN ρ (a constant side) counts 0.
//   - A zero PE row has cosine similarity 0 with everything, itself included.
//   - A radial bin with mean μ(r) = 0 makes σ/μ infinite or NaN, and so A_SU;
//     the metric is undefined there (e.g. for the all-zero PE).

package loope

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// PESITieTol is the absolute tolerance under which two cosine similarities
// (or radial means) rank as tied in PESI's Spearman correlations.
const PESITieTol = 1e-12

// PESIScores are the three PESI metrics of one PE table.
type PESIScores struct {
	MU  float64 // undirected monotonicity, Eq. 17: mean over centres of 1 − ρ(r, μ(r)); ideal 2
	MD  float64 // directed monotonicity, Eq. 22: mean of 1 − (1/N)Σ_k ρ^k; ideal 2
	ASU float64 // undirected asymmetry, Eq. 25: mean over centres and bins of σ(r)/μ(r)
}

// DropCLS returns the rows after the first of a (1+N, dim) table, i.e. the
// (N, dim) patch rows PESI expects. It does not copy.
func DropCLS(table []float64, dim int) []float64 {
	if dim < 1 || len(table)%dim != 0 || len(table) < dim {
		panic(fmt.Sprintf("loope: DropCLS: %d values are not (1+N, %d) rows", len(table), dim))
	}
	return table[dim:]
}

// CosineSimilarity returns the (N, N) matrix of cosine similarities of the
// rows of table (N, dim) (arXiv 2504.14386 Eq. 14; docs/paper.md §5.1). A zero row has similarity 0
// with every row, itself included.
func CosineSimilarity(table []float64, n, dim int) []float64 {
	if n < 1 || dim < 1 || len(table) != n*dim {
		panic(fmt.Sprintf("loope: CosineSimilarity: %d values for (%d, %d)", len(table), n, dim))
	}
	inv := make([]float64, n)
	for a := range n {
		var s float64
		for _, v := range table[a*dim : (a+1)*dim] {
			s += v * v
		}
		if s > 0 {
			inv[a] = 1 / math.Sqrt(s)
		}
	}
	sim := make([]float64, n*n)
	parallelFor(n, 8, func(lo, hi int) {
		for a := lo; a < hi; a++ {
			ra := table[a*dim : (a+1)*dim]
			for b := a; b < n; b++ { // symmetric: fill both halves
				rb := table[b*dim : (b+1)*dim]
				var s float64
				for k, v := range ra {
					s += v * rb[k]
				}
				sim[a*n+b] = s * inv[a] * inv[b]
				sim[b*n+a] = sim[a*n+b]
			}
		}
	})
	return sim
}

// PESI returns M_U, M_D (with directions buckets; the paper uses 60, i.e.
// δ = 6°) and A_SU of table (h·w, dim): patch PEs in raster order, CLS
// excluded (see the file header for every convention).
func PESI(table []float64, dim, h, w, directions int) PESIScores {
	checkGrid("PESI", h, w)
	if dim < 1 || len(table) != h*w*dim {
		panic(fmt.Sprintf("loope: PESI: %d values, want (h·w=%d, D=%d) patch rows (CLS excluded; see DropCLS)", len(table), h*w, dim))
	}
	if directions < 1 {
		panic(fmt.Sprintf("loope: PESI: %d directions, want >= 1", directions))
	}
	return pesiFromSimilarity(CosineSimilarity(table, h*w, dim), h, w, directions)
}

// pesiGeometry holds the per-offset radial bin and direction bucket.
type pesiGeometry struct {
	h, w   int
	radius []int // (2h−1)·(2w−1): round(√(di²+dj²)) per offset (di+h−1, dj+w−1)
	bucket []int // direction bucket per offset
	nBins  int   // max radius + 1
}

func newPESIGeometry(h, w, directions int) *pesiGeometry {
	g := &pesiGeometry{h: h, w: w}
	ow := 2*w - 1
	g.radius = make([]int, (2*h-1)*ow)
	g.bucket = make([]int, len(g.radius))
	for di := -(h - 1); di <= h-1; di++ {
		for dj := -(w - 1); dj <= w-1; dj++ {
			o := (di+h-1)*ow + dj + w - 1
			// √ of an integer is never k+½, so rounding has no ties.
			g.radius[o] = int(math.Round(math.Sqrt(float64(di*di + dj*dj))))
			g.nBins = max(g.nBins, g.radius[o]+1)
			q := math.Atan2(float64(dj), float64(di)) * float64(directions) / (2 * math.Pi)
			if rq := math.Round(q); math.Abs(q-rq) < 1e-9 {
				q = rq
			}
			k := int(math.Floor(q)) % directions
			if k < 0 {
				k += directions
			}
			g.bucket[o] = k
		}
	}
	return g
}

// pesiFromSimilarity computes PESI from the (N, N) similarity matrix.
func pesiFromSimilarity(sim []float64, h, w, directions int) PESIScores {
	n := h * w
	c := newPESICentre(h, w, directions)
	var s PESIScores
	for x := range h {
		for y := range w {
			row := sim[(x*w+y)*n : (x*w+y+1)*n]
			mu, asu := c.radial(row, x, y)
			s.MU += mu
			s.ASU += asu
			s.MD += c.directed(row, x, y)
		}
	}
	s.MU /= float64(n)
	s.MD /= float64(n)
	s.ASU /= float64(n)
	return s
}

// pesiCentre scores one centre cell at a time from its similarity row,
// with scratch reused across centres.
type pesiCentre struct {
	g             *pesiGeometry
	directions    int
	cnt           []int     // cells per radial bin
	sum, mu       []float64 // per bin: Σ E, then Σ (E − μ)²; μ
	levels, means []float64 // the present bins and their means
	bStart, fill  []int     // bucket starts (counting sort) and fill positions
	bDist, bSim   []float64 // cells grouped by bucket: d² and similarity
	rk            *ranker
}

func newPESICentre(h, w, directions int) *pesiCentre {
	g := newPESIGeometry(h, w, directions)
	n := h * w
	return &pesiCentre{g: g, directions: directions,
		cnt: make([]int, g.nBins), sum: make([]float64, g.nBins), mu: make([]float64, g.nBins),
		levels: make([]float64, 0, g.nBins), means: make([]float64, 0, g.nBins),
		bStart: make([]int, directions+1), fill: make([]int, directions),
		bDist: make([]float64, n), bSim: make([]float64, n), rk: newRanker(n)}
}

// radial returns the centre (x, y)'s terms of M_U, 1 − ρ(r, μ(r)), and of
// A_SU, the mean over the present radial bins of σ(r)/μ(r) (population σ,
// two passes), for its similarity row (h·w).
func (c *pesiCentre) radial(row []float64, x, y int) (mu, asu float64) {
	g := c.g
	h, w, ow := g.h, g.w, 2*g.w-1
	clear(c.cnt)
	clear(c.sum)
	for i := range h {
		for j := range w {
			r := g.radius[(i-x+h-1)*ow+j-y+w-1]
			c.cnt[r]++
			c.sum[r] += row[i*w+j]
		}
	}
	c.levels, c.means = c.levels[:0], c.means[:0]
	for r, n := range c.cnt {
		if n > 0 {
			c.levels = append(c.levels, float64(r))
			c.means = append(c.means, c.sum[r]/float64(n))
		}
	}
	mu = 1 - c.rk.spearman(c.levels, c.means, 0, PESITieTol)
	clear(c.mu)
	for r, n := range c.cnt {
		if n > 0 {
			c.mu[r] = c.sum[r] / float64(n)
		}
	}
	clear(c.sum) // now Σ (E − μ)²
	for i := range h {
		for j := range w {
			r := g.radius[(i-x+h-1)*ow+j-y+w-1]
			dv := row[i*w+j] - c.mu[r]
			c.sum[r] += dv * dv
		}
	}
	var cv float64
	for r, n := range c.cnt {
		if n > 0 {
			cv += math.Sqrt(c.sum[r]/float64(n)) / c.mu[r]
		}
	}
	return mu, cv / float64(len(c.levels))
}

// directed returns the centre (x, y)'s term of M_D: 1 − the mean over the
// direction buckets of ρ(d², E) of the cells in each bucket (buckets with
// fewer than two cells add 0), with the cells sorted into buckets by a
// counting sort.
func (c *pesiCentre) directed(row []float64, x, y int) float64 {
	g := c.g
	h, w, ow := g.h, g.w, 2*g.w-1
	clear(c.bStart)
	for i := range h {
		for j := range w {
			c.bStart[g.bucket[(i-x+h-1)*ow+j-y+w-1]+1]++
		}
	}
	for k := 1; k <= c.directions; k++ {
		c.bStart[k] += c.bStart[k-1]
	}
	copy(c.fill, c.bStart[:c.directions])
	for i := range h {
		for j := range w {
			k := g.bucket[(i-x+h-1)*ow+j-y+w-1]
			di, dj := i-x, j-y
			c.bDist[c.fill[k]] = float64(di*di + dj*dj)
			c.bSim[c.fill[k]] = row[i*w+j]
			c.fill[k]++
		}
	}
	var rho float64
	for k := range c.directions {
		lo, hi := c.bStart[k], c.bStart[k+1]
		if hi-lo >= 2 {
			rho += c.rk.spearman(c.bDist[lo:hi], c.bSim[lo:hi], 0, PESITieTol)
		}
	}
	return 1 - rho/float64(c.directions)
}

// ranker computes Spearman correlations with reusable scratch.
type ranker struct {
	idx    []int
	rx, ry []float64
}

func newRanker(n int) *ranker {
	return &ranker{idx: make([]int, n), rx: make([]float64, n), ry: make([]float64, n)}
}

// rank writes into dst the average ranks (1-based) of v; values within tol
// of their sorted neighbour form one tie group.
func (rk *ranker) rank(dst, v []float64, tol float64) {
	idx := rk.idx[:len(v)]
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { // by value, then index: deterministic
		if c := cmp.Compare(v[a], v[b]); c != 0 {
			return c
		}
		return a - b
	})
	for lo := 0; lo < len(idx); {
		hi := lo + 1
		for hi < len(idx) && v[idx[hi]]-v[idx[hi-1]] <= tol {
			hi++
		}
		avg := float64(lo+hi+1) / 2 // mean of ranks lo+1 … hi
		for _, i := range idx[lo:hi] {
			dst[i] = avg
		}
		lo = hi
	}
}

// spearman returns the Pearson correlation of the average ranks of x and y
// (ties within tolX, tolY), or 0 if it is undefined (fewer than 2 values or
// a constant side).
func (rk *ranker) spearman(x, y []float64, tolX, tolY float64) float64 {
	n := len(x)
	if n < 2 {
		return 0
	}
	rx, ry := rk.rx[:n], rk.ry[:n]
	rk.rank(rx, x, tolX)
	rk.rank(ry, y, tolY)
	m := float64(n+1) / 2 // mean rank
	var sxy, sxx, syy float64
	for i := range n {
		a, b := rx[i]-m, ry[i]-m
		sxy += a * b
		sxx += a * a
		syy += b * b
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}
