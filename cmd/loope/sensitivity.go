// Subcommand sensitivity computes the frequency sensitivity of the revised
// LOOPE paper (docs/paper.md §9) from Three-Cell results, one benchmark
// per frequency set f1…f4 (loope threecell -freqs fJ -out DIR_J):
//
//	loope sensitivity -in out/f1,out/f2,out/f3,out/f4
//
// With Δf_j = ‖f_j − f_1‖₂ / ‖f_1‖₂ on the model's D/2 frequencies and
// O_j the mean test accuracy (%) with f_j, it prints per PE
// S_j = |O_j − O_1| / Δf_j (j = 2…4) and S̄ = Σ S_j Δf_j / Σ Δf_j.
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
	commands["sensitivity"] = command{summary: "frequency sensitivity S_j, S̄ from Three-Cell results (f1…f4)", run: runSensitivity}
}

func runSensitivity(args []string) error { return sensitivityMain(args, os.Stdout, os.Stderr) }

// sensitivityMain is runSensitivity with the output streams as parameters.
func sensitivityMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensitivity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "comma list of results.json files or folders holding one, one per frequency set (f1 required)")
	metric := fs.String("metric", "average", "accuracy column: "+strings.Join(loope.ThreeCellMetricNames, ", "))
	if done, err := parseFlags(fs, args); done {
		return err
	}
	bad := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "loope sensitivity: "+format+"\n(loope sensitivity -h lists the flags)\n", a...)
		return errUsage
	}
	paths := splitList(*in)
	switch {
	case len(paths) < 2:
		return bad("-in needs at least two results (f1 and another set), got %q", *in)
	case !slices.Contains(loope.ThreeCellMetricNames, *metric):
		return bad("-metric %q: valid are %s", *metric, strings.Join(loope.ThreeCellMetricNames, ", "))
	}
	if validateOnly {
		return nil
	}
	var reps []*loope.ThreeCellReport
	for _, p := range paths {
		r, err := loope.ReadThreeCellReport(p)
		if err != nil {
			return err
		}
		// The frequency sets are built for the report's width: bound it
		// before a corrupt report makes that allocation unbounded.
		if d := r.Config.Model.Dim; d < 2 || d > loope.MaxDim {
			return fmt.Errorf("%s: model dim %d outside [2, %d]", p, d, loope.MaxDim)
		}
		reps = append(reps, r)
	}
	rows, delta, err := loope.FreqSensitivity(reps, *metric)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Frequency sensitivity (docs/paper.md §9), metric %s, D %d: Δf_2 %.4f, Δf_3 %.4f, Δf_4 %.4f\n\n",
		*metric, reps[0].Config.Model.Dim, delta[1], delta[2], delta[3])
	fmt.Fprintln(stdout, "| PE | O_1 | O_2 | O_3 | O_4 | S_2 | S_3 | S_4 | S̄ |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|---|")
	f := func(v float64, prec int) string {
		if math.IsNaN(v) {
			return "–"
		}
		return fmt.Sprintf("%.*f", prec, v)
	}
	for _, r := range rows {
		fmt.Fprintf(stdout, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.PE,
			f(r.O[0], 1), f(r.O[1], 1), f(r.O[2], 1), f(r.O[3], 1), f(r.S[1], 2), f(r.S[2], 2), f(r.S[3], 2), f(r.SBar, 2))
	}
	if len(rows) == 0 {
		fmt.Fprintln(stderr, "loope sensitivity: no PE is in the f1 results and another set")
	}
	return nil
}
