package loope

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestCPVTAfterBlock checks the PEG against a direct zero-padded depthwise
// 3×3 convolution with residual; CLS and blocks other than 0 pass through.
func TestCPVTAfterBlock(t *testing.T) {
	cfg := tinyAttnConfig("cpvt")
	m, err := NewViT[float64](cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	p := m.PE.(*cpvtPE[float64])
	g, n, d := cfg.Grid(), cfg.Tokens(), cfg.Dim
	x := New[float64](2, n, d).FillUniform(rand.New(rand.NewPCG(8, 9)), -1, 1)
	var tp Tape[float64]
	if y := p.AfterBlock(&tp, 1, x); y != x {
		t.Error("AfterBlock(1) changed x")
	}
	y := p.AfterBlock(&tp, 0, x)
	for b := range 2 {
		for c := range d {
			if got, want := y.Data[(b*n)*d+c], x.Data[(b*n)*d+c]; got != want {
				t.Fatalf("CLS changed: %v, want %v", got, want)
			}
		}
		for r := range g {
			for col := range g {
				for c := range d {
					want := x.Data[(b*n+1+r*g+col)*d+c] + p.B.Data[c]
					for di := range 3 {
						for dj := range 3 {
							rr, cc := r+di-1, col+dj-1
							if rr < 0 || rr >= g || cc < 0 || cc >= g {
								continue
							}
							want += p.W.Data[c*9+di*3+dj] * x.Data[(b*n+1+rr*g+cc)*d+c]
						}
					}
					if got := y.Data[(b*n+1+r*g+col)*d+c]; math.Abs(got-want) > 1e-12 {
						t.Fatalf("token (%d, %d) channel %d: %v, want %v", r, col, c, got, want)
					}
				}
			}
		}
	}
}

// TestCPVTInit: PyTorch's Conv2d default bounds, U(±1/3) for fan_in 9.
func TestCPVTInit(t *testing.T) {
	cfg := tinyAttnConfig("cpvt")
	cfg.Dim, cfg.Heads = 192, 3
	m, err := NewViT[float64](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := m.PE.(*cpvtPE[float64])
	for _, tt := range []*Tensor[float64]{p.W, p.B} {
		mx := 0.0
		for _, v := range tt.Data {
			mx = math.Max(mx, math.Abs(v))
		}
		if mx > 1.0/3 || mx < 0.3 {
			t.Errorf("%v: max |w| = %v, want just under 1/3", tt.Shape, mx)
		}
	}
}
