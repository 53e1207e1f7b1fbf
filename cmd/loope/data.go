// This file holds `loope data`: write Three-Cell samples (cells and labels)
// to a file, and print the generator's exact label priors.
//
//	loope data -grid 14 -n 10000 -data-seed 0 -out threecell.csv
//
// writes the fixed dataset (stream 0, indices 0..n−1; the paper's split is
// train [0, 8000), val [8000, 9000), test [9000, 10000)) in well under a
// second, and prints one line of priors to stderr. A .safetensors output
// holds cells (N, 3, 2) I64, labels (N, 6) U8 and, with -images, images
// (N, H, W, 3) U8 (1.5 GB for the paper's 10,000 224×224 images, built in
// memory).

package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/loope-go/loope"
)

func init() {
	commands["data"] = command{summary: "write Three-Cell samples (cells, labels) to .csv or .safetensors", run: runData}
}

// Limits of loope data: the grid (the priors' cost grows as G⁶) and the
// bytes of -images, built in memory (the paper's 10,000 224² images are
// 1.5 GB).
const (
	maxDataGrid   = 32
	maxImageBytes = 8 << 30
)

func runData(args []string) error {
	fs := flag.NewFlagSet("data", flag.ContinueOnError)
	grid := fs.Int("grid", loope.ThreeCellGrid, "grid side G (≥ 3)")
	n := fs.Int("n", loope.ThreeCellN, "number of samples: indices 0..n−1 of the fixed dataset (stream 0)")
	seed := fs.Uint64("data-seed", 0, "Three-Cell dataset seed (as threecell -data-seed)")
	cell := fs.Int("cell", loope.ThreeCellCellPx, "pixels per cell side, for -images")
	images := fs.Bool("images", false, "also write images (N, H, W, 3) uint8 (.safetensors only)")
	out := fs.String("out", "", "output file: .csv or .safetensors")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: loope data [flags] -out file.csv|file.safetensors\n\nflags:")
		fs.PrintDefaults()
	}
	if done, err := parseFlags(fs, args); done {
		return err
	}
	bad := func(format string, a ...any) error { return badUsage(fs, format, a...) }
	switch {
	case *grid < 3 || *grid > maxDataGrid:
		return bad("-grid %d: need 3 ≤ G ≤ %d (the exact priors enumerate O(G⁶) cases: G 30 takes 15 s)", *grid, maxDataGrid)
	case *n <= 0 || int64(*n) > 1<<32:
		return bad("-n %d: need 0 < n ≤ 2³²", *n)
	case *cell < 1 || *grid**cell > loope.MaxImage:
		return bad("-cell %d: need at least 1 pixel and images of at most %d pixels a side (grid·cell)", *cell, loope.MaxImage)
	case *images && int64(*n)*int64(*grid**cell)*int64(*grid**cell)*3 > maxImageBytes:
		return bad("-images: %d images of %d×%d×3 exceed %d GB", *n, *grid**cell, *grid**cell, maxImageBytes>>30)
	case *out == "":
		return bad("-out is required")
	}
	ext := strings.ToLower(filepath.Ext(*out))
	switch ext {
	case ".csv":
		if *images {
			return bad("-images needs a .safetensors output, not %s", *out)
		}
	case ".safetensors":
	default:
		return bad("-out %s: unknown extension %q, want .csv or .safetensors", *out, ext)
	}

	if validateOnly {
		return nil
	}
	p := loope.ThreeCellPriors(*grid)
	fmt.Fprintf(os.Stderr, "priors G=%d P(bit=1) %.4f %.4f %.4f %.4f %.4f %.4f; best constant predictor %v\n",
		*grid, p[0], p[1], p[2], p[3], p[4], p[5], loope.ThreeCellPriorAcc(*grid))

	tc := loope.NewThreeCell(*grid, *cell, *seed)
	if ext == ".csv" {
		return loope.WriteFileAtomic(*out, func(w io.Writer) error {
			bw := bufio.NewWriter(w)
			if err := writeThreeCellCSV(bw, tc, *n); err != nil {
				return err
			}
			return bw.Flush()
		})
	}
	f, err := threeCellSafeFile(tc, *n, *images)
	if err != nil {
		return err
	}
	f.Metadata["priors"] = fmt.Sprintf("%.17g,%.17g,%.17g,%.17g,%.17g,%.17g", p[0], p[1], p[2], p[3], p[4], p[5])
	return f.WriteFile(*out)
}

// threeCellSafeFile holds samples 0..n−1 of the fixed dataset as tensors
// cells (N, 3, 2) I64 (red, green, blue; row, col), labels (N, 6) U8 and,
// with images, images (N, H, W, 3) U8, plus metadata naming the generator.
func threeCellSafeFile(tc *loope.ThreeCell, n int, images bool) (*loope.SafeFile, error) {
	side := tc.Side()
	cells := make([]int64, 0, n*6)
	labels := make([]uint8, 0, n*6)
	var img []uint8
	if images {
		img = make([]uint8, n*side*side*3)
	}
	for i := range n {
		s := tc.Fixed(i)
		for _, c := range [3]loope.Cell{s.Red, s.Green, s.Blue} {
			cells = append(cells, int64(c.Row), int64(c.Col))
		}
		labels = append(labels, s.Labels[:]...)
		if images {
			s.RenderRGB(img[i*side*side*3:(i+1)*side*side*3], tc.CellPx)
		}
	}
	f := loope.NewSafeFile()
	f.Metadata["format"] = "loope threecell"
	f.Metadata["grid"] = strconv.Itoa(tc.Grid())
	f.Metadata["cell_px"] = strconv.Itoa(tc.CellPx)
	f.Metadata["seed"] = strconv.FormatUint(tc.Seed, 10)
	f.Metadata["stream"] = strconv.Itoa(loope.ThreeCellFixedStream)
	f.Metadata["max_attempts"] = strconv.Itoa(tc.MaxAttempts)
	f.Metadata["labels"] = "d_RG>d_RB,d_RB>d_RG,det_RGB>0,A_RG>A_RB,A_RB>A_RG,x_s>G-1&y_s>G-1"
	err := loope.PutInt64(f, "cells", cells, n, 3, 2)
	if err == nil {
		err = loope.PutUint8(f, "labels", labels, n, loope.ThreeCellBits)
	}
	if err == nil && images {
		// Put keeps the slice without the copy PutUint8 makes.
		err = f.Put("images", loope.SafeTensor{DType: "U8", Shape: []int{n, side, side, 3}, Data: img})
	}
	return f, err
}

// writeThreeCellCSV writes samples 0..n−1 of the fixed dataset, one per row.
func writeThreeCellCSV(w *bufio.Writer, tc *loope.ThreeCell, n int) error {
	if _, err := w.WriteString("r_row,r_col,g_row,g_col,b_row,b_col,b0,b1,b2,b3,b4,b5\n"); err != nil {
		return err
	}
	var line []byte
	for i := range n {
		s := tc.Fixed(i)
		line = line[:0]
		for _, c := range [3]loope.Cell{s.Red, s.Green, s.Blue} {
			line = strconv.AppendInt(line, int64(c.Row), 10)
			line = append(line, ',')
			line = strconv.AppendInt(line, int64(c.Col), 10)
			line = append(line, ',')
		}
		for k, v := range s.Labels {
			line = append(line, '0'+v)
			if k < len(s.Labels)-1 {
				line = append(line, ',')
			}
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}
