// This file holds the patch orderings of an h×w patch grid: raster, snake,
// zigzag, Morton (Z-order), Peano, classic Hilbert and Gilbert (generalized
// Hilbert, the static order X_G of LOOPE, arXiv 2504.14386 §3.1).
//
// Convention for every ordering: the grid has h rows and w columns, patch
// token t (0-based, CLS not counted) sits at row r = t / w, column c = t % w
// (raster, as timm's PatchEmbed flattens), and an ordering is a slice
// order (N = h·w) with order[t] = the 0-based position of token t along the
// curve. Every ordering is a permutation of 0..N−1. In curve code x is the
// column and y the row, as in gilbert2d and rope-vit (docs/pe-zoo.md §0).

package loope

import (
	"fmt"
	"sort"
	"strings"
)

// OrderNames lists the orderings OrderByName knows, in display order.
var OrderNames = []string{"raster", "snake", "zigzag", "morton", "peano", "gilbert", "hilbert", "hilbert-classic"}

// OrderByName returns the ordering called name on an h×w grid (see the file
// header for the convention). "hilbert" is an alias of "gilbert": the
// paper's "Hilbert" baseline is Gilbert on 14×14 (docs/paper.md §10 #23).
// "hilbert-classic" is the classic Hilbert curve of the enclosing 2^k grid,
// restricted to the h×w cells and ranked (discontinuous unless h = w = 2^k).
func OrderByName(name string, h, w int) ([]int, error) {
	if h < 1 || w < 1 {
		return nil, fmt.Errorf("loope: order %q: grid %d×%d must be at least 1×1", name, h, w)
	}
	switch name {
	case "raster":
		return Raster(h, w), nil
	case "snake":
		return Snake(h, w), nil
	case "zigzag":
		return Zigzag(h, w), nil
	case "morton":
		return Morton(h, w), nil
	case "peano":
		return Peano(h, w), nil
	case "gilbert", "hilbert":
		return Gilbert(h, w), nil
	case "hilbert-classic":
		return HilbertCropped(h, w), nil
	}
	return nil, fmt.Errorf("loope: unknown order %q (valid: %s)", name, strings.Join(OrderNames, ", "))
}

// checkGrid panics unless h, w >= 1.
func checkGrid(op string, h, w int) {
	if h < 1 || w < 1 {
		panic(fmt.Sprintf("loope: %s: grid %d×%d must be at least 1×1", op, h, w))
	}
}

// Raster returns the identity ordering order[t] = t = r·w + c (h×w grid).
func Raster(h, w int) []int {
	checkGrid("Raster", h, w)
	o := make([]int, h*w)
	for t := range o {
		o[t] = t
	}
	return o
}

// Snake returns the row-wise boustrophedon: even rows left to right, odd
// rows right to left, order[r·w+c] = r·w + (c if r even else w−1−c)
// (docs/pe-zoo.md §6.3).
func Snake(h, w int) []int {
	checkGrid("Snake", h, w)
	o := make([]int, h*w)
	for r := range h {
		for c := range w {
			if r%2 == 0 {
				o[r*w+c] = r*w + c
			} else {
				o[r*w+c] = r*w + w - 1 - c
			}
		}
	}
	return o
}

// Zigzag returns the JPEG zigzag: anti-diagonals s = r+c = 0…h+w−2 in turn;
// even s runs up-right (r decreasing), odd s runs down-left (r increasing)
// (docs/pe-zoo.md §6.3; 4×4 = 0 1 5 6 / 2 4 7 12 / 3 8 11 13 / 9 10 14 15).
func Zigzag(h, w int) []int {
	checkGrid("Zigzag", h, w)
	o := make([]int, h*w)
	k := 0
	for s := 0; s <= h+w-2; s++ {
		lo, hi := max(0, s-w+1), min(s, h-1) // valid rows on this diagonal
		if s%2 == 0 {
			for r := hi; r >= lo; r-- {
				o[r*w+s-r] = k
				k++
			}
		} else {
			for r := lo; r <= hi; r++ {
				o[r*w+s-r] = k
				k++
			}
		}
	}
	return o
}

// mortonCode interleaves the bits of x (to even bits) and y (to odd bits).
func mortonCode(x, y int) uint64 {
	var code uint64
	for b := 0; b < 31; b++ {
		code |= uint64(x>>b&1) << (2 * b)
		code |= uint64(y>>b&1) << (2*b + 1)
	}
	return code
}

// Morton returns the Z-order: tokens sorted by their interleaved code (column
// bit b → bit 2b, row bit b → bit 2b+1) and ranked, so non-2^k grids get the
// 2^k curve restricted to the grid (docs/pe-zoo.md §6.5; it jumps).
func Morton(h, w int) []int {
	checkGrid("Morton", h, w)
	keys := make([]uint64, h*w)
	for t := range keys {
		keys[t] = mortonCode(t%w, t/w)
	}
	return rankKeys(keys)
}

// rankKeys returns for each index its rank in ascending order of the
// (distinct) keys.
func rankKeys(keys []uint64) []int {
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	o := make([]int, len(keys))
	for rank, t := range idx {
		o[t] = rank
	}
	return o
}

// HilbertD2XY maps the curve index d in [0, n²) of the classic Hilbert curve
// on an n×n grid (n a power of two) to its cell, x the column and y the row
// (Wikipedia d2xy, docs/pe-zoo.md §6.2). It equals Gilbert on such grids.
func HilbertD2XY(n, d int) (x, y int) {
	if n < 1 || n&(n-1) != 0 || d < 0 || d >= n*n {
		panic(fmt.Sprintf("loope: HilbertD2XY: need n a power of two and 0 <= d < n², got n=%d d=%d", n, d))
	}
	t := d
	for s := 1; s < n; s *= 2 {
		rx := 1 & (t / 2)
		ry := 1 & (t ^ rx)
		if ry == 0 { // rotate the quadrant
			if rx == 1 {
				x, y = s-1-x, s-1-y
			}
			x, y = y, x
		}
		x += s * rx
		y += s * ry
		t /= 4
	}
	return x, y
}

// HilbertCurveIndex returns, for each raster token of an h×w grid, its
// index d along the classic Hilbert curve of the smallest enclosing
// 2^k×2^k grid (x = column, y = row; the grid sits in the top-left corner).
// Values lie in [0, 4^k) and have gaps unless h = w = 2^k; positions
// d + 1 give the "true 16×16 Hilbert curve cropped to 14×14" sinusoid of
// docs/paper.md §5.5.
func HilbertCurveIndex(h, w int) []int {
	checkGrid("HilbertCurveIndex", h, w)
	n := 1
	for n < max(h, w) {
		n *= 2
	}
	o := make([]int, h*w)
	for d := range n * n {
		x, y := HilbertD2XY(n, d)
		if x < w && y < h {
			o[y*w+x] = d
		}
	}
	return o
}

// HilbertCropped returns HilbertCurveIndex ranked to 0…h·w−1: the classic
// Hilbert curve of the enclosing 2^k grid restricted to the h×w cells
// (docs/pe-zoo.md §6.2). For h = w = 2^k it is the classic curve itself.
func HilbertCropped(h, w int) []int {
	idx := HilbertCurveIndex(h, w)
	keys := make([]uint64, len(idx))
	for i, v := range idx {
		keys[i] = uint64(v)
	}
	return rankKeys(keys)
}

// floorDiv is Python's a // b (rounds toward −∞); Go's / truncates toward 0,
// which breaks gilbert2d on negative axis vectors (docs/pe-zoo.md §6.1).
func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func signInt(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// Gilbert returns the generalized Hilbert ("gilbert") order of an h×w grid:
// order[r·w+c] = 0-based visit index of cell (row r, column c). This is the
// static LOOPE order X_G minus one: the LOOPE code writes
// arr[y][x] = gilbert index + 1 (y row, x column) and flattens row-major
// (docs/paper.md §2.2), so X_G[t] = order[t] + 1.
//
// The curve is jakubcerveny/gilbert gilbert2d(width=w, height=h) with floor
// division (docs/paper.md §2.2, supplement Alg. 1–3), including its
// width >= height swap (docs/paper.md §10 #10): if w >= h the major axis runs
// along the columns (start (0,0), for square grids end at row 0, column
// w−1); if h > w it runs down the rows. For square grids this is exactly the
// LOOPE code, which never swaps. Every step is a unit 4-neighbour move,
// except for one diagonal step when the longer side is odd and the shorter
// even and > 2 (gilbert README, "Odd Sizes"; tested).
func Gilbert(h, w int) []int {
	checkGrid("Gilbert", h, w)
	o := make([]int, h*w)
	g := gilbertGen{w: w, order: o}
	if w >= h {
		g.generate(0, 0, w, 0, 0, h)
	} else {
		g.generate(0, 0, 0, h, w, 0)
	}
	return o
}

// gilbertGen carries the output of one gilbert2d run.
type gilbertGen struct {
	w     int   // grid width (columns)
	order []int // (h·w) visit index per raster cell
	k     int   // next visit index
}

func (g *gilbertGen) emit(x, y int) {
	g.order[y*g.w+x] = g.k
	g.k++
}

// generate is gilbert2d's generate2d: it visits the rectangle at (x, y)
// spanned by the major axis (ax, ay) and the minor axis (bx, by).
func (g *gilbertGen) generate(x, y, ax, ay, bx, by int) {
	w, h := absInt(ax+ay), absInt(bx+by)
	dax, day := signInt(ax), signInt(ay) // unit major direction
	dbx, dby := signInt(bx), signInt(by) // unit minor direction
	if h == 1 {
		for range w {
			g.emit(x, y)
			x, y = x+dax, y+day
		}
		return
	}
	if w == 1 {
		for range h {
			g.emit(x, y)
			x, y = x+dbx, y+dby
		}
		return
	}
	ax2, ay2 := floorDiv(ax, 2), floorDiv(ay, 2)
	bx2, by2 := floorDiv(bx, 2), floorDiv(by, 2)
	w2, h2 := absInt(ax2+ay2), absInt(bx2+by2)
	if 2*w > 3*h { // long case: split the major axis only
		if w2%2 == 1 && w > 2 { // prefer even halves
			ax2, ay2 = ax2+dax, ay2+day
		}
		g.generate(x, y, ax2, ay2, bx, by)
		g.generate(x+ax2, y+ay2, ax-ax2, ay-ay2, bx, by)
		return
	}
	if h2%2 == 1 && h > 2 { // standard case: up, across, down
		bx2, by2 = bx2+dbx, by2+dby
	}
	g.generate(x, y, bx2, by2, ax2, ay2)
	g.generate(x+bx2, y+by2, ax, ay, bx-bx2, by-by2)
	g.generate(x+(ax-dax)+(bx2-dbx), y+(ay-day)+(by2-dby), -bx2, -by2, -(ax - ax2), -(ay - ay2))
}

func absInt(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// Peano returns a Peano order of an h×w grid.
//
// For odd h and w it is a generalized serpentine Peano curve with unit steps
// only: split the columns into three odd parts (one if w = 1) and the rows
// likewise, visit the blocks column by column in serpentine order (block
// column bc goes up the rows if bc is even, down if odd) and fill block
// (bc, br) with the same curve mirrored in x when br is odd and in y when bc
// is odd. Inside each block the curve runs from one corner to the opposite
// one, which needs odd sides. Parts are odd, as equal as possible, symmetric
// when there is a choice. For h = w = 3^k the parts are equal thirds and this
// is the classic Peano curve of docs/pe-zoo.md §6.4 (3×3 = 0 5 6 / 1 4 7 / 2 3 8).
//
// An even side has no corner-to-opposite-corner path (a parity argument), so
// for even h or w the curve of the enclosing odd grid ((h|1)×(w|1)) is
// restricted to the h×w cells and ranked. It jumps only where it crossed the
// dropped last row or column (4 jumps on 14×14; tested).
func Peano(h, w int) []int {
	checkGrid("Peano", h, w)
	ho, wo := h|1, w|1
	full := make([]int, ho*wo)
	p := peanoGen{w: wo, order: full}
	p.fill(0, 0, wo, ho, false, false)
	if ho == h && wo == w {
		return full
	}
	o := make([]int, h*w)
	keys := make([]uint64, h*w)
	for r := range h {
		for c := range w {
			keys[r*w+c] = uint64(full[r*wo+c])
		}
	}
	copy(o, rankKeys(keys))
	return o
}

// peanoGen carries the output of one Peano run.
type peanoGen struct {
	w     int   // grid width (columns)
	order []int // visit index per raster cell
	k     int   // next visit index
}

// oddParts splits odd n into three odd parts (or one if n == 1), as equal
// as possible, preferring symmetric splits (a == c).
func oddParts(n int) []int {
	if n == 1 {
		return []int{1}
	}
	best, bestKey := []int(nil), 1<<30
	for a := 1; a < n; a += 2 {
		for b := 1; a+b < n; b += 2 {
			c := n - a - b
			if c < 1 {
				continue
			}
			key := 4 * (max(a, b, c) - min(a, b, c))
			if a != c {
				key++
			}
			if key < bestKey {
				best, bestKey = []int{a, b, c}, key
			}
		}
	}
	return best
}

// fill visits the block with lower corner (x0, y0) and odd size w×h from
// its (mirrored) corner (0,0) to the opposite corner.
func (p *peanoGen) fill(x0, y0, w, h int, mx, my bool) {
	if w == 1 && h == 1 {
		p.order[y0*p.w+x0] = p.k
		p.k++
		return
	}
	cols, rows := oddParts(w), oddParts(h)
	// Block offsets in the unmirrored frame.
	xoff := make([]int, len(cols))
	for i := 1; i < len(cols); i++ {
		xoff[i] = xoff[i-1] + cols[i-1]
	}
	yoff := make([]int, len(rows))
	for i := 1; i < len(rows); i++ {
		yoff[i] = yoff[i-1] + rows[i-1]
	}
	for bc := range cols {
		for k := range rows {
			br := k
			if bc%2 == 1 {
				br = len(rows) - 1 - k
			}
			bx, by := xoff[bc], yoff[br]
			if mx { // mirror the whole block layout in x
				bx = w - bx - cols[bc]
			}
			if my {
				by = h - by - rows[br]
			}
			p.fill(x0+bx, y0+by, cols[bc], rows[br], mx != (br%2 == 1), my != (bc%2 == 1))
		}
	}
}
