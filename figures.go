// This file holds the benchmark figures, drawn with gonum.org/v1/plot and
// written as PNG: training curves (loss and accuracy against step, from the
// metrics Train emits), the cosine-similarity maps of a PE table for the
// nine centre cells of the LOOPE supplement's Fig. 2 (docs/paper.md §8),
// and the two comparisons of a benchmark: Table 4 as grouped bars and the
// validation accuracy of every row against images seen.

package loope

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strconv"

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
		legendRoom(p)
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

// legendRoom puts p's legend at the top right and raises the top of the
// y axis by a quarter of its span, so the legend sits above the data.
func legendRoom(p *plot.Plot) {
	p.Legend.Top = true
	if span := p.Y.Max - p.Y.Min; span > 0 {
		p.Y.Max += span / 4
	}
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
	bar := plot.New()
	bar.Title.Text = "cosine"
	bar.HideX()
	bar.Y.Padding = 0
	bar.Add(plotter.NewHeatMap(colourBar{lo, hi}, hotPalette(256)))
	return writePlotsBar(path, title, plots, bar, 10*vg.Inch, 9.4*vg.Inch)
}

// colourBar is a colour scale from lo to hi as a one-column heat map.
type colourBar struct{ lo, hi float64 }

func (b colourBar) Dims() (c, r int)   { return 1, 256 }
func (b colourBar) Z(c, r int) float64 { return b.Y(r) }
func (b colourBar) X(c int) float64    { return 0 }
func (b colourBar) Y(r int) float64    { return b.lo + (float64(r)+0.5)*(b.hi-b.lo)/256 }

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
	return writePlotsBar(path, title, plots, nil, w, h)
}

// writePlotsBar is writePlots with a narrow plot (a colour bar) to the
// right of the grid, if bar is not nil.
func writePlotsBar(path, title string, plots [][]*plot.Plot, bar *plot.Plot, w, h vg.Length) error {
	img := vgimg.New(w, h)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	sty := draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, 12), Handler: plot.DefaultTextHandler,
		XAlign: draw.XCenter, YAlign: draw.YTop}
	dc.FillText(sty, vg.Point{X: w / 2, Y: h - vg.Points(4)}, title)
	grid := dc
	if bar != nil {
		const barW = vg.Inch
		grid = draw.Crop(dc, 0, -barW, 0, 0)
		bar.Draw(draw.Crop(dc, w-barW+vg.Points(8), -vg.Points(4), vg.Points(40), -vg.Points(60)))
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: len(plots[0]), PadTop: vg.Points(24), PadX: vg.Points(12),
		PadY: vg.Points(12), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	canvases := plot.Align(plots, tiles, grid)
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

// groupColours are the colours of Table 4's five columns in the figures.
var groupColours = [5]color.RGBA{
	{R: 31, G: 119, B: 180, A: 255}, {R: 255, G: 127, B: 14, A: 255}, {R: 44, G: 160, B: 44, A: 255},
	{R: 214, G: 39, B: 40, A: 255}, {R: 90, G: 90, B: 90, A: 255},
}

// PlotTable4 writes Table 4 of a benchmark as grouped bars: one group per
// row (PE or reference model) with a bar per column (Distance,
// Orientation, Area, Vector Sum, Average: mean test accuracy in %), a
// whisker of ± one sample std when a row has several seeds, and a dashed
// line per column at the best constant predictor (priors).
func PlotTable4(path, title string, rows []ThreeCellSummary, priors ThreeCellAcc) error {
	if len(rows) == 0 {
		return fmt.Errorf("loope: PlotTable4 %s: no rows", path)
	}
	p := plot.New()
	p.Y.Label.Text = "test accuracy (%)"
	p.X.Label.Text = "dashed: priors (best constant predictor) per column; whiskers: ± one sample std over seeds"
	p.Add(plotter.NewGrid())
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = fmt.Sprintf("%s (n=%d)", r.Row, r.N)
	}
	p.NominalX(names...)
	const step = 0.16 // bar spacing in x units; a group spans 5·step
	figW := max(8, 1.6*float64(len(rows)))
	barW := vg.Length(0.9*step*(figW-1.2)/float64(len(rows))) * vg.Inch // one x unit is about (figW−1.2)/rows inches
	for k := range threeCellColumns {
		vals, errs := make(plotter.Values, len(rows)), make(plotter.YErrors, len(rows))
		pts := make(plotter.XYs, len(rows))
		for i, r := range rows {
			vals[i] = 100 * accCols(r.Mean)[k]
			sd := 100 * accCols(r.Std)[k]
			errs[i] = struct{ Low, High float64 }{sd, sd}
			pts[i] = plotter.XY{X: float64(i) + (float64(k)-2)*step, Y: vals[i]}
		}
		bars, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return fmt.Errorf("loope: plot %s: %w", path, err)
		}
		bars.XMin = (float64(k) - 2) * step
		bars.Color, bars.LineStyle.Width = groupColours[k], 0
		p.Add(bars)
		p.Legend.Add(threeCellColumns[k], bars)
		if slices.ContainsFunc(rows, func(r ThreeCellSummary) bool { return r.N > 1 }) {
			eb, err := plotter.NewYErrorBars(struct {
				plotter.XYs
				plotter.YErrors
			}{pts, errs})
			if err != nil {
				return fmt.Errorf("loope: plot %s: %w", path, err)
			}
			eb.LineStyle.Width = vg.Points(1)
			p.Add(eb)
		}
		prior := 100 * accCols(priors)[k]
		line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: prior}, {X: float64(len(rows)) - 0.5, Y: prior}})
		if err != nil {
			return fmt.Errorf("loope: plot %s: %w", path, err)
		}
		line.Color, line.Dashes, line.Width = groupColours[k], []vg.Length{vg.Points(4), vg.Points(3)}, vg.Points(1)
		p.Add(line)
	}
	// The legend goes in headroom above 100 %, where no bar reaches; the
	// ticks stop at 100.
	p.Legend.Top, p.Legend.Left = true, true
	p.Y.Min, p.Y.Max = 0, 135
	var ticks []plot.Tick
	for v := 0; v <= 100; v += 10 {
		ticks = append(ticks, plot.Tick{Value: float64(v), Label: strconv.Itoa(v)})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	return writePlots(path, title, [][]*plot.Plot{{p}}, vg.Length(figW)*vg.Inch, 5.5*vg.Inch)
}

// PlotValCurves writes the validation accuracy (mean of the six bits, %)
// of every row against images seen (step × batch): the mean over the
// row's seeds as a line and, with several seeds, their minimum to maximum
// as a band, so that the speed of learning can be compared.
func PlotValCurves(path, title string, runs []ThreeCellRun, rows []string, batch int) error {
	p := plot.New()
	p.X.Label.Text = "images seen"
	p.Y.Label.Text = "validation accuracy, mean of the 6 bits (%)"
	p.Add(plotter.NewGrid())
	drawn := 0
	for ri, row := range rows {
		var curves [][]Metric
		for _, r := range runs {
			if r.Row() == row {
				var val []Metric
				for _, m := range r.Curve {
					if m.Split == "val" {
						val = append(val, m)
					}
				}
				curves = append(curves, val)
			}
		}
		if len(curves) == 0 || len(curves[0]) == 0 {
			continue
		}
		n := len(curves[0])
		for _, c := range curves {
			n = min(n, len(c))
		}
		mean, lo, hi := make(plotter.XYs, n), make(plotter.XYs, n), make(plotter.XYs, n)
		for i := range n {
			x := float64(curves[0][i].Step * batch)
			var s float64
			l, h := math.Inf(1), math.Inf(-1)
			for _, c := range curves {
				v := 100 * c[i].Acc
				s += v
				l, h = min(l, v), max(h, v)
			}
			mean[i], lo[i], hi[i] = plotter.XY{X: x, Y: s / float64(len(curves))}, plotter.XY{X: x, Y: l}, plotter.XY{X: x, Y: h}
		}
		c := seriesColour(ri)
		if len(curves) > 1 {
			band := append(slices.Clone(lo), hi...)
			slices.Reverse(band[n:])
			poly, err := plotter.NewPolygon(band)
			if err != nil {
				return fmt.Errorf("loope: plot %s: %w", path, err)
			}
			poly.Color = color.NRGBA{R: c.R, G: c.G, B: c.B, A: 50}
			poly.LineStyle.Width = 0
			p.Add(poly)
		}
		l, pts, err := plotter.NewLinePoints(mean)
		if err != nil {
			return fmt.Errorf("loope: plot %s: %w", path, err)
		}
		l.Color, pts.Color, pts.Radius = c, c, vg.Points(2)
		p.Add(l, pts)
		p.Legend.Add(fmt.Sprintf("%s (n=%d)", row, len(curves)), l, pts)
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("loope: PlotValCurves %s: no validation metrics (validation off?)", path)
	}
	p.Legend.Left = true
	legendRoom(p)
	return writePlots(path, title, [][]*plot.Plot{{p}}, 9*vg.Inch, 6*vg.Inch)
}

// seriesColour returns the i-th colour of a qualitative palette (tab10).
func seriesColour(i int) color.RGBA {
	tab := [10]color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
		{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}, {188, 189, 34, 255},
		{23, 190, 207, 255}}
	return tab[i%len(tab)]
}
