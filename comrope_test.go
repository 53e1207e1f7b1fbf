package loope

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// rotLogits returns the (N, N) logits q'_i·k'_j of head h after pe's
// RotateQK of layer, for one query vector and one key vector repeated at
// every token: any dependence on i, j comes from the rotation alone.
func rotLogits(t *testing.T, pe PosEmb[float64], cfg Config, layer, h int, rng *rand.Rand) []float64 {
	t.Helper()
	n, hh, dh := cfg.Tokens(), cfg.Heads, cfg.Dim/cfg.Heads
	qv, kv := make([]float64, dh), make([]float64, dh)
	for i := range dh {
		qv[i], kv[i] = rng.Float64()*2-1, rng.Float64()*2-1
	}
	q, k := New[float64](1, hh, n, dh), New[float64](1, hh, n, dh)
	for x := range hh * n {
		copy(q.Data[x*dh:], qv)
		copy(k.Data[x*dh:], kv)
	}
	var tp Tape[float64]
	tp.NoGrad = true
	qr, kr := pe.RotateQK(&tp, layer, q, k)
	out := make([]float64, n*n)
	for i := range n {
		for j := range n {
			s := 0.0
			for c := range dh {
				s += qr.Data[(h*n+i)*dh+c] * kr.Data[(h*n+j)*dh+c]
			}
			out[i*n+j] = s
		}
	}
	return out
}

// shiftDeviation returns the largest change of the patch-token logit
// L[(r₁,c₁), (r₂,c₂)] when both tokens move by (dr, dc) on the grid.
func shiftDeviation(l []float64, g, dr, dc int) float64 {
	n := g*g + 1
	tok := func(r, c int) int { return 1 + r*g + c }
	worst := 0.0
	for r1 := range g - dr {
		for c1 := range g - dc {
			for r2 := range g - dr {
				for c2 := range g - dc {
					a := l[tok(r1, c1)*n+tok(r2, c2)]
					b := l[tok(r1+dr, c1+dc)*n+tok(r2+dr, c2+dc)]
					worst = max(worst, math.Abs(a-b))
				}
			}
		}
	}
	return worst
}

// TestComRoPETranslationInvariant: the ComRoPE generators commute, so the
// q·k logit of two patch tokens depends only on their position difference.
func TestComRoPETranslationInvariant(t *testing.T) {
	for _, name := range []string{"comrope-ap", "comrope-ld"} {
		cfg := tinyAttnConfig(name)
		cfg.Dim, cfg.PE.ComRoPEBlock = 16, 4 // Dh 8, two 4×4 blocks per axis (AP)
		m, err := NewViT[float64](cfg, 2)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(8, 9))
		l := rotLogits(t, m.PE, cfg, 1, 1, rng)
		for _, d := range [][2]int{{1, 0}, {0, 1}, {1, 2}} {
			if e := shiftDeviation(l, cfg.Grid(), d[0], d[1]); e > 1e-12 {
				t.Errorf("%s: shift %v changes a logit by %g", name, d, e)
			}
		}
	}
}

// TestComRoPEBlockErrors: a block size that does not fit the head dim is a
// config-time error naming the option.
func TestComRoPEBlockErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block int
	}{{"comrope-ap", 3}, {"comrope-ap", 4}, {"comrope-ld", 3}, {"comrope-ld", -1}} {
		cfg := tinyAttnConfig(tc.name) // Dh 4
		cfg.PE.ComRoPEBlock = tc.block
		if _, err := NewViT[float64](cfg, 1); err == nil || !strings.Contains(err.Error(), "-comrope-block") {
			t.Errorf("%s block %d: err %v, want a -comrope-block error", tc.name, tc.block, err)
		}
	}
	cfg := tinyAttnConfig("comrope-ld")
	cfg.PE.ComRoPEBlock = 4 // divides Dh 4: fine for LD (AP needs Dh/2)
	if _, err := NewViT[float64](cfg, 1); err != nil {
		t.Errorf("comrope-ld block 4: %v", err)
	}
}

// TestComRoPECheckpointShape: a checkpoint whose ComRoPE tensors have
// another block size is refused, naming the tensor.
func TestComRoPECheckpointShape(t *testing.T) {
	cfg := tinyAttnConfig("comrope-ld")
	m2, err := NewViT[float64](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	f := NewSafeFile()
	if err := putParams(f, m2); err != nil {
		t.Fatal(err)
	}
	cfg.PE.ComRoPEBlock = 4
	m4, err := NewViT[float64](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	err = LoadParams(m4, f)
	if err == nil || !strings.Contains(err.Error(), `"pos_embed.self_attn.0.freqs"`) {
		t.Errorf("err %v, want the shape of pos_embed.self_attn.0.freqs refused", err)
	}
}

// TestComRoPERotationOrthogonal: every exported rotation block is
// orthogonal, and CLS (position (½, ½)) is rotated like any token.
func TestComRoPERotationOrthogonal(t *testing.T) {
	cfg := tinyAttnConfig("comrope-ap")
	tables, _, err := AttentionPETables(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := tables["comrope.rotation.layer0"]
	if e := orthoErr(r.Data, 2); e > 1e-13 {
		t.Errorf("max |RᵀR − I| = %g", e)
	}
	if r.Data[0] == 1 {
		t.Errorf("CLS rotation block is the identity; want exp of its generator at (½, ½)")
	}
}
