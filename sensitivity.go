// This file holds the frequency sensitivity of the revised paper
// (docs/paper.md §9): Δf_j of the frequency sets f1–f4, and S_j, S̄ of each
// PE from four Three-Cell reports, one per frequency set.

package loope

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// FreqSensitivityRow is one PE's frequency sensitivity (docs/paper.md §9).
type FreqSensitivityRow struct {
	PE   string
	O    [4]float64 // output (accuracy, %) with f1…f4; NaN where missing
	S    [4]float64 // S_j = |O_j − O_1| / Δf_j for j = 2…4 (index j−1); NaN where missing, S[0] unused (0)
	SBar float64    // Σ_j S_j Δf_j / Σ_j Δf_j over the j present
}

// FreqDelta returns Δf_j = ‖f_j − f_1‖₂ / ‖f_1‖₂ for j = 1…4 (index j−1)
// of the frequency sets FreqSet builds for dimension dim (docs/paper.md §9,
// first D/2 entries).
func FreqDelta(dim int) ([4]float64, error) {
	var d [4]float64
	f1, err := FreqSet("f1", dim)
	if err != nil {
		return d, err
	}
	for j, name := range []string{"f1", "f2", "f3", "f4"} {
		fj, err := FreqSet(name, dim)
		if err != nil {
			return d, err
		}
		var num, den float64
		for i, v := range f1 {
			num += (fj[i] - v) * (fj[i] - v)
			den += v * v
		}
		d[j] = math.Sqrt(num / den)
	}
	return d, nil
}

// ThreeCellMetricNames are the columns FreqSensitivity can use.
var ThreeCellMetricNames = []string{"average", "distance", "orientation", "area", "vecsum"}

// FreqSensitivity computes S_j and S̄ (docs/paper.md §9) per PE from the
// rows of reports of the same model trained with the frequency sets f1…f4
// (one sweep with -freqs f1,f2,f3,f4, or one report per set), using the
// mean test accuracy (%) of metric (one of ThreeCellMetricNames). A PE
// appears if it has an f1 row and at least one other. It also returns Δf_j.
func FreqSensitivity(reps []*ThreeCellReport, metric string) ([]FreqSensitivityRow, [4]float64, error) {
	col := slices.Index(ThreeCellMetricNames, metric)
	if col < 0 {
		return nil, [4]float64{}, fmt.Errorf("loope: unknown metric %q (valid: %s)", metric, strings.Join(ThreeCellMetricNames, ", "))
	}
	col = [5]int{4, 0, 1, 2, 3}[col] // index into accCols
	if len(reps) == 0 {
		return nil, [4]float64{}, errors.New("loope: sensitivity needs at least one report")
	}
	base := reps[0]
	for _, r := range reps {
		if r.Config.Model.Dim != base.Config.Model.Dim || r.Grid != base.Grid {
			return nil, [4]float64{}, fmt.Errorf("loope: reports differ in model dim or grid (%d, %d vs %d, %d)",
				r.Config.Model.Dim, r.Grid, base.Config.Model.Dim, base.Grid)
		}
	}
	delta, err := FreqDelta(base.Config.Model.Dim)
	if err != nil {
		return nil, delta, err
	}
	type key struct{ pe, freqs string }
	out := map[key]float64{}
	var pes []string
	for _, r := range reps {
		for _, s := range r.Summary {
			k := key{s.PE, s.Freqs}
			if _, dup := out[k]; dup {
				return nil, delta, fmt.Errorf("loope: two reports hold %s with frequency set %q", s.PE, s.Freqs)
			}
			out[k] = 100 * accCols(s.Mean)[col]
			if s.Freqs == "f1" {
				pes = append(pes, s.PE)
			}
		}
	}
	if len(pes) == 0 {
		return nil, delta, errors.New("loope: sensitivity needs f1 (baseline) results: none of the reports has a run with -freqs f1")
	}
	var rows []FreqSensitivityRow
	for _, pe := range pes {
		row := FreqSensitivityRow{PE: pe}
		n := 0
		for j, f := range []string{"f1", "f2", "f3", "f4"} {
			row.O[j], row.S[j] = math.NaN(), math.NaN()
			if o, ok := out[key{pe, f}]; ok {
				row.O[j] = o
				n++
			}
		}
		if n < 2 {
			continue
		}
		row.S[0] = 0
		var num, den float64
		for j := 1; j < 4; j++ {
			if math.IsNaN(row.O[j]) {
				continue
			}
			row.S[j] = math.Abs(row.O[j]-row.O[0]) / delta[j]
			num += row.S[j] * delta[j]
			den += delta[j]
		}
		row.SBar = num / den
		rows = append(rows, row)
	}
	return rows, delta, nil
}
