package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func fixedPatches(t *testing.T, name string, dim, h, w int) []float64 {
	t.Helper()
	pe, err := FixedPE(name, dim, h, w, "")
	if err != nil {
		t.Fatal(err)
	}
	return DropCLS(pe, dim)
}

func checkScores(t *testing.T, what string, got, want PESIScores, tol float64) {
	t.Helper()
	if math.Abs(got.MU-want.MU) > tol || math.Abs(got.MD-want.MD) > tol || math.Abs(got.ASU-want.ASU) > tol {
		t.Errorf("%s: got M_U %.6f M_D %.6f A_SU %.6f, want %.6f %.6f %.6f (tol %g)",
			what, got.MU, got.MD, got.ASU, want.MU, want.MD, want.ASU, tol)
	}
}

func TestPESITable5(t *testing.T) {
	// docs/paper.md §7 Table 5 and §5.5 (D = 768, 14×14, CLS excluded, N = 60).
	// Agreement to the 4 printed decimals (docs/paper.md §5.5 allows 3e-4 on M_D).
	for _, tc := range []struct {
		pe, row string
		want    PESIScores
	}{
		{"sin1d", "1D Sinusoid", PESIScores{1.9567, 1.4905, 0.1243}},
		{"hilbert", "LOOPE (ours), §5.5", PESIScores{1.9674, 1.2900, 0.0939}},
		{"hilbert-crop", "§5.5 16×16 Hilbert cropped", PESIScores{1.9641, 1.2839, 0.1063}},
	} {
		got := PESI(fixedPatches(t, tc.pe, 768, 14, 14), 768, 14, 14, 60)
		checkScores(t, tc.pe+" vs "+tc.row, got, tc.want, 5e-5)
	}
}

func TestPESIAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	random := func(n, d int) []float64 {
		v := make([]float64, n*d)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	for _, tc := range []struct {
		name       string
		table      []float64
		dim, h, w  int
		directions int
	}{
		{"sincos2d D192 14×14", fixedPatches(t, "sincos2d", 192, 14, 14), 192, 14, 14, 60},
		{"sincos2d-sum D64 7×7", fixedPatches(t, "sincos2d-sum", 64, 7, 7), 64, 7, 7, 60},
		{"gilbert D32 7×7 N=8", fixedPatches(t, "hilbert", 32, 7, 7), 32, 7, 7, 8},
		{"peano D48 9×6 N=13", fixedPatches(t, "peano", 48, 9, 6), 48, 9, 6, 13},
		{"random D16 7×7", random(49, 16), 16, 7, 7, 60},
		{"random D24 5×8 N=4", random(40, 24), 24, 5, 8, 4},
		{"random D8 1×9 N=1", random(9, 8), 8, 1, 9, 1},
	} {
		got := PESI(tc.table, tc.dim, tc.h, tc.w, tc.directions)
		want := refPESI(tc.table, tc.dim, tc.h, tc.w, tc.directions, refPESIOpts{})
		checkScores(t, tc.name, got, want, 1e-12)
	}
}

func TestPESIInvariants(t *testing.T) {
	// Concatenated [sin | cos] layout gives the same PESI as interleaved
	// (docs/paper.md §10 #7): a column permutation leaves cosines unchanged.
	const d = 64
	pe := fixedPatches(t, "hilbert", d, 8, 8)
	cat := make([]float64, len(pe))
	for r := range 64 {
		for i := range d / 2 {
			cat[r*d+i] = pe[r*d+2*i]
			cat[r*d+d/2+i] = pe[r*d+2*i+1]
		}
	}
	checkScores(t, "concat vs interleaved", PESI(cat, d, 8, 8, 60), PESI(pe, d, 8, 8, 60), 1e-12)
	// Scaling the table changes nothing either.
	scaled := make([]float64, len(pe))
	for i, v := range pe {
		scaled[i] = 3 * v
	}
	checkScores(t, "scaled", PESI(scaled, d, 8, 8, 60), PESI(pe, d, 8, 8, 60), 1e-12)
}

func TestPESIPanics(t *testing.T) {
	mustPanic := func(what, sub string, f func()) {
		t.Helper()
		defer func() {
			r := recover()
			if s, _ := r.(string); !strings.HasPrefix(s, "loope: ") || !strings.Contains(s, sub) {
				t.Errorf("%s: panic %v, want a loope: %s message", what, r, sub)
			}
		}()
		f()
	}
	withCLS := make([]float64, 17*4)
	mustPanic("CLS row left in", "PESI", func() { PESI(withCLS, 4, 4, 4, 60) })
	mustPanic("no directions", "directions", func() { PESI(withCLS[4:], 4, 4, 4, 0) })
	mustPanic("DropCLS ragged", "DropCLS", func() { DropCLS(make([]float64, 7), 4) })
	if got := len(DropCLS(withCLS, 4)); got != 16*4 {
		t.Errorf("DropCLS: %d values, want 64", got)
	}
}

func BenchmarkPESI(b *testing.B) {
	pe, _ := FixedPE("hilbert", 768, 14, 14, "")
	pe = pe[768:]
	for b.Loop() {
		PESI(pe, 768, 14, 14, 60)
	}
}

func ExamplePESI() {
	// The paper's "1D Sinusoid" row of Table 5 (D 768, 14×14, N = 60).
	pe, _ := FixedPE("sin1d", 768, 14, 14, "vaswani")
	s := PESI(DropCLS(pe, 768), 768, 14, 14, 60)
	fmt.Printf("M_U %.4f  M_D %.4f  A_SU %.4f\n", s.MU, s.MD, s.ASU)
	// Output: M_U 1.9567  M_D 1.4905  A_SU 0.1243
}
