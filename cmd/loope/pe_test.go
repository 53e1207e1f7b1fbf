package main

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loope-go/loope"
)

// readPETable runs `loope pe args -out tmp` and returns its tensors.
func readPETable(t *testing.T, args ...string) (pe []float64, shape []int, positions []float64, stderr string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "pe.safetensors")
	var err error
	stderr = captureStderr(t, func() { err = runPE(append(args, "-out", out)) })
	if err != nil {
		t.Fatalf("loope pe %v: %v", args, err)
	}
	f, err := loope.ReadSafeFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if pe, shape, err = loope.GetFloat[float64](f, "pe"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Tensors["positions"]; ok {
		positions, _, _ = loope.GetFloat[float64](f, "positions")
	}
	return pe, shape, positions, stderr
}

func TestPECommandFixed(t *testing.T) {
	pe, shape, _, _ := readPETable(t, "-pe", "sincos2d", "-dim", "16", "-grid", "3x5", "-freqs", "f1")
	want, err := loope.FixedPE("sincos2d", 16, 3, 5, "f1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shape, []int{16, 16}) || !slices.Equal(pe, want) {
		t.Errorf("shape %v, table equal %v; want [16 16] and FixedPE's table", shape, slices.Equal(pe, want))
	}
}

// TestPECommandLoope: without an image X_C = 0 (the Gilbert sinusoid under
// a zero CLS row, and a note on stderr); with a Three-Cell image the patch
// rows are the sinusoid of the written positions, which differ from X_G by
// less than 1.
func TestPECommandLoope(t *testing.T) {
	pe, shape, pos, msg := readPETable(t, "-pe", "loope", "-dim", "8", "-grid", "4", "-patch", "2")
	want, _ := loope.FixedPE("hilbert", 8, 4, 4, "")
	clear(want[:8])
	if !slices.Equal(shape, []int{17, 8}) || !slices.Equal(pe, want) {
		t.Errorf("X_C = 0: shape %v, table equal %v", shape, slices.Equal(pe, want))
	}
	if !strings.Contains(msg, "X_C = 0") {
		t.Errorf("stderr %q does not say X_C = 0", msg)
	}
	xg := loope.OrderPositions(loope.Gilbert(4, 4))[1:]
	if !slices.Equal(pos, xg) {
		t.Errorf("positions %v, want X_G %v", pos, xg)
	}

	pe, _, pos, _ = readPETable(t, "-pe", "loope", "-dim", "8", "-grid", "4", "-patch", "2", "-threecell-seed", "2", "-threecell-index", "1")
	same := true
	for i, x := range pos {
		if math.Abs(x-xg[i]) >= 1 {
			t.Fatalf("position %d = %v, X_G %v: |X_C| >= 1", i, x, xg[i])
		}
		same = same && x == xg[i]
	}
	if same {
		t.Error("Three-Cell context gave X_C = 0 everywhere")
	}
	rows := loope.Sinusoid1D(pos, 8, nil)
	for i, v := range rows {
		if math.Abs(pe[8+i]-v) > 1e-12 {
			t.Fatalf("pe element %d = %v, want %v", 8+i, pe[8+i], v)
		}
	}
}

func TestPECommandErrors(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.png")
	im := image.NewRGBA(image.Rect(0, 0, 5, 5))
	im.Set(1, 1, color.RGBA{255, 0, 0, 255})
	fh, err := os.Create(small)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(fh, im); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	out := filepath.Join(dir, "x.safetensors")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-pe", "rope-axial", "-grid", "3x4"}, "needs a square grid"},
		{[]string{"-pe", "rope-axial", "-heads", "5"}, "not divisible by heads 5"},
		{[]string{"-pe", "fourier", "-grid", "3x4"}, "needs a square grid"},
		{[]string{"-pe", "sin1d", "-image-file", small}, "apply to -pe loope only"},
		{[]string{"-pe", "loope", "-grid", "4", "-patch", "2", "-image-file", small}, "want exactly 8x8"},
		{[]string{"-pe", "sin1d", "-loope-act", "relu"}, "-loope-act does not apply to -pe sin1d"},
		{[]string{"-pe", "fourier", "-freqs", "f1"}, "-freqs does not apply to -pe fourier"},
		{[]string{"-grid", "4x"}, "want G or HxW"},
		{[]string{"-ckpt", "x.safetensors", "-dim", "8"}, "drop -dim"},
	} {
		var err error
		msg := captureStderr(t, func() { err = runPE(append(tc.args, "-out", out)) })
		if err == nil || !strings.Contains(err.Error()+msg, tc.want) { // usage errors say why on stderr
			t.Errorf("%v: got %v (stderr %q), want an error containing %q", tc.args, err, msg, tc.want)
		}
	}
}

// TestPECommandAttentionTables: attention-side PEs write their tables under
// descriptive names with an explanation instead of an additive table.
func TestPECommandAttentionTables(t *testing.T) {
	out := filepath.Join(t.TempDir(), "rope.safetensors")
	var err error
	captureStderr(t, func() {
		err = runPE([]string{"-pe", "rope-axial", "-dim", "64", "-heads", "2", "-grid", "5", "-out", out})
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := loope.ReadSafeFile(out)
	if err != nil {
		t.Fatal(err)
	}
	angles, shape, err := loope.GetFloat[float64](f, "rope.angles")
	if err != nil {
		t.Fatal(err)
	}
	want := loope.RopeAxialAngles(32, 5, loope.RopeAxialTheta)
	if len(shape) != 2 || shape[0] != 25 || shape[1] != 16 || len(angles) != len(want) {
		t.Fatalf("rope.angles shape %v, want (25, 16)", shape)
	}
	for i := range want {
		if angles[i] != want[i] {
			t.Fatalf("rope.angles[%d] = %v, want %v", i, angles[i], want[i])
		}
	}
	if !strings.Contains(f.Metadata["explanation"], "rotate") {
		t.Errorf("explanation %q does not explain the rotation", f.Metadata["explanation"])
	}
}

// TestPECommandCheckpoint: -ckpt takes PE, grid and weights from the file.
func TestPECommandCheckpoint(t *testing.T) {
	cfg := loope.Config{Image: 8, Channels: 3, Patch: 2, Dim: 8, Depth: 1, Heads: 2, MLP: 8, Classes: 6, Eps: 1e-6,
		PE: loope.PEConfig{Name: "loope", Freqs: "f3"}}
	m, err := loope.NewViT[float64](cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	var cls []float64
	for _, p := range m.Params() {
		if p.Name == "pos_embed.cls_token" {
			for i := range p.T.Data {
				p.T.Data[i] = float64(i) + 0.5
			}
			cls = p.T.Data
		}
	}
	path := filepath.Join(t.TempDir(), "ck.safetensors")
	if err := loope.SaveCheckpoint(path, m, nil); err != nil {
		t.Fatal(err)
	}
	pe, shape, _, _ := readPETable(t, "-ckpt", path)
	want, _ := loope.FixedPE("hilbert", 8, 4, 4, "f3")
	copy(want, cls)
	if !slices.Equal(shape, []int{17, 8}) || !slices.Equal(pe, want) {
		t.Errorf("shape %v, table equal %v; want [17 8], CLS row from the checkpoint over the f3 Gilbert sinusoid", shape, slices.Equal(pe, want))
	}
}
