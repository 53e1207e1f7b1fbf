package loope

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// safeBuild assembles a file by hand: the 8-byte little-endian length of
// header, header, then data.
func safeBuild(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

// f32LE returns the little-endian IEEE-754 bytes of vs.
func f32LE(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// safeEncode writes f to memory, failing the test on error.
func safeEncode(t testing.TB, f *SafeFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := f.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	return buf.Bytes()
}

// safeEqual reports how a and b differ (names in order, dtypes, shapes,
// bytes, metadata), or "" if they do not.
func safeEqual(a, b *SafeFile) string {
	if !slices.Equal(a.Names, b.Names) {
		return "names " + strings.Join(a.Names, ",") + " vs " + strings.Join(b.Names, ",")
	}
	for _, name := range a.Names {
		ta, tb := a.Tensors[name], b.Tensors[name]
		if ta.DType != tb.DType || !slices.Equal(ta.Shape, tb.Shape) || !bytes.Equal(ta.Data, tb.Data) {
			return "tensor " + name
		}
	}
	if len(a.Metadata) != len(b.Metadata) {
		return "metadata size"
	}
	for k, v := range a.Metadata {
		if w, ok := b.Metadata[k]; !ok || w != v {
			return "metadata " + k
		}
	}
	return ""
}

// TestSafeKnownEncoding checks byte-exact output against the reference
// writer. The first three vectors are the expected outputs of tests in
// huggingface/safetensors safetensors/src/tensor.rs (test_serialization,
// test_serialization_forced_alignement, test_empty), rewritten as header
// text plus data; the last is the file of the task brief built from the
// format description: one F32 tensor "x" of shape [2] holding 1, 2, whose
// 54-byte header is padded with 2 spaces to 56.
func TestSafeKnownEncoding(t *testing.T) {
	t.Parallel()
	six := []float32{0, 1, 2, 3, 4, 5}
	for _, tc := range []struct {
		name  string
		build func(f *SafeFile) error
		want  []byte
	}{
		{"attn.0", func(f *SafeFile) error { return PutFloat(f, "attn.0", six, 1, 2, 3) },
			safeBuild(`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, f32LE(six...))},
		{"attn0/aligned", func(f *SafeFile) error { return PutFloat(f, "attn0", six, 1, 1, 2, 3) },
			safeBuild(`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `, f32LE(six...))},
		{"empty", func(f *SafeFile) error { return nil },
			safeBuild(`{}      `, nil)},
		{"empty/metadata", func(f *SafeFile) error { f.Metadata["framework"] = "pt"; return nil },
			safeBuild(`{"__metadata__":{"framework":"pt"}}     `, nil)},
		{"x", func(f *SafeFile) error { return PutFloat(f, "x", []float32{1, 2}, 2) },
			append(append([]byte{56, 0, 0, 0, 0, 0, 0, 0},
				`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  `...),
				0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewSafeFile()
			if err := tc.build(f); err != nil {
				t.Fatal(err)
			}
			got := safeEncode(t, f)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
			back, err := ParseSafe(got)
			if err != nil {
				t.Fatalf("ParseSafe: %v", err)
			}
			if d := safeEqual(f, back); d != "" {
				t.Fatalf("round trip differs: %s", d)
			}
		})
	}
}

// TestSafeRoundTrip writes every supported kind of tensor (all dtypes,
// empty tensors, scalars) with metadata, through memory, a reader and a
// file, and reads each back typed.
func TestSafeRoundTrip(t *testing.T) {
	t.Parallel()
	f := NewSafeFile()
	f.Metadata["format"] = "pt"
	f.Metadata["config"] = `{"depth": 2, "note": "quotes \" and <html> & ünïcode"}`
	f.Metadata[""] = ""
	f32 := []float32{1.5, -2.25, float32(math.Inf(1)), math.SmallestNonzeroFloat32, math.MaxFloat32, float32(math.Copysign(0, -1))}
	f64 := []float64{math.Pi, -math.E, math.SmallestNonzeroFloat64, math.MaxFloat64, 1e-300}
	i64 := []int64{math.MinInt64, -1, 0, 1, math.MaxInt64, 42}
	i32 := []int32{math.MinInt32, -7, math.MaxInt32}
	u8 := []uint8{0, 1, 127, 128, 255}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(PutFloat(f, "b.f32", f32, 2, 3))
	must(PutFloat(f, "a.f64", f64, 5))
	must(PutInt64(f, "i64", i64, 3, 1, 2))
	must(PutInts(f, "ints", []int{3, -4, 1 << 40}, 3))
	must(PutInt32(f, "i32", i32, 3))
	must(PutUint8(f, "u8", u8, 5))
	must(PutFloat(f, "scalar", []float64{7}))
	must(PutFloat(f, "empty", []float32{}, 0))
	must(PutFloat(f, "empty2", []float32{}, 3, 0, 4))
	must(PutTensor(f, "tensor", FromData([]float32{1, 2, 3, 4, 5, 6}, 3, 2)))
	must(f.Put("bool", SafeTensor{DType: "BOOL", Shape: []int{2}, Data: []byte{1, 0}}))
	must(f.Put("bf16", SafeTensor{DType: "BF16", Shape: []int{1}, Data: []byte{0x80, 0x3f}}))
	must(PutFloat(f, "z.last.empty", []float64{}, 0))

	enc := safeEncode(t, f)
	if !bytes.Equal(enc, safeEncode(t, f)) {
		t.Fatal("two encodings of one file differ")
	}
	path := filepath.Join(t.TempDir(), "rt.safetensors")
	must(f.WriteFile(path))
	fromReader, err := ReadSafe(bytes.NewReader(enc), int64(len(enc)))
	must(err)
	fromFile, err := ReadSafeFile(path)
	must(err)
	fromMem, err := ParseSafe(enc)
	must(err)
	for name, g := range map[string]*SafeFile{"ParseSafe": fromMem, "ReadSafe": fromReader, "ReadSafeFile": fromFile} {
		if d := safeEqual(f, g); d != "" {
			t.Fatalf("%s: round trip differs: %s", name, d)
		}
		if !bytes.Equal(safeEncode(t, g), enc) {
			t.Fatalf("%s: re-encoding differs", name)
		}
	}
	g := fromFile

	gf32, shape, err := GetFloat[float32](g, "b.f32")
	must(err)
	if !reflect.DeepEqual(gf32, f32) || !slices.Equal(shape, []int{2, 3}) {
		t.Errorf("F32: got %v %v, want %v [2 3]", gf32, shape, f32)
	}
	if math.Float32bits(gf32[5]) != math.Float32bits(f32[5]) {
		t.Errorf("F32: sign of -0 lost")
	}
	gf64, _, err := GetFloat[float64](g, "a.f64")
	must(err)
	if !slices.Equal(gf64, f64) {
		t.Errorf("F64: got %v, want %v", gf64, f64)
	}
	// Cross-precision reads: F32 widens exactly, F64 rounds to nearest.
	w, _, err := GetFloat[float64](g, "b.f32")
	must(err)
	for i := range w {
		if w[i] != float64(f32[i]) {
			t.Errorf("F32 as float64 [%d]: got %v, want %v", i, w[i], float64(f32[i]))
		}
	}
	n, _, err := GetFloat[float32](g, "a.f64")
	must(err)
	for i := range n {
		if n[i] != float32(f64[i]) {
			t.Errorf("F64 as float32 [%d]: got %v, want %v", i, n[i], float32(f64[i]))
		}
	}
	gi64, shape, err := GetInt64(g, "i64")
	must(err)
	if !slices.Equal(gi64, i64) || !slices.Equal(shape, []int{3, 1, 2}) {
		t.Errorf("I64: got %v %v", gi64, shape)
	}
	gints, _, err := GetInts(g, "ints")
	must(err)
	if !slices.Equal(gints, []int{3, -4, 1 << 40}) {
		t.Errorf("ints: got %v", gints)
	}
	gi32, _, err := GetInt32(g, "i32")
	must(err)
	if !slices.Equal(gi32, i32) {
		t.Errorf("I32: got %v", gi32)
	}
	wide, _, err := GetInt64(g, "i32")
	must(err)
	if !slices.Equal(wide, []int64{math.MinInt32, -7, math.MaxInt32}) {
		t.Errorf("I32 as int64: got %v", wide)
	}
	gu8, _, err := GetUint8(g, "u8")
	must(err)
	if !slices.Equal(gu8, u8) {
		t.Errorf("U8: got %v", gu8)
	}
	gb, _, err := GetUint8(g, "bool")
	must(err)
	if !slices.Equal(gb, []uint8{1, 0}) {
		t.Errorf("BOOL: got %v", gb)
	}
	sc, shape, err := GetFloat[float64](g, "scalar")
	must(err)
	if !slices.Equal(sc, []float64{7}) || shape == nil || len(shape) != 0 {
		t.Errorf("scalar: got %v shape %#v, want [7] []int{}", sc, shape)
	}
	em, shape, err := GetFloat[float32](g, "empty2")
	must(err)
	if len(em) != 0 || !slices.Equal(shape, []int{3, 0, 4}) {
		t.Errorf("empty: got %v %v", em, shape)
	}
	tt, err := GetTensor[float64](g, "tensor")
	must(err)
	if !slices.Equal(tt.Shape, []int{3, 2}) || !slices.Equal(tt.Data, []float64{1, 2, 3, 4, 5, 6}) || tt.Grad != nil {
		t.Errorf("GetTensor: got %v", tt)
	}

	// Typed getters refuse other dtypes and missing names.
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"GetFloat/int", func() error { _, _, err := GetFloat[float32](g, "i64"); return err }()},
		{"GetFloat/bf16", func() error { _, _, err := GetFloat[float32](g, "bf16"); return err }()},
		{"GetFloat/missing", func() error { _, _, err := GetFloat[float32](g, "nope"); return err }()},
		{"GetTensor/u8", func() error { _, err := GetTensor[float32](g, "u8"); return err }()},
		{"GetInt64/float", func() error { _, _, err := GetInt64(g, "a.f64"); return err }()},
		{"GetInts/u8", func() error { _, _, err := GetInts(g, "u8"); return err }()},
		{"GetInt32/i64", func() error { _, _, err := GetInt32(g, "i64"); return err }()},
		{"GetUint8/f32", func() error { _, _, err := GetUint8(g, "b.f32"); return err }()},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestSafeNamesOrder checks that writing follows Names (insertion) order,
// that reading returns file order, and that empty tensors sharing an
// offset keep their order.
func TestSafeNamesOrder(t *testing.T) {
	t.Parallel()
	f := NewSafeFile()
	for _, name := range []string{"z", "e2", "a", "e1", "m"} {
		var data []float32
		if name[0] != 'e' {
			data = []float32{1}
		}
		if err := PutFloat(f, name, data, len(data)); err != nil {
			t.Fatal(err)
		}
	}
	g, err := ParseSafe(safeEncode(t, f))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Names, f.Names) {
		t.Fatalf("names: got %v, want %v", g.Names, f.Names)
	}
	// A file whose header lists tensors out of data order reads in data order.
	hdr := `{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`
	g, err = ParseSafe(safeBuild(hdr, []byte{10, 20}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Names, []string{"a", "b"}) || g.Tensors["b"].Data[0] != 20 {
		t.Fatalf("got names %v, b=%v", g.Names, g.Tensors["b"].Data)
	}
	// Tensor data must not alias its neighbour through spare capacity.
	if cap(g.Tensors["a"].Data) != 1 {
		t.Errorf("cap of a's data is %d, want 1", cap(g.Tensors["a"].Data))
	}
}

// TestSafePutErrors checks that Put and WriteTo refuse inconsistent input.
func TestSafePutErrors(t *testing.T) {
	t.Parallel()
	f := NewSafeFile()
	if err := PutFloat(f, "x", []float32{1, 2}, 2); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"duplicate", PutFloat(f, "x", []float32{1}, 1)},
		{"reserved", PutFloat(f, "__metadata__", []float32{1}, 1)},
		{"bad utf8", PutFloat(f, "\xff", []float32{1}, 1)},
		{"count", PutFloat(f, "y", []float32{1, 2, 3}, 2)},
		{"negative", PutFloat(f, "y", []float32{}, -1, 0)},
		{"huge", PutFloat(f, "y", []float32{}, 1<<40, 1<<40)},
		{"dtype", f.Put("y", SafeTensor{DType: "F4", Shape: []int{1}, Data: []byte{0}})},
		{"ints count", PutInt64(f, "y", []int64{1}, 2)},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if len(f.Names) != 1 || len(f.Tensors) != 1 {
		t.Fatalf("failed Puts changed the file: %v", f.Names)
	}
	// WriteTo re-checks what a caller may have changed by hand.
	for _, tc := range []struct {
		name   string
		break_ func(f *SafeFile)
	}{
		{"names missing", func(f *SafeFile) { f.Names = nil }},
		{"names repeated", func(f *SafeFile) { f.Names = []string{"x", "x"}; f.Tensors["y"] = f.Tensors["x"] }},
		{"data length", func(f *SafeFile) { t := f.Tensors["x"]; t.Data = t.Data[:4]; f.Tensors["x"] = t }},
		{"dtype", func(f *SafeFile) { t := f.Tensors["x"]; t.DType = "F32x"; f.Tensors["x"] = t }},
		{"metadata utf8", func(f *SafeFile) { f.Metadata["k"] = "\xfe" }},
	} {
		g := NewSafeFile()
		if err := PutFloat(g, "x", []float32{1, 2}, 2); err != nil {
			t.Fatal(err)
		}
		tc.break_(g)
		if _, err := g.WriteTo(io.Discard); err == nil {
			t.Errorf("WriteTo/%s: no error", tc.name)
		}
	}
}

// TestWriteAtomic checks that a failed write leaves the old file intact and
// no temporary file behind, and that a good write replaces it.
func TestWriteAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.safetensors")
	old := NewSafeFile()
	if err := PutFloat(old, "w", []float32{1, 2, 3}, 3); err != nil {
		t.Fatal(err)
	}
	if err := old.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	oldBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode: %v %v, want 0644", fi.Mode(), err)
	}

	boom := errors.New("disk full")
	err = writeAtomic(path, func(w io.Writer) error {
		if _, err := w.Write(bytes.Repeat([]byte{0xAB}, 3<<20)); err != nil { // past the buffer: reaches the temp file
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), path) {
		t.Fatalf("writeAtomic: got %v, want an error wrapping %v naming %s", err, boom, path)
	}
	// A SafeFile that cannot be encoded fails the same way.
	bad := NewSafeFile()
	bad.Names = []string{"ghost"}
	if err := bad.WriteFile(path); err == nil {
		t.Fatal("WriteFile of an inconsistent file: no error")
	}
	// A panicking writer also leaves no temporary file.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("writeAtomic swallowed the writer's panic")
			}
		}()
		_ = writeAtomic(path, func(w io.Writer) error {
			_, _ = w.Write(make([]byte, 2<<20))
			panic("boom")
		})
	}()
	if err := writeAtomic(filepath.Join(dir, "no", "such", "dir", "x"), func(io.Writer) error { return nil }); err == nil {
		t.Fatal("writeAtomic into a missing folder: no error")
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, oldBytes) {
		t.Fatalf("old file changed after failed writes (err %v)", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "ckpt.safetensors" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("folder holds %v, want only ckpt.safetensors", names)
	}

	next := NewSafeFile()
	if err := PutFloat(next, "w", []float64{4, 5}, 2); err != nil {
		t.Fatal(err)
	}
	next.Metadata["step"] = "100"
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := next.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced file mode: %v %v, want 0600 kept", fi.Mode(), err)
	}
	back, err := ReadSafeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := safeEqual(next, back); d != "" {
		t.Fatalf("after replace: %s", d)
	}
}

// TestWriteAtomicRefusesNonRegular: a target that exists and is not a
// regular file (a directory, a symbolic link, a device) is refused and
// left as it was (issue 19 finding 4).
func TestWriteAtomicRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("keep"), 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	cases := map[string]string{link: "a symbolic link", sub: "a directory"}
	// A device node of our own (the null device's numbers), never the
	// system's /dev/null: if the refusal ever broke, this test would
	// replace the node it points at. Making one needs root; else skip it.
	dev := filepath.Join(dir, "null")
	if makeNullDevice(dev) == nil {
		cases[dev] = "a device"
	}
	fifo := filepath.Join(dir, "fifo")
	if exec.Command("mkfifo", fifo).Run() == nil {
		cases[fifo] = "a named pipe (FIFO)"
	}
	for path, kind := range cases {
		err := writeAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err })
		if err == nil || !strings.Contains(err.Error(), "is not a regular file ("+kind+")") {
			t.Errorf("%s: got %v, want a refusal naming %s", path, err, kind)
		}
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the symbolic link was replaced")
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the link's target now holds %q", b)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left", e.Name())
		}
	}
}

// TestWriteAtomicRelative checks a bare file name (temporary file and
// folder sync in "."). It changes the working folder, so it is not
// parallel.
func TestWriteAtomicRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	f := NewSafeFile()
	if err := PutUint8(f, "u", []uint8{1}, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile("rel.safetensors"); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSafeFile("rel.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if d := safeEqual(f, back); d != "" {
		t.Fatal(d)
	}
}

// BenchmarkSafe measures the per-byte cost of encoding and decoding a 4 MB
// F32 tensor (1M values).
func BenchmarkSafe(b *testing.B) {
	vals := make([]float32, 1<<20)
	for i := range vals {
		vals[i] = float32(i) * 0.5
	}
	f := NewSafeFile()
	if err := PutFloat(f, "w", vals, 1024, 1024); err != nil {
		b.Fatal(err)
	}
	enc := safeEncode(b, f)
	b.Run("op=PutFloat", func(b *testing.B) {
		b.SetBytes(4 << 20)
		b.ReportAllocs()
		for b.Loop() {
			g := NewSafeFile()
			if err := PutFloat(g, "w", vals, 1024, 1024); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=WriteTo", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=ParseSafe", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseSafe(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=GetFloat", func(b *testing.B) {
		b.SetBytes(4 << 20)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := GetFloat[float32](f, "w"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
