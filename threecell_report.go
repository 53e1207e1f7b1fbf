// This file holds the Three-Cell report: the per-PE summaries (mean ±
// sample std over seeds), the paper's Table 4 for reference, and the
// Markdown, CSV and JSON outputs of a run (figures are in figures.go).

package loope

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat"
)

// summariseThreeCell computes the summaries of the table rows (in order)
// from runs; figures says whether heat maps are written.
func summariseThreeCell(rows []string, runs []ThreeCellRun, figures bool) []ThreeCellSummary {
	var out []ThreeCellSummary
	for _, row := range rows {
		var cols [5][]float64
		var pesi []PESIScores
		s := ThreeCellSummary{Row: row}
		for _, r := range runs {
			if r.Row() != row {
				continue
			}
			s.PE, s.Ref, s.Freqs = r.PE, r.Ref, r.Freqs
			for k, v := range accCols(r.Test) {
				cols[k] = append(cols[k], v)
			}
			if r.PESI != nil {
				pesi = append(pesi, *r.PESI)
				s.PESource = r.PESource
			}
			s.N++
		}
		if s.N == 0 {
			continue
		}
		var mean, std [5]float64
		for k, c := range cols {
			mean[k], std[k] = meanStd(c)
		}
		s.Mean = ThreeCellAcc{mean[0], mean[1], mean[2], mean[3], mean[4]}
		s.Std = ThreeCellAcc{std[0], std[1], std[2], std[3], std[4]}
		if len(pesi) > 0 {
			var p PESIScores
			for _, q := range pesi {
				p.MU += q.MU / float64(len(pesi))
				p.MD += q.MD / float64(len(pesi))
				p.ASU += q.ASU / float64(len(pesi))
			}
			s.PESI = &p
			if figures {
				s.HeatmapPNG = "heatmap_" + fileSafe(row) + ".png"
			}
		}
		out = append(out, s)
	}
	return out
}

// meanStd returns the mean and the sample standard deviation (n−1) of xs;
// the deviation is 0 for fewer than two values.
func meanStd(xs []float64) (mean, std float64) {
	if len(xs) < 2 {
		if len(xs) == 1 {
			return xs[0], 0
		}
		return 0, 0
	}
	return stat.MeanStdDev(xs, nil)
}

// FormatMeanStd formats fractions xs as a percentage "mean ± std" with one
// decimal (sample std, n−1), or just the mean for a single value, or "–"
// for none.
func FormatMeanStd(xs []float64) string {
	switch len(xs) {
	case 0:
		return "–"
	case 1:
		return fmt.Sprintf("%.1f", 100*xs[0])
	}
	m, s := stat.MeanStdDev(xs, nil)
	return fmt.Sprintf("%.1f ± %.1f", 100*m, 100*s)
}

// paperTable4 holds Table 4 of arXiv 2504.14386 (docs/paper.md §7: Distance,
// Orientation, Area, Vector Sum, Average in %, ViT at 224 px, G = 14),
// keyed by our PE registry name, with the paper's row label.
var paperTable4 = map[string]struct {
	label string
	acc   [5]float64
}{
	"none":         {"No PE", [5]float64{61.9, 53.1, 60.1, 62.6, 59.4}},
	"learnable":    {"Learnable [1]", [5]float64{85.6, 89.3, 84.0, 92.2, 87.8}},
	"sin1d":        {"1D Sinusoid [1]", [5]float64{90.9, 94.9, 91.3, 95.3, 93.1}},
	"cpvt":         {"CPVT [6]", [5]float64{72.8, 63.2, 72.6, 75.0, 70.9}},
	"rpe":          {"RPE [29]", [5]float64{73.7, 62.6, 71.0, 73.9, 70.1}},
	"fourier":      {"Fourier [15]", [5]float64{93.1, 96.7, 92.4, 93.9, 94.0}},
	"sincos2d-sum": {"2D Sinusoid [15]", [5]float64{83.6, 60.0, 72.6, 92.3, 77.1}},
	"hilbert":      {"Hilbert [11]", [5]float64{88.8, 95.0, 89.9, 93.8, 91.9}},
	"loope":        {"LOOPE (Ours)", [5]float64{91.5, 95.8, 93.3, 94.6, 93.7}},
}

// threeCellColumns names the Table 4 columns in order.
var threeCellColumns = [5]string{"Distance", "Orientation", "Area", "Vector Sum", "Average"}

func accCols(a ThreeCellAcc) [5]float64 {
	return [5]float64{a.Distance, a.Orientation, a.Area, a.VectorSum, a.Average}
}

// Markdown returns the report as Markdown: the Table-4-style results with
// mean ± std over seeds and the priors row, the exact priors, the paper's
// values for the same PEs, and the PESI of the additive PEs.
func (r *ThreeCellReport) Markdown() string {
	var b strings.Builder
	r.mdSetup(&b)
	r.mdResults(&b)
	r.mdPaperTable(&b)
	r.mdPESI(&b)
	r.mdFiles(&b)
	return b.String()
}

// mdSetup writes the title and the run's setup paragraph.
func (r *ThreeCellReport) mdSetup(b *strings.Builder) {
	c := r.Config
	fmt.Fprintf(b, "# Three-Cell benchmark\n\n")
	data := fmt.Sprintf("fixed split, first %d training images", c.TrainSize)
	if c.Stream {
		data = fmt.Sprintf("streaming, %d fresh images per epoch", c.TrainSize)
	}
	freqs := strings.Join(c.FreqSets, ", ")
	if freqs == "" {
		freqs = "each PE's default"
	}
	fmt.Fprintf(b, "Preset %s: %d px images, grid %d×%d, cell %d px = patch, D %d, depth %d, heads %d, MLP %d. "+
		"%d steps × batch %d, AdamW lr %g → %g cosine, warm-up %d, weight decay %g; %s; data seed %d; "+
		"validation %d images; sinusoid frequencies %s; seeds %s.\n\n",
		c.Preset, c.Model.Image, r.Grid, r.Grid, r.CellPx, c.Model.Dim, c.Model.Depth, c.Model.Heads, c.Model.MLP,
		c.Steps, c.Batch, c.LR, c.MinLR, c.Warmup, c.WeightDecay, data, c.DataSeed, c.ValSize, freqs, strings.Trim(fmt.Sprint(c.Seeds), "[]"))
	if c.InitFrom != "" {
		fmt.Fprintf(b, "The paper's protocol: every PE run starts from the backbone in %s (SHA-256 %.12s…): its patch embedding, "+
			"blocks, final norm and CLS token; the PE is fresh (learnable keeps the file's pos_embed, resampled to the grid) "+
			"and the head is new.\n\n", filepath.Base(c.InitFrom), c.InitFromSHA256)
	}
}

// mdResults writes the results table, the priors row and the exact priors.
func (r *ThreeCellReport) mdResults(b *strings.Builder) {
	c := r.Config
	nTest := c.TestSize
	if nTest == 0 {
		nTest = ThreeCellTestN
	}
	first, _ := ThreeCellTest.Range()
	fmt.Fprintf(b, "Test accuracy (%%) on %d test images (fixed indices [%d, %d)), mean ± sample std over seeds. "+
		"Distance = mean of bits 0–1, Orientation = bit 2, Area = mean of bits 3–4, Vector Sum = bit 5, "+
		"Average = mean of the four (docs/paper.md §4.5).\n\n", nTest, first, first+nTest)
	fmt.Fprintf(b, "| PE | %s | seeds |\n|---|---|---|---|---|---|---|\n", strings.Join(threeCellColumns[:], " | "))
	for _, s := range r.Summary {
		label := s.Row
		if s.Ref {
			label += " (reference model)"
		}
		fmt.Fprintf(b, "| %s |", label)
		for k := range threeCellColumns {
			var xs []float64
			for _, run := range r.Runs {
				if run.Row() == s.Row {
					xs = append(xs, accCols(run.Test)[k])
				}
			}
			fmt.Fprintf(b, " %s |", FormatMeanStd(xs))
		}
		fmt.Fprintf(b, " %d |\n", s.N)
	}
	fmt.Fprintf(b, "| priors (best constant) |")
	for _, v := range accCols(r.PriorAcc) {
		fmt.Fprintf(b, " %.1f |", 100*v)
	}
	fmt.Fprintf(b, " – |\n\n")
	p := r.Priors
	fmt.Fprintf(b, "Exact priors (G = %d, enumerated): P(bit = 1) = %.4f %.4f %.4f %.4f %.4f %.4f.\n\n",
		r.Grid, p[0], p[1], p[2], p[3], p[4], p[5])
}

// mdPaperTable writes the paper's Table 4 rows of the PEs run, if any.
func (r *ThreeCellReport) mdPaperTable(b *strings.Builder) {
	var ref []string
	for _, s := range r.Summary {
		if row, ok := paperTable4[s.PE]; ok && !s.Ref && s.Freqs == "" {
			a := row.acc
			ref = append(ref, fmt.Sprintf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f |", s.PE, row.label, a[0], a[1], a[2], a[3], a[4]))
		}
	}
	if len(ref) > 0 {
		fmt.Fprintf(b, "## Paper Table 4, for reference\n\narXiv 2504.14386 Table 4 (docs/paper.md §7): 224 px images, G = 14, "+
			"an ImageNet-pretrained DeiT-Base fine-tuned 150 epochs. Not the same model or budget as above.\n\n")
		fmt.Fprintf(b, "| PE | paper row | %s |\n|---|---|---|---|---|---|---|\n", strings.Join(threeCellColumns[:], " | "))
		fmt.Fprintf(b, "%s\n\n", strings.Join(ref, "\n"))
	}
}

// mdPESI writes the PESI table of the trained additive PEs, if any.
func (r *ThreeCellReport) mdPESI(b *strings.Builder) {
	c := r.Config
	var pesi []string
	for _, s := range r.Summary {
		if s.PESI != nil {
			pesi = append(pesi, fmt.Sprintf("| %s | %.4f | %.4f | %.4f | %s |", s.Row, s.PESI.MU, s.PESI.MD, s.PESI.ASU, s.PESource))
		}
	}
	crossViTNote := ""
	if c.Model.Arch == "crossvit" {
		crossViTNote = " CrossViT: the first branch's PE (patches of the full image); the second branch's is not scored."
	}
	if len(pesi) > 0 {
		fmt.Fprintf(b, "## PESI of the trained additive PEs\n\nM_U, M_D (N = %d), A_SU (docs/paper.md §5) of each PE's "+
			"%d×%d patch table at D = %d, CLS row excluded, mean over seeds. PEs that add no table are left out; for PEs that also act in "+
			"attention (e.g. irpe-ctx) this is their additive table only.%s\n\n",
			ThreeCellPESIDirections, r.Grid, r.Grid, c.Model.Dim, crossViTNote)
		fmt.Fprintf(b, "| PE | M_U | M_D | A_SU | table |\n|---|---|---|---|---|\n%s\n\n", strings.Join(pesi, "\n"))
	}
}

// mdFiles writes the list of output files and the run's machine line.
func (r *ThreeCellReport) mdFiles(b *strings.Builder) {
	c := r.Config
	fmt.Fprintf(b, "## Files\n\n- results.csv, results.json: per-run numbers\n")
	if c.Out != "" && len(r.Summary) > 0 {
		fmt.Fprintf(b, "- table4.png: the table above as grouped bars (± one std), with the priors dashed\n")
		if c.ValSize > 0 {
			fmt.Fprintf(b, "- curves.png: validation accuracy of every row against images seen (mean over seeds, min–max band)\n")
		}
	}
	for _, run := range r.Runs {
		if run.CurvePNG != "" {
			fmt.Fprintf(b, "- %s: training loss and accuracy (train and validation) of %s, seed %d\n", run.CurvePNG, run.Row(), run.Seed)
		}
	}
	for _, s := range r.Summary {
		if s.HeatmapPNG != "" {
			fmt.Fprintf(b, "- %s: cosine similarity of the %s PE row of each of the nine centre cells of supplement Fig. 2 "+
				"(corners, edge midpoints, centre) to every patch's row (first seed)\n", s.HeatmapPNG, s.Row)
		}
	}
	fmt.Fprintf(b, "- runs/: one file per run (numbers, curve, config and its hash), from which all of the above is built\n")
	if !r.Done {
		fmt.Fprintf(b, "\n(incomplete: %d of %d runs)\n", len(r.Runs), len(c.Runs()))
	}
	if len(r.Runs) > 0 {
		m := r.Runs[0].Machine
		fmt.Fprintf(b, "\nWall time %.0f s from the first run's start to the last run's end; the runs took %.0f s in all. "+
			"Run 0 ran on %s %s/%s, GOMAXPROCS %d, %d threads.\n",
			r.WallS, r.RunsWallS, m.GoVersion, m.GOOS, m.GOARCH, m.GOMAXPROCS, m.Threads)
	}
}

// ThreeCellCSVHeader is the header of results.csv, one row per run.
var ThreeCellCSVHeader = []string{"index", "row", "pe", "ref", "freqs", "seed", "distance", "orientation", "area", "vector_sum", "average",
	"bit0", "bit1", "bit2", "bit3", "bit4", "bit5", "test_loss", "val_loss", "val_acc", "params", "steps", "wall_s",
	"pesi_mu", "pesi_md", "pesi_asu"}

// WriteCSV writes one row per run (accuracies as fractions).
func (r *ThreeCellReport) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(ThreeCellCSVHeader)
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, run := range r.Runs {
		row := []string{strconv.Itoa(run.Index), run.Row(), run.PE, strconv.FormatBool(run.Ref), run.Freqs, strconv.FormatUint(run.Seed, 10)}
		for _, v := range accCols(run.Test) {
			row = append(row, f(v))
		}
		for _, v := range run.TestBits {
			row = append(row, f(v))
		}
		row = append(row, f(run.TestLoss), f(run.ValLoss), f(run.ValAcc), strconv.Itoa(run.Params),
			strconv.Itoa(r.Config.Steps), f(run.WallS))
		if run.PESI != nil {
			row = append(row, f(run.PESI.MU), f(run.PESI.MD), f(run.PESI.ASU))
		} else {
			row = append(row, "", "", "")
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// write saves results.md, results.csv and results.json into Config.Out.
func (r *ThreeCellReport) write() error {
	out := r.Config.Out
	if out == "" {
		return nil
	}
	if err := writeAtomic(filepath.Join(out, "results.md"), func(w io.Writer) error {
		_, err := io.WriteString(w, r.Markdown())
		return err
	}); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(out, "results.csv"), r.WriteCSV); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(out, "results.json"), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	})
}

// ReadThreeCellReport reads a results.json, or DIR/results.json if path is
// a folder.
func ReadThreeCellReport(path string) (*ThreeCellReport, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "results.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loope: %w", err)
	}
	var r ThreeCellReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("loope: %s: %w", path, err)
	}
	return &r, nil
}

// ThreeCellSummary aggregates the runs of one table row over seeds.
type ThreeCellSummary struct {
	Row   string       `json:"row"` // PE, "PE/freqs", or reference model
	PE    string       `json:"pe"`
	Ref   bool         `json:"ref,omitempty"`
	Freqs string       `json:"freqs,omitempty"`
	N     int          `json:"n"`    // seeds
	Mean  ThreeCellAcc `json:"mean"` // fractions
	Std   ThreeCellAcc `json:"std"`  // sample standard deviation (n−1); 0 for one seed
	PESI  *PESIScores  `json:"pesi,omitempty"`
	// HeatmapPNG is the cosine-similarity figure of the first seed's PE.
	HeatmapPNG string `json:"heatmap_png,omitempty"`
	PESource   string `json:"pe_source,omitempty"`
}

// ThreeCellReport is everything a benchmark produced (results.json). It is
// built from the runs alone (buildThreeCellReport), so a sweep run in one
// process and one merged from shards give the same report.
type ThreeCellReport struct {
	Config   ThreeCellBenchConfig `json:"config"`
	Hash     string               `json:"config_hash"` // Config.Hash
	Grid     int                  `json:"grid"`        // Three-Cell grid G
	CellPx   int                  `json:"cell_px"`     // pixels per cell
	Priors   [6]float64           `json:"priors"`      // exact P(bit = 1), ThreeCellPriors
	PriorAcc ThreeCellAcc         `json:"prior_acc"`   // best constant predictor
	Runs     []ThreeCellRun       `json:"runs"`        // in index order
	Summary  []ThreeCellSummary   `json:"summary"`
	Done     bool                 `json:"done"` // false while runs are still missing
	// Timing: the first run's start, the span from it to the last run's
	// end, and the sum of the runs' wall times (the sweep's cost).
	Started   time.Time `json:"started"`
	WallS     float64   `json:"wall_s"`
	RunsWallS float64   `json:"runs_wall_s"`
}

// buildThreeCellReport builds the report of cfg's sweep from finished
// runs (any order, each at most once).
func buildThreeCellReport(cfg ThreeCellBenchConfig, runs []ThreeCellRun) *ThreeCellReport {
	g := cfg.Model.Image / cfg.Model.Patch
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(a, b ThreeCellRun) int { return a.Index - b.Index })
	rep := &ThreeCellReport{Config: cfg, Hash: cfg.Hash(), Grid: g, CellPx: cfg.Model.Patch,
		Priors: ThreeCellPriors(g), PriorAcc: ThreeCellPriorAcc(g), Runs: runs,
		Done: len(runs) == len(cfg.Runs())}
	var end time.Time
	for i, r := range runs {
		if i == 0 || r.Started.Before(rep.Started) {
			rep.Started = r.Started
		}
		if e := r.Started.Add(time.Duration(r.WallS * float64(time.Second))); e.After(end) {
			end = e
		}
		rep.RunsWallS += r.WallS
	}
	if len(runs) > 0 {
		rep.WallS = end.Sub(rep.Started).Seconds()
	}
	rep.Summary = summariseThreeCell(tableRows(cfg.Runs()), runs, cfg.Out != "")
	return rep
}

// writeAll writes the report's files into Config.Out: a training-curve PNG
// per run, a heat map per row from its first run's PE table (tables by run
// index), table4.png and curves.png, then results.md, .csv and .json.
func (r *ThreeCellReport) writeAll(tables map[int][]float64) error {
	c := r.Config
	if c.Out == "" {
		return nil
	}
	for i := range r.Runs {
		run := &r.Runs[i]
		title := fmt.Sprintf("%s, seed %d (%s, %d steps × %d)", run.Row(), run.Seed, c.Preset, c.Steps, c.Batch)
		if err := PlotTrainingCurves(filepath.Join(c.Out, run.CurvePNG), title, run.Curve); err != nil {
			return err
		}
	}
	for _, s := range r.Summary {
		if s.HeatmapPNG == "" {
			continue
		}
		first := r.Runs[slices.IndexFunc(r.Runs, func(x ThreeCellRun) bool { return x.Row() == s.Row })]
		src := "fixed table"
		if !strings.HasPrefix(first.PESource, "fixed") {
			src = fmt.Sprintf("table on test image %d", ThreeCellTrainN+ThreeCellValN)
		}
		title := fmt.Sprintf("%s (seed %d, %s): cosine similarity of the PE rows", s.Row, first.Seed, src)
		if err := PlotPEHeatmaps(filepath.Join(c.Out, s.HeatmapPNG), title, tables[first.Index], c.Model.Dim, r.Grid); err != nil {
			return err
		}
	}
	if len(r.Summary) > 0 {
		title := fmt.Sprintf("Three-Cell test accuracy, %s, %d steps × %d", c.Preset, c.Steps, c.Batch)
		if c.InitFrom != "" {
			title += ", from " + filepath.Base(c.InitFrom)
		}
		if err := PlotTable4(filepath.Join(c.Out, "table4.png"), title, r.Summary, r.PriorAcc); err != nil {
			return err
		}
	}
	if c.ValSize > 0 && len(r.Runs) > 0 {
		title := fmt.Sprintf("Validation accuracy, %s; line: mean over seeds, band: min–max", c.Preset)
		rows := make([]string, len(r.Summary))
		for i, s := range r.Summary {
			rows[i] = s.Row
		}
		if err := PlotValCurves(filepath.Join(c.Out, "curves.png"), title, r.Runs, rows, c.Batch); err != nil {
			return err
		}
	}
	return r.write()
}
