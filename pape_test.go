package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPaPEPositions checks the token positions: CLS at (0, 0), patch t of
// a G×G grid at (column+1, row+1).
func TestPaPEPositions(t *testing.T) {
	p := PaPEPositions(3)
	want := []float64{0, 0, 1, 1, 2, 1, 3, 1, 1, 2, 2, 2, 3, 2, 1, 3, 2, 3, 3, 3}
	for i := range want {
		if p[i] != want[i] {
			t.Fatalf("PaPEPositions(3) = %v, want %v", p, want)
		}
	}
}

// TestPaPEBiasFormula checks AttnBias, which expands the parabolas into
// one batched product, against the file comment's sum written out:
// bias[b, h, i, j] = Dh^−½ · Σ_k (−a_ik·(u_ik − u_jk)² + b_ik·(u_ik − u_jk)).
func TestPaPEBiasFormula(t *testing.T) {
	cfg := peTestConfig(PEConfig{Name: "pape"})
	cfg.Depth = 2
	pe, err := newPosEmb[float64](cfg, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	p := pe.(*papePE[float64])
	const b = 2
	n, d, h, k := cfg.Tokens(), cfg.Dim, cfg.Heads, PaPEParabolas
	y := New[float64](b, n, d).FillUniform(rand.New(rand.NewPCG(5, 6)), -1, 1)
	var tp Tape[float64]
	p.attnInput(&tp, 1, y)
	got := p.AttnBias(&tp, 1, nil) // (B, H, N, N)
	w, ab, pos := p.Pos[1].Data, p.AB[1].Data, p.pos.Data
	u := func(t, hk int) float64 { return w[hk*2]*pos[2*t] + w[hk*2+1]*pos[2*t+1] }
	lin := func(bi, t, row int) float64 { // (W_ab·y_t)[row]
		s := 0.0
		for c := range d {
			s += ab[row*d+c] * y.Data[(bi*n+t)*d+c]
		}
		return s
	}
	scale := 1 / math.Sqrt(float64(d/h))
	for bi := range b {
		for hh := range h {
			for i := range n {
				for j := range n {
					want := 0.0
					for kk := range k {
						hk := hh*k + kk
						a := math.Log1p(math.Exp(lin(bi, i, hk)))
						bb := lin(bi, i, h*k+hk)
						du := u(i, hk) - u(j, hk)
						want += -a*du*du + bb*du
					}
					want *= scale
					if g := got.Data[((bi*h+hh)*n+i)*n+j]; math.Abs(g-want) > 1e-9*(1+math.Abs(want)) {
						t.Fatalf("bias[%d, %d, %d, %d] = %v, want %v", bi, hh, i, j, g, want)
					}
				}
			}
		}
	}
}
