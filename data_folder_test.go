package loope

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeImage encodes img as PNG or JPEG (quality 100) to path.
func writeImage(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var err error
	if strings.HasSuffix(strings.ToLower(path), ".png") {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// solid returns a w×h NRGBA image of one colour.
func solid(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func TestLoadFolder(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	red, blue := color.NRGBA{200, 10, 20, 255}, color.NRGBA{5, 30, 250, 255}
	writeImage(t, filepath.Join(root, "b_red", "one.PNG"), solid(10, 6, red))
	writeImage(t, filepath.Join(root, "b_red", "sub", "two.jpeg"), solid(8, 8, red))
	writeImage(t, filepath.Join(root, "a_blue", "x.jpg"), solid(5, 9, blue))
	writeImage(t, filepath.Join(root, "a_blue", ".hidden.png"), solid(5, 5, red))
	writeImage(t, filepath.Join(root, ".hiddenclass", "y.png"), solid(5, 5, red))
	if err := os.WriteFile(filepath.Join(root, "a_blue", "notes.txt"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	gray := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range gray.Pix {
		gray.Pix[i] = 90
	}
	writeImage(t, filepath.Join(root, "c_gray", "g.png"), gray)

	s, err := LoadFolder(root, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Names, []string{"a_blue", "b_red", "c_gray"}) {
		t.Fatalf("classes %v", s.Names)
	}
	if s.N != 4 || !slices.Equal(s.Labels, []int32{0, 1, 1, 2}) {
		t.Fatalf("N %d labels %v, want 4 and [0 1 1 2]", s.N, s.Labels)
	}
	// Solid images stay solid through resize and crop; PNG is exact, JPEG
	// within a few levels (chroma subsampling and quantisation).
	check := func(i int, c color.NRGBA, tol int) {
		t.Helper()
		img := s.Image(i)
		for ch, want := range []uint8{c.R, c.G, c.B} {
			for _, p := range img[ch*16 : (ch+1)*16] {
				if d := int(p) - int(want); d < -tol || d > tol {
					t.Fatalf("image %d channel %d: %d, want %d±%d", i, ch, p, want, tol)
				}
			}
		}
	}
	check(0, blue, 6)
	check(1, red, 0)
	check(2, red, 6)
	check(3, color.NRGBA{90, 90, 90, 255}, 0)
}

func TestLoadFolderCentreCrop(t *testing.T) {
	t.Parallel()
	// A 12×4 PNG (wide) whose columns 4..7 are white and the rest black:
	// shortest side 4 → no scaling, the centre crop keeps exactly columns 4..7.
	root := t.TempDir()
	img := image.NewGray(image.Rect(0, 0, 12, 4))
	for y := range 4 {
		for x := 4; x < 8; x++ {
			img.Pix[y*12+x] = 255
		}
	}
	writeImage(t, filepath.Join(root, "k", "a.png"), img)
	s, err := LoadFolder(root, 4)
	if err != nil {
		t.Fatal(err)
	}
	for j, p := range s.Pix {
		if p != 255 {
			t.Fatalf("byte %d = %d, want 255 (the white centre)", j, p)
		}
	}
	// Downscaled by 2 (shortest side 4 → 2): columns 2..3 of the 6×2 result,
	// i.e. source columns 4..7 again.
	s2, err := LoadFolder(root, 2)
	if err != nil {
		t.Fatal(err)
	}
	for j, p := range s2.Pix {
		if p != 255 {
			t.Fatalf("size 2: byte %d = %d, want 255", j, p)
		}
	}
}

func TestLoadFolderErrors(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeImage(t, filepath.Join(root, "a", "ok.png"), solid(4, 4, color.NRGBA{1, 2, 3, 255}))
	var buf bytes.Buffer
	if err := png.Encode(&buf, solid(16, 16, color.NRGBA{9, 9, 9, 255})); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(root, "a", "trunc.png")
	if err := os.WriteFile(truncated, buf.Bytes()[:buf.Len()-20], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFolder(root, 4); err == nil || !strings.Contains(err.Error(), truncated) {
		t.Errorf("truncated PNG: got %v, want an error naming %s", err, truncated)
	}
	garbage := filepath.Join(root, "a", "trunc.png")
	if err := os.WriteFile(garbage, []byte("\xff\xd8\xffgarbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFolder(root, 4); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Errorf("corrupt file: got %v, want an error naming %s", err, garbage)
	}
	os.Remove(garbage)
	if err := os.Mkdir(filepath.Join(root, "b_empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFolder(root, 4); err == nil || !strings.Contains(err.Error(), `"b_empty" has no`) {
		t.Errorf("empty class: got %v", err)
	}
	if _, err := LoadFolder(t.TempDir(), 4); err == nil || !strings.Contains(err.Error(), "no class subfolders") {
		t.Errorf("no classes: got %v", err)
	}
	// A tiny PNG header declaring a huge image fails before decoding.
	var big bytes.Buffer
	png.Encode(&big, image.NewGray(image.Rect(0, 0, 1, 1)))
	hdr := big.Bytes()
	// IHDR: length 8..11, type 12..15, width 16..19, height 20..23, ..., CRC
	// of type and data 29..32. Declare 2^20 × 2^20 with a valid CRC.
	hdr[17], hdr[21] = 0x10, 0x10
	hdr[18], hdr[19], hdr[22], hdr[23] = 0, 0, 0, 0
	binary.BigEndian.PutUint32(hdr[29:], crc32.ChecksumIEEE(hdr[12:29]))
	err := decodeImage(make([]uint8, 3), "huge.png", hdr, 1)
	if err == nil || !strings.Contains(err.Error(), "huge.png: 1048576×1048576 pixels") {
		t.Errorf("huge header: got %v", err)
	}
}
