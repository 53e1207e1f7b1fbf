package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestIRPEPiecewiseVector pins g(Δ), Δ = −13…13, at ratio 1.9 to the test
// vector of docs/pe-zoo.md §13.1: [−3×10, −2, −2, −1, 0, 1, 2, 2, 3×10].
func TestIRPEPiecewiseVector(t *testing.T) {
	want := []int{-3, -3, -3, -3, -3, -3, -3, -3, -3, -3, -2, -2, -1, 0, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3}
	for i, w := range want {
		d := i - 13
		if got := IRPEPiecewise(d, 1.9, 3.8, 15.2); got != w {
			t.Errorf("g(%d) = %d, want %d", d, got, w)
		}
	}
}

// TestRelPosIndexPairs checks the BEiT index on the 14×14 grid against
// hand-evaluated docs/pe-zoo.md §12 formulas: (Δr + 13)·27 + (Δc + 13), T = 732.
func TestRelPosIndexPairs(t *testing.T) {
	const g = 14
	idx := RelPosIndex(g)
	n := g*g + 1
	tok := func(r, c int) int { return 1 + r*g + c }
	for _, tc := range []struct {
		name string
		i, j int
		want int
	}{
		{"same patch", tok(0, 0), tok(0, 0), 13*27 + 13},      // 364, the centre
		{"(0,0)→(13,13)", tok(0, 0), tok(13, 13), 0},          // Δ = (−13, −13)
		{"(13,13)→(0,0)", tok(13, 13), tok(0, 0), 26*27 + 26}, // 728
		{"(2,5)→(7,1)", tok(2, 5), tok(7, 1), 8*27 + 17},      // Δ = (−5, 4): 233
		{"CLS query", 0, tok(3, 4), 729},                      // T−3
		{"CLS key", tok(3, 4), 0, 730},                        // T−2
		{"CLS–CLS", 0, 0, 731},                                // T−1
	} {
		if got := idx[tc.i*n+tc.j]; got != tc.want {
			t.Errorf("%s: index %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestIRPEProductBucketPairs checks product buckets by hand at ratio 1.9:
// S = 7, id = (g(Δr)+3)·7 + (g(Δc)+3), CLS pairs K−1 = 49.
func TestIRPEProductBucketPairs(t *testing.T) {
	const g = 14
	ids, k := IRPEProductBuckets(g, 1.9)
	if k != 50 {
		t.Fatalf("K = %d, want 50", k)
	}
	n := g*g + 1
	tok := func(r, c int) int { return 1 + r*g + c }
	for _, tc := range []struct {
		name string
		i, j int
		want int
	}{
		{"same", tok(5, 5), tok(5, 5), 3*7 + 3},
		{"Δ=(13,−5)", tok(13, 0), tok(0, 5), 6*7 + 0},
		{"Δ=(−2,2)", tok(1, 2), tok(3, 0), 1*7 + 5},
		{"Δ=(−1,1)", tok(0, 1), tok(1, 0), 2*7 + 4},
		{"CLS row", 0, tok(2, 2), 49},
		{"CLS col", tok(2, 2), 0, 49},
		{"CLS–CLS", 0, 0, 49},
	} {
		if got := ids[tc.i*n+tc.j]; got != tc.want {
			t.Errorf("%s: bucket %d, want %d", tc.name, got, tc.want)
		}
	}
}

// tinyAttnConfig is the small model of the PE tests: G = 4, N = 17, Dh = 4.
func tinyAttnConfig(pe string) Config {
	return Config{Image: 8, Channels: 3, Patch: 2, Dim: 8, Depth: 2, Heads: 2, MLP: 16, Classes: 3, Eps: 1e-6,
		PE: PEConfig{Name: pe}}
}

// TestRPEBias checks the (H, N, N) bias against a direct evaluation of the
// Swin/BEiT lookup from grid coordinates, with a random table.
func TestRPEBias(t *testing.T) {
	cfg := tinyAttnConfig("rpe")
	m, err := NewViT[float64](cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	p := m.PE.(*rpePE[float64])
	g, n, h := cfg.Grid(), cfg.Tokens(), cfg.Heads
	w := 2*g - 1
	tab := p.Tables[1]
	var tp Tape[float64]
	bias := p.AttnBias(&tp, 1, nil)
	for hh := range h {
		for i := range n {
			for j := range n {
				var row int
				switch {
				case i == 0 && j == 0:
					row = w*w + 2
				case i == 0:
					row = w * w
				case j == 0:
					row = w*w + 1
				default:
					dr := (i-1)/g - (j-1)/g
					dc := (i-1)%g - (j-1)%g
					row = (dr+g-1)*w + dc + g - 1
				}
				if got, want := bias.Data[(hh*n+i)*n+j], tab.Data[row*h+hh]; got != want {
					t.Fatalf("bias[%d, %d, %d] = %v, want table[%d, %d] = %v", hh, i, j, got, row, hh, want)
				}
			}
		}
	}
}

// TestIRPEBiases checks both iRPE modes against their definitions with
// random tables: bias[h,i,j] = b[h, id] and bias[b,h,i,j] = q_s[b,h,i]·W[:, id].
func TestIRPEBiases(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, name := range []string{"irpe", "irpe-ctx"} {
		cfg := tinyAttnConfig(name)
		m, err := NewViT[float64](cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		p := m.PE.(*irpePE[float64])
		for _, tab := range p.Tables {
			tab.FillUniform(rng, -1, 1)
		}
		n, h, dh := cfg.Tokens(), cfg.Heads, cfg.Dim/cfg.Heads
		ids, k := IRPEProductBuckets(cfg.Grid(), IRPERatio)
		q := New[float64](2, h, n, dh).FillUniform(rng, -1, 1)
		var tp Tape[float64]
		bias := p.AttnBias(&tp, 1, q)
		tab := p.Tables[1].Data
		for b := range 2 {
			for hh := range h {
				for i := range n {
					for j := range n {
						var want, got float64
						id := ids[i*n+j]
						if name == "irpe" {
							want, got = tab[hh*k+id], bias.Data[(hh*n+i)*n+j]
						} else {
							for d := range dh {
								want += q.Data[((b*h+hh)*n+i)*dh+d] / math.Sqrt(float64(dh)) * tab[d*k+id]
							}
							got = bias.Data[((b*h+hh)*n+i)*n+j]
						}
						if math.Abs(got-want) > 1e-12 {
							t.Fatalf("%s: bias[%d, %d, %d, %d] = %v, want %v", name, b, hh, i, j, got, want)
						}
					}
				}
			}
		}
	}
}
