package loope

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestFourierTable: the (N+1, D) table equals a direct evaluation of
// docs/pe-zoo.md §9 (coordinates x = column, y = row on linspace(−1, 1); F/2
// projections; interleaved sin/cos; Linear → exact GELU → Linear), row 0
// is cls_embed (zero at init), and AddInput adds it to every batch item.
func TestFourierTable(t *testing.T) {
	cfg := peTestConfig(PEConfig{Name: "fourier", FourierDim: 10, FourierHidden: 4})
	cfg.Image = 6 // 3×3 grid
	m, err := NewViT[float64](cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	p := m.PE.(*fourierPE[float64])
	if slices.ContainsFunc(p.CLS.Data, func(v float64) bool { return v != 0 }) {
		t.Fatalf("cls_embed not zero at init: %v", p.CLS.Data)
	}
	p.CLS.FillNormal(rand.New(rand.NewPCG(1, 1)), 0, 1)
	g, d, f, hd := 3, cfg.Dim, 10, 4
	want := make([]float64, (g*g+1)*d)
	copy(want, p.CLS.Data)
	coord := []float64{-1, 0, 1}
	for r := range g {
		for c := range g {
			feat := make([]float64, f)
			for k := range f / 2 {
				a := p.Wr.Data[2*k]*coord[c] + p.Wr.Data[2*k+1]*coord[r]
				feat[2*k], feat[2*k+1] = math.Sin(a), math.Cos(a)
			}
			hid := make([]float64, hd)
			for j := range hd {
				s := p.FC1B.Data[j]
				for k, v := range feat {
					s += p.FC1W.Data[j*f+k] * v
				}
				hid[j] = 0.5 * s * (1 + math.Erf(s/math.Sqrt2))
			}
			for o := range d {
				s := p.FC2B.Data[o]
				for j, v := range hid {
					s += p.FC2W.Data[o*hd+j] * v
				}
				want[(1+r*g+c)*d+o] = s
			}
		}
	}
	var tp Tape[float64]
	got := p.AddInput(&tp, New[float64](2, g*g+1, d), nil)
	for b := range 2 {
		for i, w := range want {
			if v := got.Data[b*len(want)+i]; math.Abs(v-w) > 1e-13 {
				t.Fatalf("batch %d element %d = %v, want %v", b, i, v, w)
			}
		}
	}
}

func TestFourierOptions(t *testing.T) {
	cfg := peTestConfig(PEConfig{Name: "fourier"})
	m, err := NewViT[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := m.PE.(*fourierPE[float32])
	if !slices.Equal(p.Wr.Shape, []int{384, 2}) || !slices.Equal(p.FC1W.Shape, []int{32, 768}) || !slices.Equal(p.FC2W.Shape, []int{8, 32}) {
		t.Errorf("default shapes Wr %v fc1 %v fc2 %v, want [384 2] [32 768] [8 32]", p.Wr.Shape, p.FC1W.Shape, p.FC2W.Shape)
	}
	for _, tc := range []struct {
		pe   PEConfig
		want string
	}{
		{PEConfig{Name: "fourier", FourierDim: 7}, "must be even"},
		{PEConfig{Name: "fourier", Freqs: "f1"}, "does not apply"},
	} {
		if _, err := NewViT[float32](peTestConfig(tc.pe), 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error containing %q", tc.pe, err, tc.want)
		}
	}
}
