package loope

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cifarRecord builds one record: the label bytes, then pixel j of plane c
// = (seed + 3·j + c) mod 256.
func cifarRecord(labels []byte, seed int) []byte {
	b := slices.Clone(labels)
	for c := range 3 {
		for j := range 1024 {
			b = append(b, byte(seed+3*j+c))
		}
	}
	return b
}

// writeCIFARFile writes n records to dir/name, record k with labels lab(k)
// and pixel seed k + off.
func writeCIFARFile(t *testing.T, dir, name string, n, off int, lab func(k int) []byte) {
	t.Helper()
	var b []byte
	for k := range n {
		b = append(b, cifarRecord(lab(k), k+off)...)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCIFAR10Generated(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "cifar-10-batches-bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lab := func(k int) []byte { return []byte{byte(k % 10)} }
	for b := 1; b <= 5; b++ {
		writeCIFARFile(t, dir, "data_batch_"+string(rune('0'+b))+".bin", 3, 100*b, lab)
	}
	writeCIFARFile(t, dir, "test_batch.bin", 4, 0, lab)
	names := "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
	if err := os.WriteFile(filepath.Join(dir, "batches.meta.txt"), []byte(names), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadCIFAR(root, false, true, false) // the parent folder is found too
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 15 || s.C != 3 || s.H != 32 || s.W != 32 || s.Classes != 10 {
		t.Fatalf("N %d C %d H %d W %d K %d", s.N, s.C, s.H, s.W, s.Classes)
	}
	if len(s.Names) != 10 || s.Names[9] != "truck" {
		t.Errorf("names %v", s.Names)
	}
	for b := 1; b <= 5; b++ {
		for k := range 3 {
			i := 3*(b-1) + k
			if want := cifarRecord(lab(k), 100*b+k)[1:]; !bytes.Equal(s.Image(i), want) {
				t.Fatalf("batch %d record %d: pixels differ", b, k)
			}
			if s.Labels[i] != int32(k%10) {
				t.Fatalf("batch %d record %d: label %d", b, k, s.Labels[i])
			}
		}
	}
	// The planes are R, G, B: pixel (y, x) of channel c sits at c·1024 + 32y + x.
	img, target := make([]float32, 3072), make([]float32, 1)
	s.Example(4, img, target)
	lut := s.table()
	for c := range 3 {
		p := cifarRecord(nil, 100*2+1)[c*1024+32*5+7]
		if img[c*1024+32*5+7] != lut[c*256+int(p)] {
			t.Errorf("channel %d: got %v, want %v", c, img[c*1024+32*5+7], lut[c*256+int(p)])
		}
	}
	test, err := LoadCIFAR(dir, false, false, false)
	if err != nil || test.N != 4 {
		t.Fatalf("test split: %v, %v", test, err)
	}
}

func TestLoadCIFAR100Generated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lab := func(k int) []byte { return []byte{byte(k % 20), byte((k * 7) % 100)} }
	writeCIFARFile(t, dir, "train.bin", 30, 0, lab)
	writeCIFARFile(t, dir, "test.bin", 2, 0, lab)
	fine, err := LoadCIFAR(dir, true, true, false)
	if err != nil {
		t.Fatal(err)
	}
	coarse, err := LoadCIFAR(dir, true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if fine.Classes != 100 || coarse.Classes != 20 || fine.N != 30 {
		t.Fatalf("classes %d/%d, N %d", fine.Classes, coarse.Classes, fine.N)
	}
	for k := range 30 {
		if fine.Labels[k] != int32(k*7%100) || coarse.Labels[k] != int32(k%20) {
			t.Fatalf("record %d: fine %d coarse %d", k, fine.Labels[k], coarse.Labels[k])
		}
		if !bytes.Equal(fine.Image(k), cifarRecord(nil, k)) {
			t.Fatalf("record %d: pixels differ", k)
		}
	}
	if !slices.Equal(fine.Mean, CIFAR100Mean) {
		t.Errorf("mean %v, want %v", fine.Mean, CIFAR100Mean)
	}
}

func TestCIFARErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec := cifarRecord([]byte{3}, 0)
	if err := os.WriteFile(filepath.Join(dir, "test_batch.bin"), append(slices.Clone(rec), rec[:100]...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadCIFAR(dir, false, false, false)
	want := "test_batch.bin: size 3173 is not a multiple of the 3073-byte record (truncated?)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("truncated: got %v, want %q", err, want)
	}
	bad := slices.Concat(rec, cifarRecord([]byte{10}, 1))
	if err := os.WriteFile(filepath.Join(dir, "test_batch.bin"), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadCIFAR(dir, false, false, false)
	if err == nil || !strings.Contains(err.Error(), "test_batch.bin: record 1: label 10 out of range [0, 10)") {
		t.Errorf("label 10: got %v", err)
	}
	if _, err := LoadCIFAR(dir, false, true, false); err == nil || !strings.Contains(err.Error(), "data_batch_1.bin") {
		t.Errorf("missing file: got %v", err)
	}
	for _, tc := range []struct {
		labels []byte
		want   string
	}{
		{[]byte{20, 0}, "record 0: coarse label 20 out of range [0, 20)"},
		{[]byte{0, 100}, "record 0: fine label 100 out of range [0, 100)"},
	} {
		if _, err := parseCIFAR("x.bin", cifarRecord(tc.labels, 0), true, false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("labels %v: got %v, want %q", tc.labels, err, tc.want)
		}
	}
	if _, err := parseCIFAR("x.bin", nil, false, false); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: got %v", err)
	}
}

// FuzzCIFAR: the record parser on arbitrary bytes, both formats, never
// panics; on success it holds size/record images whose pixels are the
// record bytes and whose labels are in range.
func FuzzCIFAR(f *testing.F) {
	f.Add(cifarRecord([]byte{3}, 0), false, false)
	f.Add(slices.Concat(cifarRecord([]byte{9}, 1), cifarRecord([]byte{0}, 2)), false, false)
	f.Add(cifarRecord([]byte{19, 99}, 0), true, false)
	f.Add(cifarRecord([]byte{19, 99}, 0), true, true)
	f.Add(cifarRecord([]byte{10}, 0), false, false)
	f.Add(cifarRecord([]byte{7}, 0)[:3000], false, false)
	f.Add([]byte{}, true, false)
	f.Fuzz(func(t *testing.T, raw []byte, hundred, coarse bool) {
		s, err := parseCIFAR("fuzz", raw, hundred, coarse)
		if err != nil {
			if s != nil {
				t.Fatal("non-nil set with an error")
			}
			return
		}
		rec := newCIFARFormat(hundred, coarse).record()
		if s.N*rec != len(raw) || len(s.Pix) != s.N*cifarPixels {
			t.Fatalf("%d bytes gave %d images", len(raw), s.N)
		}
		for i := range s.N {
			if !bytes.Equal(s.Image(i), raw[i*rec+rec-cifarPixels:(i+1)*rec]) {
				t.Fatalf("record %d: pixels differ", i)
			}
			if s.Labels[i] < 0 || int(s.Labels[i]) >= s.Classes {
				t.Fatalf("record %d: label %d of %d", i, s.Labels[i], s.Classes)
			}
		}
	})
}
