// Subcommand pesi prints the PESI metrics (M_U, M_D, A_SU; LOOPE
// arXiv 2504.14386 §5) of a fixed positional embedding, or with -all a
// Table-5-style Markdown table of every fixed PE beside the paper's values:
//
//	loope pesi -pe hilbert -dim 768 -grid 14
//	M_U 1.9674  M_D 1.2900  A_SU 0.0939
//
// Takes well under a second for D 768 on 14×14. With -in it scores a PE
// table read from a safetensors file instead (e.g. a trained learnable PE):
//
//	loope pesi -in model.safetensors -tensor pos_embed
//
// The tensor is (h·w, D) or (h·w+1, D) with CLS first, leading 1-axes
// ignored; without -grid the square grid is inferred from the row count.
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/loope-go/loope"
)

func init() {
	commands["pesi"] = command{summary: "PESI metrics (M_U, M_D, A_SU) of fixed positional embeddings", run: runPESI}
}

// paperPESI holds the reference values shown by -all at D 768, 14×14,
// N = 60, Vaswani frequencies: docs/paper.md §7 Table 5 and §5.5.
var paperPESI = map[string]string{
	"sin1d":        "1.9567 / 1.4905 / 0.1243 (Table 5, 1D Sinusoid)",
	"hilbert":      "1.9674 / 1.2900 / 0.0939 (Table 5, LOOPE (ours); its Hilbert [11] row 1.9670 / 1.2897 / 0.0945 matches no fixed order, docs/paper.md §5.5)",
	"hilbert-crop": "1.9641 / 1.2839 / 0.1063 (docs/paper.md §5.5, 16×16 Hilbert cropped)",
}

// maxDirections bounds -directions (buckets of δ = 360°/N; 36,000 is 0.01°).
const maxDirections = 36000

func runPESI(args []string) error { return pesiMain(args, os.Stdout, os.Stderr) }

// pesiMain is runPESI with the output streams as parameters (for tests).
func pesiMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pesi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pe := fs.String("pe", "hilbert", "fixed PE: "+strings.Join(loope.FixedPENames, ", ")+" (gilbert = hilbert)")
	dim := fs.Int("dim", 768, "embedding dimension D (even; multiple of 4 for sincos2d)")
	grid := fs.String("grid", "14", "patch grid: G (square) or HxW (rows x columns)")
	dirs := fs.Int("directions", 60, "direction buckets N for M_D (δ = 360°/N)")
	freqs := fs.String("freqs", "vaswani", "frequency set: "+strings.Join(loope.FreqSetNames, ", "))
	all := fs.Bool("all", false, "print a Markdown table for every fixed PE")
	in := fs.String("in", "", "score the PE table in this safetensors file instead of a fixed PE")
	tensor := fs.String("tensor", "", "with -in: tensor name (default: the file's only tensor)")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	usageErr := func(format string, a ...any) error { return badUsage(fs, format, a...) }
	h, w, err := parseGrid(*grid, 2)
	if err != nil {
		return usageErr("%v", err)
	}
	if h > loope.MaxGrid || w > loope.MaxGrid {
		return usageErr("-grid %s: each side must be ≤ %d", *grid, loope.MaxGrid)
	}
	if *dirs < 1 || *dirs > maxDirections {
		return usageErr("-directions %d must be in [1, %d]", *dirs, maxDirections)
	}
	if *in != "" {
		for _, f := range []string{"pe", "all", "dim", "freqs"} {
			if set[f] {
				return usageErr("-in and -%s do not go together", f)
			}
		}
		if !set["grid"] {
			h, w = 0, 0 // infer from the table
		}
		if validateOnly {
			return nil
		}
		return pesiFile(stdout, *in, *tensor, h, w, *dirs)
	} else if set["tensor"] {
		return usageErr("-tensor needs -in")
	}
	if *dim < 2 || *dim%2 != 0 || *dim > loope.MaxDim {
		return usageErr("-dim %d must be even and in [2, %d]", *dim, loope.MaxDim)
	}
	if _, err := loope.FreqSet(*freqs, *dim); err != nil {
		return usageErr("%v", err)
	}
	names := []string{*pe}
	if *all {
		names = loope.FixedPENames
	} else if !slices.Contains(loope.FixedPENames, *pe) && *pe != "gilbert" {
		return usageErr("unknown -pe %q (valid: %s)", *pe, strings.Join(loope.FixedPENames, ", "))
	}
	if validateOnly {
		return nil
	}
	if err := printFixedPESI(stdout, names, *all, *dim, h, w, *dirs, *freqs); err != nil {
		return usageErr("%v", err)
	}
	return nil
}

// printFixedPESI prints PESI of each fixed PE of names on the h×w grid:
// one line, or with all a Markdown table (with the paper's Table 5 values
// beside it at the paper's setting). A PE that cannot be built at dim is
// an error, or with all a row of dashes.
func printFixedPESI(stdout io.Writer, names []string, all bool, dim, h, w, dirs int, freqs string) error {
	paper := all && dim == 768 && h == 14 && w == 14 && dirs == 60 && freqs == "vaswani"
	if all {
		fmt.Fprintf(stdout, "PESI, D %d, grid %dx%d, N = %d directions, frequencies %s\n\n", dim, h, w, dirs, freqs)
		if paper {
			fmt.Fprintln(stdout, "| PE | M_U | M_D | A_SU | reference M_U / M_D / A_SU |")
			fmt.Fprintln(stdout, "|---|---|---|---|---|")
		} else {
			fmt.Fprintln(stdout, "| PE | M_U | M_D | A_SU |")
			fmt.Fprintln(stdout, "|---|---|---|---|")
		}
	}
	for _, name := range names {
		table, err := loope.FixedPE(name, dim, h, w, freqs)
		if err != nil {
			if all { // e.g. sincos2d needs D divisible by 4: mark that row
				fmt.Fprintf(stdout, "| %s | – | – | – |\n", name)
				continue
			}
			return err
		}
		s := loope.PESI(loope.DropCLS(table, dim), dim, h, w, dirs)
		switch {
		case !all:
			fmt.Fprintf(stdout, "M_U %.4f  M_D %.4f  A_SU %.4f\n", s.MU, s.MD, s.ASU)
		case paper:
			ref := paperPESI[name]
			if ref == "" {
				ref = "–"
			}
			fmt.Fprintf(stdout, "| %s | %.4f | %.4f | %.4f | %s |\n", name, s.MU, s.MD, s.ASU, ref)
		default:
			fmt.Fprintf(stdout, "| %s | %.4f | %.4f | %.4f |\n", name, s.MU, s.MD, s.ASU)
		}
	}
	return nil
}

// pesiFile scores the PE table called name (or the only tensor) of the
// safetensors file at path on the h×w grid (0×0: infer a square grid).
func pesiFile(stdout io.Writer, path, name string, h, w, dirs int) error {
	f, err := loope.ReadSafeFile(path)
	if err != nil {
		return err
	}
	if name == "" {
		if len(f.Names) != 1 {
			return fmt.Errorf("%s holds %d tensors (%s): choose one with -tensor", path, len(f.Names), strings.Join(f.Names, ", "))
		}
		name = f.Names[0]
	}
	data, shape, err := loope.GetFloat[float64](f, name)
	if err != nil {
		return err
	}
	for len(shape) > 2 && shape[0] == 1 {
		shape = shape[1:]
	}
	if len(shape) != 2 || shape[0] < 1 || shape[1] < 1 {
		return fmt.Errorf("tensor %q has shape %v, want (rows, D) with leading 1s allowed", name, shape)
	}
	rows, dim := shape[0], shape[1]
	if rows > loope.MaxGrid*loope.MaxGrid+1 {
		// PESI holds the rows×rows cosine similarities.
		return fmt.Errorf("tensor %q has %d rows, more than a %d×%d grid (+ CLS)", name, rows, loope.MaxGrid, loope.MaxGrid)
	}
	if h == 0 {
		if g := int(math.Round(math.Sqrt(float64(rows)))); g*g == rows && g >= 2 {
			h, w = g, g
		} else if g := int(math.Round(math.Sqrt(float64(rows - 1)))); g*g == rows-1 && g >= 2 {
			h, w = g, g
		} else {
			return fmt.Errorf("tensor %q has %d rows, neither G² nor G²+1 with G ≥ 2: give -grid", name, rows)
		}
	}
	switch rows {
	case h * w:
	case h*w + 1:
		data = loope.DropCLS(data, dim)
	default:
		return fmt.Errorf("tensor %q has %d rows, grid %dx%d needs %d or %d (CLS first)", name, rows, h, w, h*w, h*w+1)
	}
	if err := checkPETable(data, dim, rows-h*w); err != nil {
		return fmt.Errorf("tensor %q: %w", name, err)
	}
	s := loope.PESI(data, dim, h, w, dirs)
	fmt.Fprintf(stdout, "M_U %.4f  M_D %.4f  A_SU %.4f\n", s.MU, s.MD, s.ASU)
	return nil
}

// checkPETable returns an error naming the first row of the PE table
// data (rows of dim values) that holds a NaN or ±Inf or is all zeros (its
// cosine similarity is undefined). first is the row number of data[0] in
// the file (1 when a CLS row was dropped).
func checkPETable(data []float64, dim, first int) error {
	for r := 0; r*dim < len(data); r++ {
		row, zero := data[r*dim:(r+1)*dim], true
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("row %d holds %v at column %d (want finite values)", first+r, v, j)
			}
			zero = zero && v == 0
		}
		if zero {
			return fmt.Errorf("row %d is all zeros (its cosine similarity is undefined)", first+r)
		}
	}
	return nil
}
