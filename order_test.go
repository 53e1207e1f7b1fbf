package loope

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// parseGrid reads a whitespace-separated integer grid (rows on lines).
func parseGrid(t *testing.T, s string) []int {
	t.Helper()
	var out []int
	for _, f := range strings.Fields(s) {
		v, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// gilbert14 is X_G for the 14×14 grid, 1-based, copied from docs/paper.md §2.2
// ("Reference test vector [V]"); docs/pe-zoo.md §6.1 prints the same grid 0-based.
const gilbert14 = `
  1   2  15  16  17  20  21 176 177 180 181 182 195 196
  4   3  14  13  18  19  22 175 178 179 184 183 194 193
  5   8   9  12  27  26  23 174 171 170 185 188 189 192
  6   7  10  11  28  25  24 173 172 169 186 187 190 191
 51  50  47  46  29  32  33 164 165 168 151 150 147 146
 52  49  48  45  30  31  34 163 166 167 152 149 148 145
 53  54  43  44  39  38  35 162 159 158 153 154 143 144
 56  55  42  41  40  37  36 161 160 157 156 155 142 141
 57  60  61  62  99 100 101 104 105 108 109 136 137 140
 58  59  64  63  98  97 102 103 106 107 110 135 138 139
 71  70  65  66  95  96  91  90 115 114 111 134 131 130
 72  69  68  67  94  93  92  89 116 113 112 133 132 129
 73  76  77  80  81  84  85  88 117 120 121 124 125 128
 74  75  78  79  82  83  86  87 118 119 122 123 126 127`

func TestGilbert14(t *testing.T) {
	want := parseGrid(t, gilbert14)
	got := Gilbert(14, 14)
	for i := range want {
		if got[i]+1 != want[i] {
			t.Fatalf("token %d (row %d col %d): got X_G %d, want %d", i, i/14, i%14, got[i]+1, want[i])
		}
	}
	// docs/pe-zoo.md §6.1: the 4×4 grid.
	if got, want := Gilbert(4, 4), []int{0, 1, 14, 15, 3, 2, 13, 12, 4, 7, 8, 11, 5, 6, 9, 10}; !slices.Equal(got, want) {
		t.Errorf("Gilbert(4,4) = %v, want %v", got, want)
	}
}

func TestFloorDiv(t *testing.T) {
	for a := -9; a <= 9; a++ {
		for _, b := range []int{-3, -2, 1, 2, 3} {
			want := int(math.Floor(float64(a) / float64(b)))
			if got := floorDiv(a, b); got != want {
				t.Errorf("floorDiv(%d,%d) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestGilbertEqualsClassicHilbert(t *testing.T) {
	// docs/pe-zoo.md §6.1/§6.2: on n = 2^k, gilbert2d equals Wikipedia d2xy with
	// x = column, y = row (the orientation of both functions here).
	for _, n := range []int{1, 2, 4, 8, 16, 32} {
		g := Gilbert(n, n)
		for d := range n * n {
			x, y := HilbertD2XY(n, d)
			if g[y*n+x] != d {
				t.Fatalf("n=%d: d2xy(%d) = (x %d, y %d) but Gilbert has index %d there", n, d, x, y, g[y*n+x])
			}
		}
		if c := HilbertCropped(n, n); !slices.Equal(c, g) {
			t.Errorf("n=%d: HilbertCropped differs from Gilbert", n)
		}
	}
}

// curveSteps returns the cells in visit order and counts the unit,
// diagonal and longer steps between consecutive cells.
func curveSteps(order []int, h, w int) (unit, diag, jump int) {
	pos := make([]int, len(order))
	for t, k := range order {
		pos[k] = t
	}
	for k := 1; k < len(pos); k++ {
		dr := absInt(pos[k]/w - pos[k-1]/w)
		dc := absInt(pos[k]%w - pos[k-1]%w)
		switch {
		case dr+dc == 1:
			unit++
		case dr == 1 && dc == 1:
			diag++
		default:
			jump++
		}
	}
	return
}

func isPerm(o []int) bool {
	seen := make([]bool, len(o))
	for _, v := range o {
		if v < 0 || v >= len(o) || seen[v] {
			return false
		}
		seen[v] = true
	}
	return true
}

type gridSize struct{ h, w int }

func testSizes() []gridSize {
	var s []gridSize
	for h := 1; h <= 20; h++ {
		for w := 1; w <= 20; w++ {
			s = append(s, gridSize{h, w})
		}
	}
	return append(s, gridSize{7, 30}, gridSize{30, 7}, gridSize{31, 5}, gridSize{64, 64},
		gridSize{100, 3}, gridSize{3, 100}, gridSize{63, 100}, gridSize{100, 63}, gridSize{24, 24}, gridSize{27, 27})
}

func TestGilbertSteps(t *testing.T) {
	// gilbert README "Odd Sizes": if the larger side is odd and the smaller
	// even, a single diagonal step cannot be avoided; otherwise all steps are
	// orthogonal. (Parity: the curve runs from (0,0) to the far end of the
	// major axis, two cells of the same checkerboard colour when the longer
	// side is odd, while a path over an even number of cells must end on the
	// other colour.) Measured exception, all sizes up to 20: a shorter side
	// of 2 takes the long case all the way down and ends at the opposite
	// corner instead, with no diagonal step.
	for _, s := range testSizes() {
		o := Gilbert(s.h, s.w)
		if !isPerm(o) {
			t.Fatalf("%dx%d: not a permutation", s.h, s.w)
		}
		if o[0] != 0 {
			t.Errorf("%dx%d: does not start at (0,0)", s.h, s.w)
		}
		long, short := max(s.h, s.w), min(s.h, s.w)
		wantDiag := 0
		if long%2 == 1 && short%2 == 0 && short > 2 {
			wantDiag = 1
		}
		_, diag, jump := curveSteps(o, s.h, s.w)
		if diag != wantDiag || jump != 0 {
			t.Errorf("%dx%d: %d diagonal steps and %d jumps, want %d and 0", s.h, s.w, diag, jump, wantDiag)
		}
	}
	// docs/paper.md §2.2: square grids end at (row 0, column n−1).
	for _, n := range []int{14, 15, 20, 24} {
		o := Gilbert(n, n)
		if o[n-1] != n*n-1 {
			t.Errorf("%d×%d: last cell is not (0, %d)", n, n, n-1)
		}
	}
}

func TestOrdersArePermutations(t *testing.T) {
	for _, name := range OrderNames {
		for _, s := range testSizes() {
			o, err := OrderByName(name, s.h, s.w)
			if err != nil {
				t.Fatal(err)
			}
			if len(o) != s.h*s.w || !isPerm(o) {
				t.Fatalf("%s %dx%d: not a permutation of 0..%d", name, s.h, s.w, s.h*s.w-1)
			}
		}
	}
	if _, err := OrderByName("spiral", 4, 4); err == nil || !strings.Contains(err.Error(), "gilbert") {
		t.Errorf("unknown order: err = %v, want a list of valid names", err)
	}
	if _, err := OrderByName("raster", 0, 4); err == nil {
		t.Error("0×4 grid: want an error")
	}
}

func TestSmallOrders(t *testing.T) {
	// 4×4 vectors from docs/pe-zoo.md §6.3 and §6.5.
	for _, tc := range []struct {
		name string
		want []int
	}{
		{"snake", []int{0, 1, 2, 3, 7, 6, 5, 4, 8, 9, 10, 11, 15, 14, 13, 12}},
		{"zigzag", []int{0, 1, 5, 6, 2, 4, 7, 12, 3, 8, 11, 13, 9, 10, 14, 15}},
		{"morton", []int{0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15}},
		{"raster", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
	} {
		got, _ := OrderByName(tc.name, 4, 4)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s 4×4 = %v, want %v", tc.name, got, tc.want)
		}
	}
	// docs/pe-zoo.md §6.5: first and last row of the 14×14 Morton ranks.
	m := Morton(14, 14)
	if want := []int{0, 1, 4, 5, 16, 17, 20, 21, 64, 65, 68, 69, 80, 81}; !slices.Equal(m[:14], want) {
		t.Errorf("Morton 14×14 row 0 = %v, want %v", m[:14], want)
	}
	if want := []int{146, 147, 150, 151, 154, 155, 158, 159, 186, 187, 190, 191, 194, 195}; !slices.Equal(m[182:], want) {
		t.Errorf("Morton 14×14 row 13 = %v, want %v", m[182:], want)
	}
	// Snake and zigzag are unit-step curves on every grid (zigzag moves
	// diagonally inside an anti-diagonal: check snake only, and zigzag's
	// diagonal structure).
	for _, s := range testSizes() {
		if _, d, j := curveSteps(Snake(s.h, s.w), s.h, s.w); d+j != 0 {
			t.Errorf("snake %dx%d: %d non-unit steps", s.h, s.w, d+j)
		}
		z := Zigzag(s.h, s.w)
		pos := make([]int, len(z))
		for tk, k := range z {
			pos[k] = tk
		}
		for k := 1; k < len(pos); k++ { // r+c never decreases, by at most 1
			ds := pos[k]/s.w + pos[k]%s.w - pos[k-1]/s.w - pos[k-1]%s.w
			if ds != 0 && ds != 1 {
				t.Fatalf("zigzag %dx%d: anti-diagonal jumps by %d at step %d", s.h, s.w, ds, k)
			}
		}
	}
}

// peanoRef is the 3^k Peano curve written literally from docs/pe-zoo.md §6.4 as a
// closed form over base-3 digits: cell (x, y) of the n×n grid, n = 3^k.
func peanoRef(n int) []int {
	o := make([]int, n*n)
	for y := range n {
		for x := range n {
			// Walk the digits from the top level down, carrying the mirrors.
			idx, mx, my := 0, false, false
			for s := n / 3; s >= 1; s /= 3 {
				bc, br := (x/s)%3, (y/s)%3
				if mx {
					bc = 2 - bc
				}
				if my {
					br = 2 - br
				}
				// Base 3×3 serpentine: up column 0, down column 1, up column 2.
				k := 3*bc + br
				if bc == 1 {
					k = 3*bc + 2 - br
				}
				idx = idx*9 + k
				mx = mx != (br == 1)
				my = my != (bc == 1)
			}
			o[y*n+x] = idx
		}
	}
	return o
}

func TestPeano(t *testing.T) {
	// docs/pe-zoo.md §6.4: 3×3 base, g[y][x] = 0 5 6 / 1 4 7 / 2 3 8.
	if got, want := Peano(3, 3), []int{0, 5, 6, 1, 4, 7, 2, 3, 8}; !slices.Equal(got, want) {
		t.Errorf("Peano(3,3) = %v, want %v", got, want)
	}
	for _, n := range []int{1, 3, 9, 27, 81} {
		if got, want := Peano(n, n), peanoRef(n); !slices.Equal(got, want) {
			t.Errorf("Peano(%d,%d) differs from the docs/pe-zoo.md §6.4 construction", n, n)
		}
	}
	for _, s := range testSizes() {
		o := Peano(s.h, s.w)
		if !isPerm(o) {
			t.Fatalf("Peano %dx%d: not a permutation", s.h, s.w)
		}
		_, diag, jump := curveSteps(o, s.h, s.w)
		if s.h%2 == 1 && s.w%2 == 1 {
			if diag+jump != 0 {
				t.Errorf("Peano %dx%d (odd×odd): %d non-unit steps", s.h, s.w, diag+jump)
			}
			continue
		}
		// Even sides: the restriction of the enclosing odd curve. Every
		// non-unit step must skip only cells of the dropped row/column.
		ho, wo := s.h|1, s.w|1
		full := Peano(ho, wo)
		pos := make([]int, len(full))
		for tk, k := range full {
			pos[k] = tk
		}
		prev := -1
		for k, tk := range pos {
			r, c := tk/wo, tk%wo
			if r >= s.h || c >= s.w {
				continue
			}
			if prev >= 0 {
				for j := prev + 1; j < k; j++ {
					if pos[j]/wo < s.h && pos[j]%wo < s.w {
						t.Fatalf("Peano %dx%d: restriction skips a kept cell", s.h, s.w)
					}
				}
			}
			prev = k
		}
	}
	_, _, jumps := curveSteps(Peano(14, 14), 14, 14)
	t.Logf("Peano 14×14: %d jumps (restriction of the 15×15 curve)", jumps)
}

func ExampleGilbert() {
	o := Gilbert(4, 4)
	for r := range 4 {
		fmt.Println(o[r*4 : r*4+4])
	}
	// Output:
	// [0 1 14 15]
	// [3 2 13 12]
	// [4 7 8 11]
	// [5 6 9 10]
}
