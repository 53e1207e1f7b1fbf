package loope

import (
	"math/rand/v2"
	"testing"
)

// TestPlainQK checks plainQK against every registered PE's hooks: a PE it
// names must return q and k unchanged from RotateQK and build its
// attention bias without q in every layer; a PE whose RotateQK is the
// identity and that it does not name must be irpe-ctx (the one bias that
// reads q), so a new PE that could take the fast path is not missed.
func TestPlainQK(t *testing.T) {
	for _, name := range PENames() {
		cfg := peTestConfig(PEConfig{Name: name})
		cfg.Depth = 2
		pe, err := newPosEmb[float64](cfg, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n, h, dh := cfg.Tokens(), cfg.Heads, cfg.Dim/cfg.Heads
		identity := true
		for layer := range cfg.Depth {
			var tp Tape[float64]
			q, k := tp.New(2, h, n, dh), tp.New(2, h, n, dh)
			rq, rk := pe.RotateQK(&tp, layer, q, k)
			identity = identity && rq == q && rk == k
			if plainQK(pe) {
				if rq != q || rk != k {
					t.Errorf("%s: plainQK, but RotateQK of layer %d is not the identity", name, layer)
				}
				if ai, ok := pe.(attnInputPE[float64]); ok { // PaPE reads the block input instead
					ai.attnInput(&tp, layer, tp.New(2, n, cfg.Dim))
				}
				pe.AttnBias(&tp, layer, nil) // must not read q
			}
		}
		if identity && !plainQK(pe) && name != "irpe-ctx" {
			t.Errorf("%s: RotateQK is the identity but plainQK is false (add it to plainQK if AttnBias does not read q)", name)
		}
	}
}
