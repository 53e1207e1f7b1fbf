package loope

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestRopeAngles pins the angle of known (token, pair) entries on the
// 14×14 grid with Dh = 64, from the docs/pe-zoo.md §14 frequencies: axial f_1 =
// 0.749894, f_15 = 0.0133352 (θ 100); 1-D θ_1 = 10000^(−2/64) = 0.749894.
func TestRopeAngles(t *testing.T) {
	ax := RopeAxialAngles(64, 14, RopeAxialTheta)
	// Token t = 31 is row 2, column 3.
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"axial t=31 pair 1 (x)", ax[31*32+1], 3 * 0.749894},
		{"axial t=31 pair 31 (y, f_15)", ax[31*32+31], 2 * 0.0133352},
		{"axial t=31 pair 16 (y, f_0)", ax[31*32+16], 2},
		{"1d p=5 pair 1", Rope1DAngles(64, 196, Rope1DTheta)[5*32+1], 5 * 0.749894},
	} {
		if math.Abs(tc.got-tc.want) > 1e-5 {
			t.Errorf("%s: %.7f, want %.7f", tc.name, tc.got, tc.want)
		}
	}
}

// TestRopeMixedInit checks init_random_2d_freqs: per layer and head the
// pairs j and Dh/4+j have magnitude mag_j (mag_1 = 0.865964 at θ 10,
// Dh = 64, docs/pe-zoo.md §14) and orthogonal directions.
func TestRopeMixedInit(t *testing.T) {
	const dh, heads, depth = 64, 3, 2
	f := RopeMixedInit(dh, heads, depth, RopeMixedTheta, rand.New(rand.NewPCG(1, 1)))
	half, q := dh/2, dh/4
	fy := f[depth*heads*half:]
	mag := RopeMixedMagnitudes(dh, RopeMixedTheta)
	if math.Abs(mag[1]-0.865964) > 1e-6 {
		t.Errorf("mag_1 = %v, want 0.865964", mag[1])
	}
	for lh := range depth * heads {
		o := lh * half
		for j := range q {
			a := math.Hypot(f[o+j], fy[o+j])
			b := math.Hypot(f[o+q+j], fy[o+q+j])
			dot := f[o+j]*f[o+q+j] + fy[o+j]*fy[o+q+j]
			if math.Abs(a-mag[j]) > 1e-12 || math.Abs(b-mag[j]) > 1e-12 || math.Abs(dot) > 1e-12 {
				t.Fatalf("layer·head %d pair %d: |F| %v, %v, dot %v; want %v, %v, 0", lh, j, a, b, dot, mag[j], mag[j])
			}
		}
	}
}

// TestRopeRotateQK checks that every rope variant leaves CLS (token 0)
// unchanged and rotates pair j of patch token t of q and k by the exported
// angle (for rope-mixed the export evaluates t_x·Fx + t_y·Fy in float64,
// apart from the tape ops RotateQK builds the angles with).
func TestRopeRotateQK(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	for _, name := range []string{"rope-axial", "rope-mixed", "rope-1d"} {
		cfg := tinyAttnConfig(name)
		m, err := NewViT[float64](cfg, 4)
		if err != nil {
			t.Fatal(err)
		}
		tables, _, err := AttentionPETablesOf(m.PE)
		if err != nil {
			t.Fatal(err)
		}
		n, h, dh := cfg.Tokens(), cfg.Heads, cfg.Dim/cfg.Heads
		half := dh / 2
		q := New[float64](2, h, n, dh).FillUniform(rng, -1, 1)
		k := New[float64](2, h, n, dh).FillUniform(rng, -1, 1)
		var tp Tape[float64]
		const layer = 1
		qr, kr := m.PE.RotateQK(&tp, layer, q, k)
		for _, xs := range [][2]*Tensor[float64]{{q, qr}, {k, kr}} {
			x, y := xs[0], xs[1]
			for b := range 2 {
				for hh := range h {
					for tok := range n {
						for j := range half {
							o := ((b*h+hh)*n+tok)*dh + 2*j
							a, c := x.Data[o], x.Data[o+1]
							var want0, want1 float64
							if tok == 0 {
								want0, want1 = a, c
							} else {
								var ang float64
								if name == "rope-mixed" {
									ang = tables["rope.angles.layer1"].Data[(hh*(n-1)+tok-1)*half+j]
								} else {
									ang = tables["rope.angles"].Data[(tok-1)*half+j]
								}
								s, co := math.Sincos(ang)
								want0, want1 = a*co-c*s, a*s+c*co
							}
							if math.Abs(y.Data[o]-want0) > 1e-12 || math.Abs(y.Data[o+1]-want1) > 1e-12 {
								t.Fatalf("%s: b %d head %d token %d pair %d: (%v, %v), want (%v, %v)",
									name, b, hh, tok, j, y.Data[o], y.Data[o+1], want0, want1)
							}
						}
					}
				}
			}
		}
	}
}

// TestRopeHeadDim: the 2-D variants need Dh % 4 == 0.
func TestRopeHeadDim(t *testing.T) {
	cfg := tinyAttnConfig("rope-axial")
	cfg.Dim, cfg.Heads = 12, 2 // Dh = 6
	for _, name := range []string{"rope-axial", "rope-mixed"} {
		cfg.PE.Name = name
		if _, err := NewViT[float32](cfg, 1); err == nil || !strings.Contains(err.Error(), "multiple of 4") {
			t.Errorf("%s with Dh = 6: got %v, want a head-dim error", name, err)
		}
	}
	cfg.PE.Name = "rope-1d"
	if _, err := NewViT[float32](cfg, 1); err != nil {
		t.Errorf("rope-1d with Dh = 6: %v", err)
	}
}
