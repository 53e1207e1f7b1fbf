package loope

import (
	"math/rand/v2"
	"testing"
)

// TestLieRENotTranslationInvariant: LieRE's dense generators do not
// commute, so (unlike RoPE, ComRoPE and STRING) the logit of two patch
// tokens changes when both move by the same offset. The rotations are
// still orthogonal.
func TestLieRENotTranslationInvariant(t *testing.T) {
	cfg := tinyAttnConfig("liere")
	m, err := NewViT[float64](cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 9))
	l := rotLogits(t, m.PE, cfg, 0, 0, rng)
	if e := shiftDeviation(l, cfg.Grid(), 1, 0); e < 1e-3 {
		t.Errorf("shift (1, 0) changes logits by at most %g; LieRE should not be translation invariant", e)
	}
	tables, _, err := AttentionPETablesOf(m.PE)
	if err != nil {
		t.Fatal(err)
	}
	if e := orthoErr(tables["liere.rotation"].Data, 4); e > 1e-12 {
		t.Errorf("max |RᵀR − I| = %g", e)
	}
}

// TestLieRESharedAcrossLayers: the rotations are built at layer 0 and
// reused by every later layer of the same forward.
func TestLieRESharedAcrossLayers(t *testing.T) {
	cfg := tinyAttnConfig("liere")
	m, err := NewViT[float64](cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	a := rotLogits(t, m.PE, cfg, 0, 1, rand.New(rand.NewPCG(1, 1)))
	b := rotLogits(t, m.PE, cfg, 1, 1, rand.New(rand.NewPCG(1, 1)))
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("layer 1 logit %d = %v, layer 0 %v", i, b[i], a[i])
		}
	}
}
