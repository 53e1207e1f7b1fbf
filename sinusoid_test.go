package loope

import (
	"math"
	"slices"
	"testing"
)

func checkNear(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.7g, want %.7g (tol %g)", what, got, want, tol)
	}
}

func TestSinusoid1D(t *testing.T) {
	// docs/pe-zoo.md §5 test value, D=192, p=5.
	pe := Sinusoid1D([]float64{0, 1, 2, 3, 4, 5}, 192, nil)
	row := pe[5*192:]
	checkNear(t, "PE[5,0]", row[0], -0.958924, 1e-6)
	checkNear(t, "PE[5,1]", row[1], 0.283662, 1e-6)
	checkNear(t, "PE[5,2]", row[2], -0.985618, 1e-6)
	checkNear(t, "PE[5,3]", row[3], -0.168986, 1e-6)
	// Position 0 (CLS): sin 0 = 0, cos 0 = 1 in alternating dims (docs/paper.md §2.4).
	for i := range 192 {
		want := float64(i % 2)
		if pe[i] != want {
			t.Fatalf("PE[0,%d] = %g, want %g", i, pe[i], want)
		}
	}
	// Vaswani frequencies: ω_i = 10000^(−2i/D) (docs/pe-zoo.md §5).
	f := VaswaniFreqs(192)
	for i, w := range f {
		checkNear(t, "ω", w, math.Pow(10000, -2*float64(i)/192), 1e-15)
	}
	// Fractional positions (LOOPE's X_G + X_C) use the same formula.
	p := Sinusoid1D([]float64{2.25}, 8, []float64{1, 0.5, 0.25, 0.125})
	for i, w := range []float64{1, 0.5, 0.25, 0.125} {
		checkNear(t, "sin", p[2*i], math.Sin(2.25*w), 0)
		checkNear(t, "cos", p[2*i+1], math.Cos(2.25*w), 0)
	}
}

func TestOrderedSinusoid(t *testing.T) {
	// Raster order is the plain 1-D sinusoid over positions 0…N (docs/pe-zoo.md §6).
	const h, w, d = 5, 7, 32
	pos := make([]float64, h*w+1)
	for i := range pos {
		pos[i] = float64(i)
	}
	if !slices.Equal(OrderedSinusoid(Raster(h, w), d, nil), Sinusoid1D(pos, d, nil)) {
		t.Error("raster OrderedSinusoid != Sinusoid1D(0..N)")
	}
	// Gilbert ("Hilbert" baseline): CLS at 0, token t at X_G[t] = 1-based
	// curve index (docs/paper.md §2.2 grid: token 2 is X_G = 15).
	g := OrderedSinusoid(Gilbert(14, 14), d, nil)
	want := Sinusoid1D([]float64{15}, d, nil)
	if !slices.Equal(g[3*d:4*d], want) {
		t.Error("Gilbert OrderedSinusoid row of token 2 is not position 15")
	}
	if len(g) != 197*d {
		t.Errorf("len = %d, want 197·%d", len(g), d)
	}
}

func TestSinCos2D(t *testing.T) {
	// docs/pe-zoo.md §7 MAE test values, D=192, token (r=1, c=2).
	const d = 192
	pe := SinCos2D(d, 14, 14, nil)
	if len(pe) != 197*d {
		t.Fatalf("len = %d, want 197·192", len(pe))
	}
	for i := range d {
		if pe[i] != 0 {
			t.Fatal("CLS row is not zero")
		}
	}
	row := pe[(1+1*14+2)*d:]
	checkNear(t, "idx0", row[0], 0.909297, 1e-6)
	checkNear(t, "idx1", row[1], 0.996801, 1e-6)
	checkNear(t, "idx48", row[48], -0.416147, 1e-6)
	checkNear(t, "idx96", row[96], 0.841471, 1e-6)
	checkNear(t, "idx144", row[144], 0.540302, 1e-6)
	checkNear(t, "ω_1 (D/4 = 48 freqs)", VaswaniFreqs(d / 2)[1], 0.825404, 1e-6)
	// MoCo v3 (CLS row first) and timm (no CLS row), same token.
	moco := SinCos2DMoCo(d, 14, 14, nil)[(1+16)*d:]
	checkNear(t, "MoCo idx0", moco[0], 0.841471, 1e-6)
	checkNear(t, "MoCo idx48", moco[48], 0.540302, 1e-6)
	checkNear(t, "MoCo idx96", moco[96], 0.909297, 1e-6)
	checkNear(t, "MoCo idx144", moco[144], -0.416147, 1e-6)
	tm := SinCos2DTimm(d, 14, 14, nil)
	if len(tm) != 196*d {
		t.Fatalf("timm: len = %d, want 196·192", len(tm))
	}
	tm = tm[16*d:]
	checkNear(t, "timm idx48", tm[48], 0.909297, 1e-6)
	checkNear(t, "timm idx96", tm[96], 0.540302, 1e-6)
	checkNear(t, "timm idx144", tm[144], -0.416147, 1e-6)
}

func TestSinCos2DSum(t *testing.T) {
	// docs/pe-zoo.md §8: x = linspace(−1,1,w)[c], y = linspace(−1,1,h)[r],
	// PE[2i] = sin(xω_i)+sin(yω_i), PE[2i+1] = cos(xω_i)+cos(yω_i), CLS zero.
	const d = 16
	pe := SinCos2DSum(d, 3, 5, nil)
	f := VaswaniFreqs(d)
	for i := range d {
		if pe[i] != 0 {
			t.Fatal("CLS row is not zero")
		}
	}
	// Token (r=2, c=1): y = 1, x = −0.5.
	row := pe[(1+2*5+1)*d:]
	for i, w := range f {
		checkNear(t, "sin-sum", row[2*i], math.Sin(-0.5*w)+math.Sin(w), 1e-15)
		checkNear(t, "cos-sum", row[2*i+1], math.Cos(-0.5*w)+math.Cos(w), 1e-15)
	}
	// Centre of a 3×3 grid is (0, 0): [0, 2, 0, 2, …].
	c := SinCos2DSum(d, 3, 3, nil)[(1+4)*d:][:d]
	for i, v := range c {
		checkNear(t, "centre", v, float64(2*(i%2)), 0)
	}
}

func TestRopeFreqs(t *testing.T) {
	// docs/pe-zoo.md §14, head dim 64.
	ax := RopeAxialFreqs(64, 100)
	if len(ax) != 16 {
		t.Fatalf("axial: %d freqs, want 16", len(ax))
	}
	checkNear(t, "axial f_0", ax[0], 1, 0)
	checkNear(t, "axial f_1", ax[1], 0.749894, 1e-6)
	checkNear(t, "axial f_15", ax[15], 0.0133352, 1e-7)
	mg := RopeMixedMagnitudes(64, 10)
	checkNear(t, "mixed mag_0", mg[0], 1, 0)
	checkNear(t, "mixed mag_1", mg[1], 0.865964, 1e-6)
	checkNear(t, "mixed mag_15", mg[15], 0.115478, 1e-6)
	// 1-D RoPE θ_j = 10000^(−2j/d) is the Vaswani set over the head dim.
	r := Rope1DFreqs(64, 10000)
	v := VaswaniFreqs(64)
	for j := range r {
		checkNear(t, "rope1d", r[j], v[j], 1e-15)
	}
}

func TestFreqSet(t *testing.T) {
	// docs/paper.md §9 definitions, L = D = 768, first D/2 entries.
	const d = 768
	for _, name := range FreqSetNames {
		f, err := FreqSet(name, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(f) != d/2 {
			t.Fatalf("%s: %d entries, want %d", name, len(f), d/2)
		}
		for i := 1; i < len(f); i++ {
			if f[i] > f[i-1] || f[i] <= 0 || f[i] > 1 {
				t.Fatalf("%s: not descending in (0,1] at %d", name, i)
			}
		}
	}
	f1, _ := FreqSet("f1", d)
	checkNear(t, "f1(10)", f1[10], math.Pow(0.978, 10), 1e-15)
	f2, _ := FreqSet("f2", d)
	checkNear(t, "f2(0)", f2[0], 1, 0)
	checkNear(t, "f2(383)", f2[383], 1-383*0.9999/767, 1e-15)
	f3, _ := FreqSet("f3", d)
	checkNear(t, "f3(7)", f3[7], math.Pow(0.9, 7), 1e-15)
	v, _ := FreqSet("vaswani", d)
	if !slices.Equal(v, VaswaniFreqs(d)) {
		t.Error("vaswani set != VaswaniFreqs")
	}
	// f1 ≈ Vaswani geometric ratio 10000^(−2/768) ≈ 0.9763 (docs/paper.md §9).
	checkNear(t, "Vaswani ratio", v[1]/v[0], 0.9763, 1e-4)
	if _, err := FreqSet("f9", d); err == nil {
		t.Error("unknown set: want an error")
	}
	if _, err := FreqSet("f1", 7); err == nil {
		t.Error("odd dim: want an error")
	}
}
