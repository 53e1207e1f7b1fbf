// This file holds `loope pe`: write the table of an additive positional
// embedding, (N+1, D) with row 0 for CLS (zeros where the PE has none) and
// the patch rows in raster token order, as tensor "pe" (F64) of a
// safetensors file; for loope also "positions" (N), X = X_G + X_C.
//
//	loope pe -pe hilbert -dim 192 -grid 14 -out hilbert.safetensors
//	loope pe -pe loope -dim 192 -grid 14 -threecell-seed 1 -out loope.safetensors
//
// Learnable PEs are freshly initialised from -seed (the values NewViT gives
// any model with the same channels, patch, width and seed) or loaded with
// -ckpt. LOOPE runs in inference mode; without -image-file or -threecell-seed it
// uses X_C = 0.
package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/loope-go/loope"
)

func init() {
	commands["pe"] = command{"write the (N+1)×D table of an additive positional embedding", runPE}
	for _, n := range loope.FixedPENames {
		peTables[n] = fixedTable
	}
}

// peJob is what a table builder gets.
type peJob struct {
	cfg        loope.Config // model with the PE (square grid)
	h, w       int          // grid
	seed       uint64
	ckpt       string
	img        *loope.Tensor[float64] // (1, C, H, W) or nil
	positions  []float64              // set by loope: X (N)
	contextMsg string                 // set by builders that need to say what they used
}

// peTables maps each PE name `loope pe` can write to its builder; an
// attention-side PE joins with one entry here.
var peTables = map[string]func(j *peJob) ([]float64, error){
	"none":      modelTable,
	"learnable": modelTable,
	"fourier":   modelTable,
	"loope":     loopeTable,
}

// peFlags are the flags of loope pe.
type peFlags struct {
	name, grid, ckpt, imgPath, out    *string
	dim, patch, tcIndex, heads, depth *int
	seed                              *uint64
	tcSeed                            *int64
	peOpts                            *peOptions
}

// newPEFlags defines pe's flags on fs.
func newPEFlags(fs *flag.FlagSet) *peFlags {
	return &peFlags{
		name:    fs.String("pe", "hilbert", "positional embedding: "+strings.Join(slices.Sorted(maps.Keys(peTables)), ", ")),
		dim:     fs.Int("dim", 192, "width D"),
		grid:    fs.String("grid", "14", "patch grid G or HxW (HxW with H ≠ W: fixed tables only)"),
		patch:   fs.Int("patch", 16, "patch side P (learnable PEs; -image-file must be G·P pixels square)"),
		seed:    fs.Uint64("seed", 1, "initialisation seed of learnable PEs"),
		ckpt:    fs.String("ckpt", "", "take the model (PE, width, grid, patch, weights) from this checkpoint"),
		imgPath: fs.String("image-file", "", "loope: context image, an RGB PNG of exactly G·P × G·P pixels (values /255)"),
		tcSeed:  fs.Int64("threecell-seed", -1, "loope: context from Three-Cell image -threecell-index of the generator with this seed (cell = P pixels)"),
		tcIndex: fs.Int("threecell-index", 0, "loope: index of the Three-Cell image"),
		out:     fs.String("out", "", "output .safetensors file (required)"),
		heads:   fs.Int("heads", 3, "attention-side PEs: heads H (D must be divisible by H)"),
		depth:   fs.Int("depth", 1, "attention-side PEs: layers whose tables are written"),
		peOpts:  addPEFlags(fs),
	}
}

func runPE(args []string) error {
	fs := flag.NewFlagSet("pe", flag.ContinueOnError)
	f := newPEFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: loope pe -pe NAME -dim D -grid G[xW] [-seed S] [PE options] [-image-file PNG | -threecell-seed S] [-ckpt F] -out pe.safetensors\n\nflags:")
		fs.PrintDefaults()
	}
	if done, err := parseFlags(fs, args); done {
		return err
	}
	switch {
	case *f.out == "":
		return badUsage(fs, "-out is required")
	case *f.imgPath != "" && *f.tcSeed >= 0:
		return badUsage(fs, "give -image-file or -threecell-seed, not both")
	case *f.tcIndex < 0 || int64(*f.tcIndex) >= 1<<32:
		return badUsage(fs, "-threecell-index %d: need 0 ≤ index < 2³²", *f.tcIndex)
	}
	j := &peJob{seed: *f.seed, ckpt: *f.ckpt}
	if *f.ckpt != "" {
		if err := f.checkpointModel(fs, j); err != nil || validateOnly {
			return err
		}
	} else if err := f.flagModel(fs, j); err != nil || validateOnly {
		return err
	}
	build, ok := peTables[j.cfg.PE.Name]
	if !ok {
		return writeAttentionTables(j, *f.out)
	}
	if err := f.context(j); err != nil {
		return err
	}
	table, err := build(j)
	if err != nil {
		return err
	}
	return writeAdditiveTable(j, table, *f.out)
}

// checkpointModel takes the model of -ckpt into j; the model flags must
// not be given with it.
func (f *peFlags) checkpointModel(fs *flag.FlagSet, j *peJob) error {
	var clash []string
	fs.Visit(func(fl *flag.Flag) {
		if _, opt := peFlagUsers[fl.Name]; opt || slices.Contains([]string{"pe", "dim", "grid", "patch", "seed", "heads", "depth"}, fl.Name) {
			clash = append(clash, "-"+fl.Name)
		}
	})
	if len(clash) > 0 {
		return badUsage(fs, "-ckpt gives the model; drop %s", strings.Join(clash, ", "))
	}
	if validateOnly {
		return nil
	}
	m, _, err := loope.LoadCheckpoint[float64](*f.ckpt)
	if err != nil {
		return err
	}
	j.cfg = m.Cfg
	j.h, j.w = m.Cfg.Grid(), m.Cfg.Grid()
	return nil
}

// flagModel builds j's model config from the flags, checking each.
func (f *peFlags) flagModel(fs *flag.FlagSet, j *peJob) error {
	var err error
	if j.h, j.w, err = parseGrid(*f.grid, 1); err != nil {
		return badUsage(fs, "%v", err)
	}
	if j.h > loope.MaxGrid || j.w > loope.MaxGrid {
		return badUsage(fs, "-grid %s: each side must be ≤ %d", *f.grid, loope.MaxGrid)
	}
	if *f.dim < 1 || *f.dim > loope.MaxDim {
		return badUsage(fs, "-dim %d: need 1 ≤ D ≤ %d", *f.dim, loope.MaxDim)
	}
	if !slices.Contains(loope.PENames(), *f.name) {
		return badUsage(fs, "unknown -pe %q (valid: %s)", *f.name, strings.Join(loope.PENames(), ", "))
	}
	j.cfg = loope.Config{Image: j.h * *f.patch, Channels: 3, Patch: *f.patch, Dim: *f.dim, Depth: 1, Heads: 1, MLP: 1, Classes: 1,
		Eps: 1e-6, PE: loope.PEConfig{Name: *f.name}}
	if _, additive := peTables[*f.name]; !additive {
		j.cfg.Heads, j.cfg.Depth = *f.heads, *f.depth
	}
	if err := f.peOpts.apply(fs, &j.cfg.PE); err != nil {
		return badUsage(fs, "%v", err)
	}
	if (*f.imgPath != "" || *f.tcSeed >= 0) && *f.name != "loope" {
		return badUsage(fs, "-image-file and -threecell-seed apply to -pe loope only")
	}
	if *f.tcSeed >= 0 && j.h < 3 {
		return badUsage(fs, "-threecell-seed: Three-Cell needs a grid of at least 3, got %d", j.h)
	}
	if slices.Contains(loope.FixedPENames, *f.name) {
		// The grid does not change which widths and frequency sets a fixed PE accepts.
		if _, err := loope.FixedPE(*f.name, *f.dim, 1, 1, j.cfg.PE.Freqs); err != nil {
			return badUsage(fs, "%v", err)
		}
	} else {
		if j.h != j.w {
			return badUsage(fs, "-pe %s needs a square grid, got %dx%d (HxW: fixed tables only)", *f.name, j.h, j.w)
		}
		if *f.patch < 1 || *f.patch > loope.MaxImage {
			return badUsage(fs, "-patch %d: need 1 ≤ P ≤ %d", *f.patch, loope.MaxImage)
		}
		if err := j.cfg.Validate(); err != nil {
			return badUsage(fs, "%v", err)
		}
	}
	return nil
}

// context sets j's LOOPE context image from -image-file or
// -threecell-seed, if given.
func (f *peFlags) context(j *peJob) error {
	if (*f.imgPath != "" || *f.tcSeed >= 0) && j.cfg.PE.Name != "loope" {
		return fmt.Errorf("-image-file and -threecell-seed apply to -pe loope only")
	}
	var err error
	switch {
	case *f.imgPath != "":
		j.img, err = readPNG(*f.imgPath, j.cfg.Image)
		j.contextMsg = "image " + *f.imgPath
	case *f.tcSeed >= 0:
		if j.h < 3 {
			return fmt.Errorf("Three-Cell needs a grid of at least 3, got %d", j.h)
		}
		tc := loope.NewThreeCell(j.h, j.cfg.Patch, uint64(*f.tcSeed))
		j.img = loope.New[float64](1, 3, j.cfg.Image, j.cfg.Image)
		loope.RenderThreeCell(j.img.Data, tc.Fixed(*f.tcIndex), j.cfg.Patch)
		j.contextMsg = fmt.Sprintf("Three-Cell seed %d index %d", *f.tcSeed, *f.tcIndex)
	}
	if err != nil {
		return err
	}
	if j.img != nil && j.cfg.Channels != 3 {
		return fmt.Errorf("context images are RGB; the model has %d input channels", j.cfg.Channels)
	}
	return nil
}

// writeAdditiveTable writes the (N+1, D) table of j's PE (and LOOPE's
// positions) to out.
func writeAdditiveTable(j *peJob, table []float64, out string) error {
	f := loope.NewSafeFile()
	pc, _ := json.Marshal(j.cfg.PE)
	f.Metadata["pe"] = string(pc)
	f.Metadata["grid"] = fmt.Sprintf("%dx%d", j.h, j.w)
	f.Metadata["generator"] = "loope pe (github.com/loope-go/loope)"
	if j.contextMsg != "" {
		f.Metadata["context"] = j.contextMsg
	}
	if err := loope.PutFloat(f, "pe", table, j.h*j.w+1, j.cfg.Dim); err != nil {
		return err
	}
	if j.positions != nil {
		if err := loope.PutFloat(f, "positions", j.positions, j.h*j.w); err != nil {
			return err
		}
	}
	if err := f.WriteFile(out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: pe %s, (%d, %d)\n", out, j.cfg.PE.Name, j.h*j.w+1, j.cfg.Dim)
	return nil
}

// writeAttentionTables writes the tables of an attention-side or conv PE
// (rpe, irpe*, rope-*, cpvt, comrope-*, liere, string), which have no
// additive (N+1, D) table, under descriptive names, with the explanation in
// the metadata and on stderr.
func writeAttentionTables(j *peJob, out string) error {
	if j.h != j.w {
		return fmt.Errorf("PE %q needs a square grid, got %dx%d", j.cfg.PE.Name, j.h, j.w)
	}
	var tables map[string]*loope.Tensor[float64]
	var text string
	var err error
	if j.ckpt != "" {
		var m *loope.ViT[float64]
		if m, _, err = loope.LoadCheckpoint[float64](j.ckpt); err == nil {
			tables, text, err = loope.AttentionPETablesOf(m.PE)
		}
	} else {
		tables, text, err = loope.AttentionPETables(j.cfg, j.seed)
	}
	if err != nil {
		return fmt.Errorf("%w (additive tables: %s)", err, strings.Join(slices.Sorted(maps.Keys(peTables)), ", "))
	}
	f := loope.NewSafeFile()
	pc, _ := json.Marshal(j.cfg.PE)
	f.Metadata["pe"] = string(pc)
	f.Metadata["grid"] = fmt.Sprintf("%dx%d", j.h, j.w)
	f.Metadata["explanation"] = text
	f.Metadata["generator"] = "loope pe (github.com/loope-go/loope)"
	for _, name := range slices.Sorted(maps.Keys(tables)) {
		if err := loope.PutTensor(f, name, tables[name]); err != nil {
			return err
		}
	}
	if err := f.WriteFile(out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %s has no additive table; %s\n", out, j.cfg.PE.Name, text)
	return nil
}

// fixedTable is loope.FixedPE on the h×w grid.
func fixedTable(j *peJob) ([]float64, error) {
	return loope.FixedPE(j.cfg.PE.Name, j.cfg.Dim, j.h, j.w, j.cfg.PE.Freqs)
}

// modelTable is loope.PETable of the model from -ckpt or -seed, on the
// context image (zeros without one); it needs a square grid. A PE that
// adds nothing (none) gives zeros.
func modelTable(j *peJob) ([]float64, error) {
	m, err := peModel(j)
	if err != nil {
		return nil, err
	}
	img := cmp.Or(j.img, loope.New[float64](1, j.cfg.Channels, j.cfg.Image, j.cfg.Image))
	table, err := loope.PETable(m, img)
	if table == nil && err == nil {
		table = make([]float64, j.cfg.Tokens()*j.cfg.Dim)
	}
	return table, err
}

// loopeTable: with a context image, the module's PE of that image and its
// positions; without, X_C = 0, i.e. the Gilbert sinusoid under the CLS row.
func loopeTable(j *peJob) ([]float64, error) {
	if j.img != nil {
		m, err := peModel(j)
		if err != nil {
			return nil, err
		}
		x, err := loope.LoopePositions(m, &loope.Tape[float64]{NoGrad: true}, j.img)
		if err != nil {
			return nil, err
		}
		j.positions = x.Data
		return modelTable(j)
	}
	fmt.Fprintln(os.Stderr, "loope pe: no -image-file or -threecell-seed: using X_C = 0 (X = X_G, the static Gilbert order)")
	j.contextMsg = "none: X_C = 0"
	m, err := peModel(j)
	if err != nil {
		return nil, err
	}
	table, err := loope.FixedPE("hilbert", j.cfg.Dim, j.h, j.w, j.cfg.PE.Freqs)
	if err != nil {
		return nil, err
	}
	for _, p := range m.PE.Params() {
		if p.Name == "pos_embed.cls_token" {
			copy(table, p.T.Data)
		}
	}
	j.positions = loope.OrderPositions(loope.Gilbert(j.h, j.w))[1:]
	return table, nil
}

// peModel builds the model of j: from the checkpoint, or initialised from
// the seed.
func peModel(j *peJob) (*loope.ViT[float64], error) {
	if j.h != j.w {
		return nil, fmt.Errorf("PE %s needs a square grid, got %dx%d", j.cfg.PE.Name, j.h, j.w)
	}
	if j.ckpt != "" {
		m, _, err := loope.LoadCheckpoint[float64](j.ckpt)
		return m, err
	}
	return loope.NewViT[float64](j.cfg, j.seed)
}

// readPNG decodes an RGB PNG of exactly side×side pixels into (1, 3, side, side), values /255.
func readPNG(path string, side int) (*loope.Tensor[float64], error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	// The size comes from the header first, so a hostile PNG declaring a
	// huge image costs nothing.
	ic, err := png.DecodeConfig(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if ic.Width != side || ic.Height != side {
		return nil, fmt.Errorf("%s: image is %dx%d, want exactly %dx%d (grid × patch; no resizing)", path, ic.Width, ic.Height, side, side)
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	im, err := png.Decode(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b := im.Bounds()
	t := loope.New[float64](1, 3, side, side)
	for y := range side {
		for x := range side {
			r, g, bl, _ := im.At(b.Min.X+x, b.Min.Y+y).RGBA()
			for c, v := range [3]uint32{r, g, bl} {
				t.Data[c*side*side+y*side+x] = float64(v>>8) / 255
			}
		}
	}
	return t, nil
}
