// This file holds the benchmark figures, drawn with gonum.org/v1/plot and
// written as PNG: training curves (loss and accuracy against step, from the
// metrics Train emits) and the cosine-similarity maps of a PE table for the
// nine centre cells of the LOOPE supplement's Fig. 2 (docs/paper.md §8).

package loope

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// PlotTrainingCurves writes a PNG with two panels: loss and mean bit (or
// class) accuracy against step, each for the train metrics (averaged over
// a log interval) and the validation metrics in curve.
func PlotTrainingCurves(path, title string, curve []Metric) error {
	var trL, trA, vaL, vaA plotter.XYs
	for _, m := range curve {
		x := float64(m.Step)
		switch m.Split {
		case "train":
			trL, trA = append(trL, plotter.XY{X: x, Y: m.Loss}), append(trA, plotter.XY{X: x, Y: m.Acc})
		case "val":
			vaL, vaA = append(vaL, plotter.XY{X: x, Y: m.Loss}), append(vaA, plotter.XY{X: x, Y: m.Acc})
		}
	}
	panel := func(name string, tr, va plotter.XYs) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = name
		p.X.Label.Text = "step"
		p.Add(plotter.NewGrid())
		for _, s := range []struct {
			label string
			xy    plotter.XYs
			c     color.RGBA
		}{{"train", tr, color.RGBA{R: 31, G: 119, B: 180, A: 255}}, {"val", va, color.RGBA{R: 214, G: 39, B: 40, A: 255}}} {
			if len(s.xy) == 0 {
				continue
			}
			l, pts, err := plotter.NewLinePoints(s.xy)
			if err != nil {
				return nil, fmt.Errorf("loope: plot %s: %w", path, err)
			}
			l.Color, pts.Color = s.c, s.c
			pts.Radius = vg.Points(2)
			p.Add(l, pts)
			p.Legend.Add(s.label, l, pts)
		}
		p.Legend.Top = name == "accuracy"
		return p, nil
	}
	lp, err := panel("loss", trL, vaL)
	if err != nil {
		return err
	}
	ap, err := panel("accuracy", trA, vaA)
	if err != nil {
		return err
	}
	return writePlots(path, title, [][]*plot.Plot{{lp, ap}}, 10*vg.Inch, 4*vg.Inch)
}

// ThreeCellCentres returns the nine centre cells of supplement Fig. 2 on a
// g×g grid as a 3×3 layout: rows and columns 0, g/2 and g−1 (for g = 14:
// (0,0), (0,7), (0,13), (7,0), …, (13,13)).
func ThreeCellCentres(g int) [3][3]Cell {
	at := [3]int{0, g / 2, g - 1}
	var c [3][3]Cell
	for i := range 3 {
		for j := range 3 {
			c[i][j] = Cell{at[i], at[j]}
		}
	}
	return c
}

// PlotPEHeatmaps writes a PNG of 3×3 panels, one per centre cell of
// ThreeCellCentres(g): the g×g map of the cosine similarity of that
// patch's PE row to every patch's row, for patches (g², dim) in raster
// order (CLS excluded), drawn on one colour scale (a black–red–yellow–white
// "hot" map over the overall minimum to maximum, stated in the title) with
// row 0 at the top and the centre cell marked.
func PlotPEHeatmaps(path, title string, patches []float64, dim, g int) error {
	if g < 1 || dim < 1 || len(patches) != g*g*dim {
		panic(fmt.Sprintf("loope: PlotPEHeatmaps: %d values, want (%d·%d, %d)", len(patches), g, g, dim))
	}
	n := g * g
	sim := CosineSimilarity(patches, n, dim)
	centres := ThreeCellCentres(g)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, row := range centres {
		for _, c := range row {
			for _, v := range sim[(c.Row*g+c.Col)*n:][:n] {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if hi <= lo {
		hi = lo + 1e-9
	}
	plots := make([][]*plot.Plot, 3)
	for i, row := range centres {
		plots[i] = make([]*plot.Plot, 3)
		for j, c := range row {
			p := plot.New()
			p.Title.Text = fmt.Sprintf("(%d, %d)", c.Row, c.Col)
			hm := plotter.NewHeatMap(simGrid{sim: sim[(c.Row*g+c.Col)*n:][:n], g: g}, hotPalette(256))
			hm.Min, hm.Max = lo, hi
			p.Add(hm)
			mark, err := plotter.NewScatter(plotter.XYs{{X: float64(c.Col), Y: float64(g - 1 - c.Row)}})
			if err != nil {
				return fmt.Errorf("loope: plot %s: %w", path, err)
			}
			mark.Shape = draw.CrossGlyph{}
			mark.Color = color.RGBA{G: 200, B: 255, A: 255}
			mark.Radius = vg.Points(3)
			p.Add(mark)
			p.HideAxes()
			plots[i][j] = p
		}
	}
	title = fmt.Sprintf("%s; colour range [%.3f, %.3f]", title, lo, hi)
	return writePlots(path, title, plots, 9*vg.Inch, 9.4*vg.Inch)
}

// simGrid is one similarity map as a plotter.GridXYZ: column c, and grid
// row g−1−r at plot row r so that grid row 0 is drawn at the top.
type simGrid struct {
	sim []float64 // (g·g) raster order
	g   int
}

func (s simGrid) Dims() (c, r int)   { return s.g, s.g }
func (s simGrid) Z(c, r int) float64 { return s.sim[(s.g-1-r)*s.g+c] }
func (s simGrid) X(c int) float64    { return float64(c) }
func (s simGrid) Y(r int) float64    { return float64(r) }

// hotPalette is matplotlib's "hot" ramp (black → red → yellow → white),
// the colour map of supplement Fig. 2, sampled at n points.
type hotPalette int

func (h hotPalette) Colors() []color.Color {
	cs := make([]color.Color, int(h))
	for i := range cs {
		t := float64(i) / float64(max(int(h)-1, 1))
		ch := func(lo float64) uint8 { return uint8(255*math.Min(1, math.Max(0, (t-lo)*3)) + 0.5) }
		cs[i] = color.RGBA{R: ch(0), G: ch(1.0 / 3), B: ch(2.0 / 3), A: 255}
	}
	return cs
}

// writePlots draws a grid of plots under a title and writes the PNG
// atomically.
func writePlots(path, title string, plots [][]*plot.Plot, w, h vg.Length) error {
	img := vgimg.New(w, h)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	sty := draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, 12), Handler: plot.DefaultTextHandler,
		XAlign: draw.XCenter, YAlign: draw.YTop}
	dc.FillText(sty, vg.Point{X: w / 2, Y: h - vg.Points(4)}, title)
	tiles := draw.Tiles{Rows: len(plots), Cols: len(plots[0]), PadTop: vg.Points(24), PadX: vg.Points(12),
		PadY: vg.Points(12), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align(plots, tiles, dc)
	for i, row := range plots {
		for j, p := range row {
			p.Draw(canvases[i][j])
		}
	}
	return writeAtomic(path, func(wr io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(wr)
		return err
	})
}
