package loope

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// peTestConfig returns a small ViT config with the given PE.
func peTestConfig(pe PEConfig) Config {
	return Config{Image: 8, Channels: 3, Patch: 2, Dim: 8, Depth: 1, Heads: 2, MLP: 16, Classes: 3, Eps: 1e-6, PE: pe}
}

// TestFixedPEsMatchFixedPE: every registered fixed PE adds exactly the
// FixedPE table (rounded once to T) to the tokens, for every frequency set,
// and has no parameters.
func TestFixedPEsMatchFixedPE(t *testing.T) {
	for _, name := range FixedPENames {
		for _, freqs := range []string{"", "f1", "f4"} {
			cfg := peTestConfig(PEConfig{Name: name, Freqs: freqs})
			cfg.Dim = 12
			m, err := NewViT[float32](cfg, 1)
			if err != nil {
				t.Fatalf("%s/%s: %v", name, freqs, err)
			}
			if ps := m.PE.Params(); len(ps) != 0 {
				t.Errorf("%s: %d params, want none", name, len(ps))
			}
			want, err := FixedPE(name, cfg.Dim, cfg.Grid(), cfg.Grid(), freqs)
			if err != nil {
				t.Fatal(err)
			}
			var tp Tape[float32]
			x := New[float32](2, cfg.Tokens(), cfg.Dim)
			x.Data[5] = 1 // the PE is added, not written
			got := m.PE.AddInput(&tp, x, New[float32](2, 3, 8, 8))
			for b := range 2 {
				for i, w := range want {
					v := float32(w)
					if b == 0 && i == 5 {
						v += 1
					}
					if g := got.Data[b*len(want)+i]; g != v {
						t.Fatalf("%s/%s: batch %d element %d = %v, want %v", name, freqs, b, i, g, v)
					}
				}
			}
		}
	}
}

func TestFixedPEErrors(t *testing.T) {
	for _, tc := range []struct {
		pe   PEConfig
		dim  int
		want string
	}{
		{PEConfig{Name: "sin1d", Freqs: "f9"}, 8, "unknown frequency set \"f9\""},
		{PEConfig{Name: "sincos2d"}, 6, "multiple of 4"},
		{PEConfig{Name: "hilbert"}, 7, "even"},
	} {
		cfg := peTestConfig(tc.pe)
		cfg.Dim, cfg.Heads = tc.dim, 1
		if _, err := NewViT[float64](cfg, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v dim %d: got %v, want an error containing %q", tc.pe, tc.dim, err, tc.want)
		}
	}
}

// TestPEParamCountsTi16 pins the per-PE parameter counts of docs/pe-zoo.md §15 for
// ViT-Ti/16 (D 192, 14×14 grid, RGB): LOOPE 96,531 per the authors' code
// (96,727 with the Linear bias), Fourier 31,904 (F 768, hidden 32), the
// fixed tables 0. They count trained parameters only: LOOPE's BatchNorm
// running statistics are buffers. Derivation for LOOPE: conv 5·32·16·16+32
// = 40,992; 32·16·25+16 = 12,816; 16·8·25+8 = 3,208; 8·4·25+4 = 804;
// 4·25+1 = 101; BatchNorm γ, β 2; Linear 196² = 38,416; CLS 192.
// With 1000 classes the whole model has timm's 5,717,416 − 37,824 (the
// learnable pos_embed) + the PE's count.
func TestPEParamCountsTi16(t *testing.T) {
	for _, tc := range []struct {
		pe   PEConfig
		want int
	}{
		{PEConfig{Name: "loope"}, 96531},
		{PEConfig{Name: "loope", LoopeBias: true}, 96727},
		{PEConfig{Name: "fourier"}, 31904},
		{PEConfig{Name: "hilbert"}, 0},
		{PEConfig{Name: "sincos2d-sum"}, 0},
	} {
		cfg, err := Preset("ti16")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Classes, cfg.PE = 1000, tc.pe
		m, err := NewViT[float32](cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range m.PE.Params() {
			if !p.Buffer {
				n += p.T.Size()
			}
		}
		if n != tc.want {
			t.Errorf("%+v: %d PE parameters, want %d", tc.pe, n, tc.want)
		}
		if got, want := m.NumParams(), 5717416-37824+tc.want; got != want {
			t.Errorf("%+v: model has %d parameters, want %d", tc.pe, got, want)
		}
	}
}

// modelFDCheck compares, for a few random coordinates of every trained PE
// parameter, the gradient of L = Σ logits⊙R (R fixed random) through the
// whole float64 model with a central difference (step 1e-6) of L. Every
// evaluation runs on a recording tape, so BatchNorm stays in training mode.
func modelFDCheck(t *testing.T, cfg Config, seed uint64, perParam int) {
	t.Helper()
	m, err := NewViT[float64](cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	x := New[float64](2, cfg.Channels, cfg.Image, cfg.Image).FillNormal(rng, 0, 1)
	r := New[float64](2, cfg.Classes).FillUniform(rng, -1, 1)
	loss := func(tp *Tape[float64]) *Tensor[float64] {
		return tp.Sum(tp.Mul(m.Forward(tp, x), r))
	}
	var tp Tape[float64]
	ZeroGrad(m.Trainable())
	tp.Backward(loss(&tp))
	eval := func() float64 {
		var tp Tape[float64]
		return loss(&tp).Data[0]
	}
	checked, live := 0, 0
	for _, p := range m.PE.Params() {
		if p.Buffer {
			continue
		}
		big := 0.0
		for range perParam {
			j := rng.IntN(p.T.Size())
			v := p.T.Data[j]
			const h = 1e-6
			p.T.Data[j] = v + h
			fp := eval()
			p.T.Data[j] = v - h
			fm := eval()
			p.T.Data[j] = v
			num, ana := (fp-fm)/(2*h), p.T.Grad[j]
			big = max(big, math.Abs(num))
			if !(math.Abs(ana-num) <= gradTol(num)) {
				t.Errorf("%s[%d]: analytic %.10g, numeric %.10g", p.Name, j, ana, num)
			}
			checked++
		}
		if big > 1e-6 {
			live++
		}
	}
	// Not vacuous: most PE tensors must have a clearly non-zero gradient.
	if checked == 0 || 2*live < checked/perParam {
		t.Errorf("%s: %d of %d PE tensors have a non-zero gradient at the checked coordinates", cfg.PE.Name, live, checked/perParam)
	}
}

// TestLearnablePEGradFD: float64 finite-difference checks of every
// learnable additive PE's parameters through the model.
func TestLearnablePEGradFD(t *testing.T) {
	for _, pe := range []PEConfig{
		{Name: "loope"},
		{Name: "loope", LoopeSquash: "tanh", LoopeAct: "relu", LoopeBias: true, Freqs: "f2"},
		{Name: "fourier", FourierDim: 16, FourierHidden: 6},
	} {
		t.Run(pe.Name+"/"+pe.LoopeAct, func(t *testing.T) {
			t.Parallel()
			modelFDCheck(t, peTestConfig(pe), 3, 12)
		})
	}
}
