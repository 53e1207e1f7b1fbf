package loope

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
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

// circulantString builds a float64 circulant-STRING ViT of head dim dh with
// a random c.
func circulantString(t *testing.T, dh int) (*ViT[float64], *stringPE[float64]) {
	t.Helper()
	cfg := tinyAttnConfig("string")
	cfg.Dim, cfg.PE.StringBasis = 2*dh, "circulant"
	m, err := NewViT[float64](cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	pe := m.PE.(*stringPE[float64])
	pe.C.FillUniform(rand.New(rand.NewPCG(4, 4)), -0.5, 0.5)
	return m, pe
}

// TestStringCirculantIsMatrixExp: the circulant form rotates x by
// exp(t_x·L_x + t_y·L_y), L_k = C_k − C_kᵀ with C_k the circulant of first
// row c_k, computed densely with gonum's mat.Exp: Fourier-basis rotation,
// mapped back by F, equals it for every patch token, layer and head.
func TestStringCirculantIsMatrixExp(t *testing.T) {
	m, pe := circulantString(t, 8)
	cfg := m.Cfg
	n, h, dh, g := cfg.Tokens(), cfg.Heads, 8, cfg.Grid()
	x := New[float64](1, h, n, dh)
	x.FillUniform(rand.New(rand.NewPCG(5, 6)), -1, 1)
	var tp Tape[float64]
	tp.NoGrad = true
	for layer := range cfg.Depth {
		rq, _ := pe.RotateQK(&tp, layer, x, x)
		for hd := range h {
			gen := func(axis int) *mat.Dense { // L = C − Cᵀ, C[a][b] = c[(b−a) mod Dh]
				c := pe.C.Data[((layer*2+axis)*h+hd)*dh:][:dh]
				l := mat.NewDense(dh, dh, nil)
				for a := range dh {
					for b := range dh {
						l.Set(a, b, c[(b-a+dh)%dh]-c[(a-b+dh)%dh])
					}
				}
				return l
			}
			lx, ly := gen(0), gen(1)
			for tok := 1; tok < n; tok++ {
				var a, r mat.Dense
				a.Scale(float64((tok-1)%g), lx)
				var b mat.Dense
				b.Scale(float64((tok-1)/g), ly)
				a.Add(&a, &b)
				r.Exp(&a)
				in := mat.NewVecDense(dh, x.Data[(hd*n+tok)*dh:][:dh])
				var want, got mat.VecDense
				want.MulVec(&r, in)
				got.MulVec(mat.NewDense(dh, dh, pe.F.Data), mat.NewVecDense(dh, rq.Data[(hd*n+tok)*dh:][:dh]))
				for i := range dh {
					if d := math.Abs(got.AtVec(i) - want.AtVec(i)); d > 1e-12 {
						t.Fatalf("layer %d head %d token %d channel %d: F·rotated %v, exp(A)·x %v", layer, hd, tok, i, got.AtVec(i), want.AtVec(i))
					}
				}
			}
		}
		tp.Reset()
	}
	if e := orthoErr(pe.F.Data, dh); e > 1e-14 {
		t.Errorf("max |FᵀF − I| = %g", e)
	}
}

// TestStringCirculantTranslationInvariant: with a random c the logit of two
// patch tokens depends only on their position difference.
func TestStringCirculantTranslationInvariant(t *testing.T) {
	m, _ := circulantString(t, 8)
	l := rotLogits(t, m.PE, m.Cfg, 1, 1, rand.New(rand.NewPCG(8, 9)))
	for _, d := range [][2]int{{1, 0}, {0, 1}, {2, 1}} {
		if e := shiftDeviation(l, m.Cfg.Grid(), d[0], d[1]); e > 1e-12 {
			t.Errorf("shift %v changes a logit by %g", d, e)
		}
	}
}

// TestStringCirculantInit: c starts where the angles per unit position are
// rope-mixed's initial frequencies (same seed) for the pairs j ≥ 1, and 0
// for pair 0, which has eigenvalue 0.
func TestStringCirculantInit(t *testing.T) {
	cfg := tinyAttnConfig("string")
	cfg.Dim, cfg.PE.StringBasis = 16, "circulant"
	ms, err := NewViT[float64](cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	cfg.PE = PEConfig{Name: "rope-mixed"}
	mr, err := NewViT[float64](cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	ts, _, _ := AttentionPETablesOf(ms.PE)
	tr, _, _ := AttentionPETablesOf(mr.PE)
	half := 4
	for i, want := range tr["rope.freqs"].Data {
		if i%half == 0 {
			want = 0
		}
		if got := ts["rope.freqs"].Data[i]; math.Abs(got-want) > 1e-12 {
			t.Fatalf("frequency %d: %v, want %v", i, got, want)
		}
	}
	cfg.PE = PEConfig{Name: "string", StringBasis: "spiral"}
	if _, err := NewViT[float64](cfg, 5); err == nil || !strings.Contains(err.Error(), `-string-basis "spiral"`) {
		t.Errorf("unknown basis: err %v", err)
	}
}

// TestStringCirculantParamsTi16: at ViT-Ti/16 (12 layers, 3 heads, Dh 64)
// the circulant form holds c (12, 2·3, 64) = 4,608 parameters.
func TestStringCirculantParamsTi16(t *testing.T) {
	cfg, _ := Preset("ti16")
	cfg.Classes, cfg.PE = 1000, PEConfig{Name: "string", StringBasis: "circulant"}
	m, err := NewViT[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range m.PE.Params() {
		n += len(p.T.Data)
	}
	if n != 12*2*3*64 {
		t.Errorf("circulant string at ti16: %d parameters, want %d", n, 12*2*3*64)
	}
}
