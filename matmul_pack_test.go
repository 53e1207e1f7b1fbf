package loope

import "testing"

// TestPackPanels checks every path of packPanels (six contiguous rows,
// rows four at a time, the 16-, 8- and 6-wide k-runs, short edge panels,
// the general copy) against its definition: element (i, p) at
// src[i*rs+p*cs] goes to dst[(i/w)*w*depth + p*w + i%w], the last panel
// zero-padded, for row-major (cs = 1) and column-major (rs = 1) sources.
func TestPackPanels(t *testing.T) {
	for _, w := range []int{4, 6, 8, 16, 12} {
		for _, rows := range []int{1, 3, w - 1, w, w + 5, 3 * w} {
			for _, rowMajor := range []bool{true, false} {
				const depth = 7
				rs, cs := depth, 1
				if !rowMajor {
					rs, cs = 1, rows
				}
				src := make([]float64, rows*depth)
				for i := range src {
					src[i] = float64(i + 1)
				}
				panels := (rows + w - 1) / w
				dst := make([]float64, panels*w*depth)
				for i := range dst {
					dst[i] = -1 // the padding must be cleared
				}
				packPanels(dst, src, rows, depth, w, rs, cs)
				for i := range panels * w {
					for p := range depth {
						want := 0.0
						if i < rows {
							want = src[i*rs+p*cs]
						}
						if got := dst[(i/w)*w*depth+p*w+i%w]; got != want {
							t.Fatalf("w %d rows %d row-major %v: (%d, %d) packed as %v, want %v", w, rows, rowMajor, i, p, got, want)
						}
					}
				}
			}
		}
	}
}
