package loope

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// idxBytes builds an IDX file: magic, the sizes big-endian, then payload.
func idxBytes(magic uint32, dims []uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, payload...)
}

// gzipBytes gzips b.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// writeMNIST writes an image and a label IDX file (gzipped if gz) for
// images n×h×w with pixel i of image k = (k·7 + i) mod 256 and labels k mod 10.
func writeMNIST(t *testing.T, dir, prefix string, n, h, w int, gz bool) {
	t.Helper()
	pix := make([]byte, n*h*w)
	lab := make([]byte, n)
	for k := range n {
		for i := range h * w {
			pix[k*h*w+i] = byte(k*7 + i)
		}
		lab[k] = byte(k % 10)
	}
	img := idxBytes(idxMagicImages, []uint32{uint32(n), uint32(h), uint32(w)}, pix)
	lbl := idxBytes(idxMagicLabels, []uint32{uint32(n)}, lab)
	suffix := ""
	if gz {
		img, lbl, suffix = gzipBytes(img), gzipBytes(lbl), ".gz"
	}
	if err := os.WriteFile(filepath.Join(dir, prefix+"-images-idx3-ubyte"+suffix), img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, prefix+"-labels-idx1-ubyte"+suffix), lbl, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadMNISTGenerated(t *testing.T) {
	t.Parallel()
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		writeMNIST(t, dir, "train", 12, 28, 28, gz)
		writeMNIST(t, dir, "t10k", 5, 28, 28, gz)
		for _, train := range []bool{true, false} {
			s, err := LoadMNIST(dir, train)
			if err != nil {
				t.Fatalf("gz %v train %v: %v", gz, train, err)
			}
			want := 5
			if train {
				want = 12
			}
			if s.N != want || s.C != 1 || s.H != 28 || s.W != 28 || s.Classes != 10 {
				t.Fatalf("gz %v train %v: N %d C %d H %d W %d K %d", gz, train, s.N, s.C, s.H, s.W, s.Classes)
			}
			for k := range s.N {
				if s.Labels[k] != int32(k%10) {
					t.Fatalf("label %d: %d, want %d", k, s.Labels[k], k%10)
				}
				if s.Image(k)[100] != byte(k*7+100) {
					t.Fatalf("image %d pixel 100: %d, want %d", k, s.Image(k)[100], byte(k*7+100))
				}
			}
		}
	}
}

// idxBad is a table of malformed IDX inputs and the error text each must give.
var idxBad = []struct {
	name  string
	magic uint32
	raw   []byte
	want  string
}{
	{"empty", idxMagicImages, nil, "reading magic: file truncated"},
	{"short magic", idxMagicImages, []byte{0, 0, 8}, "reading magic: file truncated"},
	{"labels as images", idxMagicImages, idxBytes(idxMagicLabels, []uint32{1}, []byte{1}), "magic 0x00000801, want 0x00000803"},
	{"int type", idxMagicLabels, idxBytes(0x00000c01, []uint32{1}, []byte{1, 2, 3, 4}), "magic 0x00000c01, want 0x00000801"},
	{"short sizes", idxMagicImages, idxBytes(idxMagicImages, []uint32{1, 2}, nil), "reading 3 sizes: file truncated"},
	{"zero size", idxMagicImages, idxBytes(idxMagicImages, []uint32{1, 0, 2}, nil), "size 1 is 0"},
	{"truncated", idxMagicImages, idxBytes(idxMagicImages, []uint32{2, 2, 2}, make([]byte, 7)), "truncated: sizes [2 2 2] declare 8 bytes of data, file has 7"},
	{"trailing", idxMagicImages, idxBytes(idxMagicImages, []uint32{2, 2, 2}, make([]byte, 9)), "trailing data: sizes [2 2 2] declare 8 bytes of data, file has 9"},
	{"huge count", idxMagicImages, idxBytes(idxMagicImages, []uint32{1 << 31, 28, 28}, make([]byte, 88)), "declare 1683627180032 bytes of data, file has 88"},
	{"overflow", idxMagicImages, idxBytes(idxMagicImages, []uint32{1<<32 - 1, 1<<32 - 1, 1<<32 - 1}, nil), "overflow"},
}

func TestParseIDXErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range idxBad {
		_, err := parseIDX("f.idx", tc.raw, tc.magic, idxMaxBytes)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "f.idx") {
			t.Errorf("%s: got %v, want an error naming f.idx containing %q", tc.name, err, tc.want)
		}
		if len(tc.raw) == 0 {
			continue
		}
		// The gzipped file must fail too, naming the file.
		_, err = parseIDX("f.idx.gz", gzipBytes(tc.raw), tc.magic, idxMaxBytes)
		if err == nil || !strings.Contains(err.Error(), "f.idx.gz") {
			t.Errorf("%s gzipped: got %v, want an error naming f.idx.gz", tc.name, err)
		}
	}
	good := gzipBytes(idxBytes(idxMagicLabels, []uint32{3}, []byte{1, 2, 3}))
	bad := slices.Clone(good)
	bad[len(bad)-8] ^= 1 // CRC-32 in the gzip trailer
	if _, err := parseIDX("c.gz", bad, idxMagicLabels, idxMaxBytes); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("gzip CRC error: got %v", err)
	}
	if _, err := parseIDX("c.gz", good[:len(good)-3], idxMagicLabels, idxMaxBytes); err == nil {
		t.Error("truncated gzip trailer accepted")
	}
	if _, err := parseIDX("c.gz", good, idxMagicLabels, 2); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("payload above maxBytes: got %v", err)
	}
}

func TestMNISTShapeErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("train-images-idx3-ubyte", idxBytes(idxMagicImages, []uint32{2, 1, 1}, []byte{0, 1}))
	write("train-labels-idx1-ubyte", idxBytes(idxMagicLabels, []uint32{3}, []byte{0, 1, 2}))
	if _, err := LoadMNIST(dir, true); err == nil || !strings.Contains(err.Error(), "holds 2 images but") {
		t.Errorf("count mismatch: got %v", err)
	}
	write("train-labels-idx1-ubyte", idxBytes(idxMagicLabels, []uint32{2}, []byte{3, 10}))
	if _, err := LoadMNIST(dir, true); err == nil || !strings.Contains(err.Error(), "label 10 of record 1") {
		t.Errorf("label 10: got %v", err)
	}
	if _, err := LoadMNIST(dir, false); err == nil || !strings.Contains(err.Error(), "t10k-images-idx3-ubyte.gz") {
		t.Errorf("missing files: got %v", err)
	}
}

// TestIDXHostileHeaderFailsFast: a 100-byte file declaring 2^31 images must
// fail before allocating anything near its declared size, plain or gzipped.
func TestIDXHostileHeaderFailsFast(t *testing.T) {
	raw := idxBytes(idxMagicImages, []uint32{1 << 31, 28, 28}, make([]byte, 84))
	if len(raw) != 100 {
		t.Fatalf("file is %d bytes", len(raw))
	}
	for _, in := range [][]byte{raw, gzipBytes(raw)} {
		allocated := allocatedBy(func() {
			if _, err := parseIDX("hostile", in, idxMagicImages, idxMaxBytes); err == nil {
				t.Error("hostile header accepted")
			}
		})
		if allocated > 1<<20 {
			t.Errorf("hostile header allocated %d bytes", allocated)
		}
	}
}

// allocatedBy returns the bytes allocated while fn runs.
func allocatedBy(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// mnistRealMD5 are the MD5 sums of the four original gzipped files, as listed
// in torchvision.datasets.MNIST.resources.
var mnistRealMD5 = map[string]string{
	"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
	"train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
	"t10k-images-idx3-ubyte.gz":  "9fb629c4189551a2d022fa330f9573f3",
	"t10k-labels-idx1-ubyte.gz":  "ec29112dd5afa0611ce80d1b7f02629c",
}

// TestMNISTReal reads the real files from the GoMNIST module, if present.
// Expected values: the first labels and per-class counts are those printed
// by every MNIST tutorial (train starts 5 0 4 1 9 2 1 3 1 4, test 7 2 1 0 4
// 1 4 9 5 9; e.g. the TensorFlow and PyTorch docs); the training pixel mean
// and std must round to the normalisation constants MNISTMean, MNISTStd.
func TestMNISTReal(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skipping the real MNIST files")
	}
	dir, err := MNISTDir()
	if err != nil {
		t.Skipf("real MNIST unavailable (%v)", err)
	}
	for name, want := range mnistRealMD5 {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if sum := md5.Sum(b); hex.EncodeToString(sum[:]) != want {
			t.Errorf("%s: md5 %x, want %s", name, sum, want)
		}
	}
	for _, tc := range []struct {
		train  bool
		n      int
		first  []int32
		counts []int
	}{
		{true, 60000, []int32{5, 0, 4, 1, 9, 2, 1, 3, 1, 4}, []int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}},
		{false, 10000, []int32{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}, []int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}},
	} {
		s, err := LoadMNIST(dir, tc.train)
		if err != nil {
			t.Fatal(err)
		}
		if s.N != tc.n || s.H != 28 || s.W != 28 || s.C != 1 {
			t.Fatalf("train %v: %d images %d×%d×%d, want %d of 1×28×28", tc.train, s.N, s.C, s.H, s.W, tc.n)
		}
		if !slices.Equal(s.Labels[:10], tc.first) {
			t.Errorf("train %v: first labels %v, want %v", tc.train, s.Labels[:10], tc.first)
		}
		if got := s.ClassCounts(); !slices.Equal(got, tc.counts) {
			t.Errorf("train %v: class counts %v, want %v", tc.train, got, tc.counts)
		}
		if !tc.train {
			continue
		}
		var sum, sq float64
		for _, p := range s.Pix {
			v := float64(p) / 255
			sum += v
			sq += v * v
		}
		n := float64(len(s.Pix))
		mean := sum / n
		std := math.Sqrt(sq/n - mean*mean)
		if math.Round(mean*1e4) != MNISTMean*1e4 || math.Round(std*1e4) != MNISTStd*1e4 {
			t.Errorf("pixel mean %.6f std %.6f, want %.4f and %.4f", mean, std, MNISTMean, MNISTStd)
		}
		t.Logf("train pixel mean %.6f std %.6f", mean, std)
		// The model-side view: 3 channels, 14×14 (tiny preset), normalised.
		r, err := s.Resized(14)
		if err != nil {
			t.Fatal(err)
		}
		r3, err := r.WithChannels(3)
		if err != nil {
			t.Fatal(err)
		}
		img, target := make([]float32, 3*14*14), make([]float32, 1)
		r3.Example(0, img, target)
		if want := (0 - MNISTMean) / MNISTStd; target[0] != 5 || img[0] != img[196] || math.Abs(float64(img[0])-want) > 1e-6 {
			t.Errorf("example 0: target %v, corner %v %v", target[0], img[0], img[196])
		}
	}
}

// TestMNISTModulePinned: MNISTDir's pinned version is the go.mod requirement.
func TestMNISTModulePinned(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), mnistModule+" "+mnistVersion) {
		t.Errorf("go.mod does not require %s %s", mnistModule, mnistVersion)
	}
}

// FuzzIDX: parseIDX on arbitrary bytes, plain or gzipped, never panics,
// returns a payload of exactly the declared size, and allocates at most
// a bound proportional to the input (the declared size is never trusted).
func FuzzIDX(f *testing.F) {
	for _, tc := range idxBad {
		f.Add(tc.raw, tc.magic == idxMagicImages, false)
	}
	img := idxBytes(idxMagicImages, []uint32{2, 3, 4}, make([]byte, 24))
	lbl := idxBytes(idxMagicLabels, []uint32{5}, []byte{0, 1, 2, 3, 9})
	f.Add(img, true, false)
	f.Add(img, true, true)
	f.Add(lbl, false, false)
	f.Add(lbl, false, true)
	f.Add(idxBytes(idxMagicImages, []uint32{1 << 31, 28, 28}, make([]byte, 84)), true, true)
	if dir, err := MNISTDir(); err == nil {
		// The real label file (29 kB gzipped) and the head of the test images.
		if b, err := os.ReadFile(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz")); err == nil {
			f.Add(b, false, false)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte, images, gz bool) {
		if gz {
			raw = gzipBytes(raw)
		}
		magic := uint32(idxMagicLabels)
		if images {
			magic = idxMagicImages
		}
		var p *idxFile
		var err error
		allocated := allocatedBy(func() { p, err = parseIDX("fuzz", raw, magic, 1<<24) })
		if bound := uint64(2*deflateMaxRatio*len(raw) + 1<<20); allocated > bound {
			t.Fatalf("%d-byte input allocated %d bytes (bound %d)", len(raw), allocated, bound)
		}
		if err != nil {
			if p != nil {
				t.Fatal("non-nil result with an error")
			}
			return
		}
		if len(p.dims) != int(magic&0xff) || len(p.data) != idxSize(p.dims) {
			t.Fatalf("dims %v, %d data bytes", p.dims, len(p.data))
		}
	})
}

// BenchmarkLoadMNIST: reading the real gzipped training set, and fitting it
// to the tiny preset (3×14×14).
func BenchmarkLoadMNIST(b *testing.B) {
	dir, err := MNISTDir()
	if err != nil {
		b.Skipf("real MNIST unavailable (%v)", err)
	}
	var s *ImageSet
	b.Run("load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s, err = LoadMNIST(dir, true); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(s.N)*float64(b.N)/b.Elapsed().Seconds(), "images/s")
	})
	b.Run("fit3x14", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Fit(3, 14); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(s.N)*float64(b.N)/b.Elapsed().Seconds(), "images/s")
	})
}

// firstN returns 0..n−1.
func firstN(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// realMNIST1024 loads the real MNIST training and test sets (skipping the
// test when the files are unavailable) and picks 1024 training images
// (seed 1).
func realMNIST1024(t *testing.T) (full, test *ImageSet, pick []int) {
	t.Helper()
	dir, err := MNISTDir()
	if err != nil {
		t.Skipf("real MNIST unavailable (%v)", err)
	}
	if full, err = LoadMNIST(dir, true); err != nil {
		t.Fatal(err)
	}
	if test, err = LoadMNIST(dir, false); err != nil {
		t.Fatal(err)
	}
	pick, _ = SplitIndices(full.N, 1-1024.0/60000, 1)
	return full, test, pick
}

// TestMNISTNearestCentroid checks the whole real-data path independently of
// any model: 1024 training images fitted to the tiny preset (3×14×14),
// augmented and normalised, give class-mean images that classify 1000
// fitted test images by nearest centroid (measured: 0.746). The bound 0.7
// is far above chance: misaligned labels, shifted images or mixed planes
// give about 0.1.
func TestMNISTNearestCentroid(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skipping the real MNIST files")
	}
	full, test, pick := realMNIST1024(t)
	train, err := full.Subset(pick).Fit(3, 14)
	if err != nil {
		t.Fatal(err)
	}
	val, err := test.Subset(firstN(1000)).Fit(3, 14)
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * 14 * 14
	cent := make([]float64, 10*n)
	count := make([]float64, 10)
	img, target := make([]float32, n), make([]float32, 1)
	aug := &Augment{Set: train, Pad: 1, Flip: false, Seed: 4}
	for i := range train.N {
		aug.Example(i, img, target)
		k := int(target[0])
		count[k]++
		for j, v := range img {
			cent[k*n+j] += float64(v)
		}
	}
	correct := 0
	for i := range val.N {
		val.Example(i, img, target)
		best, bestD := -1, math.Inf(1)
		for k := range 10 {
			d := 0.0
			for j, v := range img {
				e := float64(v) - cent[k*n+j]/count[k]
				d += e * e
			}
			if d < bestD {
				best, bestD = k, d
			}
		}
		if best == int(target[0]) {
			correct++
		}
	}
	acc := float64(correct) / float64(val.N)
	t.Logf("nearest-centroid accuracy %.3f on %d test images", acc, val.N)
	if acc < 0.7 {
		t.Errorf("nearest-centroid accuracy %.3f, want > 0.7", acc)
	}
}

// TestMNISTTrainsTiny: the readers plug into Train: a very small ViT trained
// on 1024 augmented real MNIST images (tiny preset shape 3×14×14) must lower
// the loss below ln 10 (chance) and beat chance accuracy on 512 test images.
func TestMNISTTrainsTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skipping training on real MNIST")
	}
	full, test, pick := realMNIST1024(t)
	cfg, _ := Preset("tiny")
	cfg.Dim, cfg.Heads, cfg.MLP, cfg.Depth, cfg.Classes = 32, 2, 64, 1, 10
	train, err := full.Subset(pick).Fit(cfg.Channels, cfg.Image)
	if err != nil {
		t.Fatal(err)
	}
	val, err := test.Subset(firstN(512)).Fit(cfg.Channels, cfg.Image)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewViT[float32](cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	tc := TrainConfig{Steps: 150, Batch: 32, LR: 2e-3, MinLR: 1e-4, Warmup: 10, WeightDecay: 0.05, Loss: "ce", Seed: 2}
	res, err := Train(m, &Augment{Set: train, Pad: 1, Seed: 4}, val, tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("val loss %.4f acc %.3f on %d images", res.Loss, res.Acc, res.Examples)
	if res.Loss > math.Log(10)-0.1 || res.Acc < 0.18 {
		t.Errorf("val loss %.4f acc %.3f, want loss < ln 10 − 0.1 = %.4f and acc > 0.18 (chance 0.1)", res.Loss, res.Acc, math.Log(10)-0.1)
	}
}

// TestFetchMNIST: without the module, FetchMNIST says it fetches it with
// `go mod download` (here the proxy is off, so that fails with the
// command to run), and without the go command it names the one command to
// run (issue 19 finding 11).
func TestFetchMNIST(t *testing.T) {
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("GOPROXY", "off")
	var log strings.Builder
	_, err := FetchMNIST(&log)
	want := "go mod download " + mnistModule + "@" + mnistVersion
	if err == nil || !strings.Contains(log.String(), "fetching it with `"+want+"`") || !strings.Contains(err.Error(), want) {
		t.Errorf("no module, proxy off: got %v, log %q", err, log.String())
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := FetchMNIST(nil); err == nil || !strings.Contains(err.Error(), "go command is not installed: run `"+want+"`") {
		t.Errorf("no go command: got %v", err)
	}
}
