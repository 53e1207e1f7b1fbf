package loope

import (
	"math/rand/v2"
	"testing"
)

// TestStringTranslationInvariant: with a random (non-identity) basis P,
// the q·k logit of two patch tokens still depends only on their position
// difference, and P is orthogonal.
func TestStringTranslationInvariant(t *testing.T) {
	cfg := tinyAttnConfig("string")
	cfg.Dim = 16 // Dh 8
	m, err := NewViT[float64](cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	pe := m.PE.(*stringPE[float64])
	pe.W.FillUniform(rand.New(rand.NewPCG(4, 4)), -1, 1)
	l := rotLogits(t, m.PE, cfg, 1, 1, rand.New(rand.NewPCG(8, 9)))
	for _, d := range [][2]int{{1, 0}, {0, 1}, {2, 1}} {
		if e := shiftDeviation(l, cfg.Grid(), d[0], d[1]); e > 1e-12 {
			t.Errorf("shift %v changes a logit by %g", d, e)
		}
	}
	tables, _, err := AttentionPETablesOf(m.PE)
	if err != nil {
		t.Fatal(err)
	}
	if e := orthoErr(tables["string.basis.layer1"].Data, 8); e > 1e-13 {
		t.Errorf("max |PᵀP − I| = %g", e)
	}
}

// TestStringStartsAsRopeMixed: W starts at zero, so P = I and string
// computes exactly rope-mixed from the same seed.
func TestStringStartsAsRopeMixed(t *testing.T) {
	ms, err := NewViT[float64](tinyAttnConfig("string"), 5)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := NewViT[float64](tinyAttnConfig("rope-mixed"), 5)
	if err != nil {
		t.Fatal(err)
	}
	a := rotLogits(t, ms.PE, ms.Cfg, 0, 1, rand.New(rand.NewPCG(1, 2)))
	b := rotLogits(t, mr.PE, mr.Cfg, 0, 1, rand.New(rand.NewPCG(1, 2)))
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("logit %d: string %v, rope-mixed %v", i, a[i], b[i])
		}
	}
}
