// This file holds the packing of the GEMM (docs/gemm.md §4): the panels
// the micro-kernels read, and the pooled packing buffers.

package loope

import "sync"

// packPanels copies a rows x depth block of a matrix, element (i, p) at
// src[i*rs+p*cs], into dst as ceil(rows/w) panels of w rows each, k-major:
// element (i, p) goes to dst[(i/w)*w*depth + p*w + i%w]. The last panel is
// zero-padded to w rows. One of rs, cs is 1.
func packPanels[T Float](dst, src []T, rows, depth, w, rs, cs int) {
	for i0 := 0; i0 < rows; i0 += w {
		d := dst[i0*depth : (i0+w)*depth]
		h := min(w, rows-i0)
		if h < w {
			clear(d)
		}
		s := src[i0*rs:]
		switch {
		case cs == 1 && w == 6 && h == 6: // six contiguous rows: interleave them
			pack6(d, s[:depth], s[rs:rs+depth], s[2*rs:2*rs+depth], s[3*rs:3*rs+depth], s[4*rs:4*rs+depth], s[5*rs:5*rs+depth])
		case cs == 1: // each row is contiguous: interleave four at a time
			r := 0
			for ; r+4 <= h; r += 4 {
				pack4(d[r:], w, s[r*rs:r*rs+depth], s[(r+1)*rs:(r+1)*rs+depth], s[(r+2)*rs:(r+2)*rs+depth], s[(r+3)*rs:(r+3)*rs+depth])
			}
			for ; r < h; r++ {
				row := s[r*rs : r*rs+depth]
				dr := d[r:]
				for p, v := range row {
					dr[p*w] = v
				}
			}
		case w == 16 && h == 16: // each k step is a contiguous run of w values
			for p := range depth {
				*(*[16]T)(d[p*16:]) = [16]T(s[p*cs:])
			}
		case w == 8 && h == 8:
			for p := range depth {
				*(*[8]T)(d[p*8:]) = [8]T(s[p*cs:])
			}
		case w == 6 && h == 6:
			for p := range depth {
				*(*[6]T)(d[p*6:]) = [6]T(s[p*cs:])
			}
		case h <= 8: // a short edge panel (the m % mr rows): a loop beats a copy call per k
			for p := range depth {
				for r, v := range s[p*cs : p*cs+h] {
					d[p*w+r] = v
				}
			}
		default:
			for p := range depth {
				copy(d[p*w:p*w+h], s[p*cs:p*cs+h])
			}
		}
	}
}

// pack6 interleaves six rows of equal length: d[6p+i] = si[p].
func pack6[T Float](d, s0, s1, s2, s3, s4, s5 []T) {
	n := len(s0)
	s1, s2, s3, s4, s5 = s1[:n], s2[:n], s3[:n], s4[:n], s5[:n]
	d = d[:6*n]
	for p := range n {
		q := d[6*p : 6*p+6 : 6*p+6]
		q[0], q[1], q[2], q[3], q[4], q[5] = s0[p], s1[p], s2[p], s3[p], s4[p], s5[p]
	}
}

// pack4 writes four rows of equal length into d with stride w: d[w*p+i] = si[p].
func pack4[T Float](d []T, w int, s0, s1, s2, s3 []T) {
	n := len(s0)
	s1, s2, s3 = s1[:n], s2[:n], s3[:n]
	for p := range n {
		q := d[w*p : w*p+4 : w*p+4]
		q[0], q[1], q[2], q[3] = s0[p], s1[p], s2[p], s3[p]
	}
}

// gemmBuf holds one goroutine's packing buffers. They are pooled, so a
// steady state allocates nothing; packing overwrites every element used.
type gemmBuf[T Float] struct{ a, b, tile []T }

func growBuf[T Float](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, n)
	}
	return (*s)[:n]
}

var gemmBufPools [2]sync.Pool // [0] float32, [1] float64

func getGemmBuf[T Float]() *gemmBuf[T] {
	if i := poolIndex[T](); i >= 0 {
		if b, ok := gemmBufPools[i].Get().(*gemmBuf[T]); ok {
			return b
		}
	}
	return new(gemmBuf[T])
}

func putGemmBuf[T Float](b *gemmBuf[T]) {
	if i := poolIndex[T](); i >= 0 {
		gemmBufPools[i].Put(b)
	}
}
