// This file holds our own reader and writer of the safetensors format
// (https://github.com/huggingface/safetensors, README "Format"), used for
// checkpoints and fixtures.
//
// A safetensors file is:
//
//	8 bytes   N, the header length, an unsigned 64-bit little-endian integer
//	N bytes   a UTF-8 JSON object, starting with '{' and possibly padded at
//	          the end with spaces:
//	            {"__metadata__": {"key": "value", ...},
//	             "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
//	             ...}
//	          "__metadata__" is optional and maps strings to strings.
//	rest      the data buffer: each tensor's elements, row-major, little-endian,
//	          at [begin, end) relative to the start of the buffer.
//
// Reading checks what the reference implementation checks (safetensors
// tensor.rs validate): the header is at most 100 MB and fits in the file, it
// is one JSON object with no duplicate keys, every dtype is known, shapes
// are non-negative integers, end-begin equals prod(shape)·dtype size
// (computed with overflow checks), and the tensors, sorted by offset, tile
// the data buffer exactly: no overlap, no hole, nothing after the last one.
// Every failure is an error naming the file, the tensor and the problem.
//
// The reader is in safetensors_read.go. Writing emits compact JSON ("__metadata__" first, with sorted keys, then
// the tensors in SafeFile.Names order, each as dtype, shape, data_offsets),
// pads the header with spaces to a multiple of 8 bytes as the reference
// writer does, and lays the tensors out contiguously in the same order.
// WriteFile replaces its target atomically.

package loope

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"unicode/utf8"
	"unsafe"
)

// safeMaxHeader is the largest header accepted, in bytes; the reference
// implementation uses the same bound (MAX_HEADER_SIZE = 100_000_000).
const safeMaxHeader = 100_000_000

// safeMetadataKey is the reserved header key holding the string metadata.
const safeMetadataKey = "__metadata__"

// safeDTypeSize gives the element size in bytes of every dtype this package
// reads and writes as raw bytes. Typed access (GetFloat, GetInt64, ...)
// covers a subset.
var safeDTypeSize = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// SafeTensor is one named tensor of a safetensors file: its dtype ("F32",
// "F64", "I64", "I32", "U8", "BOOL", ... see safeDTypeSize), its shape
// (empty for a scalar) and its raw little-endian row-major bytes.
type SafeTensor struct {
	DType string // safetensors dtype name, e.g. "F32"
	Shape []int  // sizes, outermost first; [] is a scalar
	Data  []byte // prod(Shape)·size(DType) bytes, little-endian
}

// SafeFile is a whole safetensors file in memory: string metadata, tensors
// by name, and the order of the names. Writing lays the tensors out in
// Names order; reading sets Names to the order of the tensors in the data
// buffer (ties between empty tensors keep their header order).
type SafeFile struct {
	Metadata map[string]string     // the "__metadata__" map; never nil from NewSafeFile or a reader
	Tensors  map[string]SafeTensor // by name
	Names    []string              // every key of Tensors, once, in file order
}

// NewSafeFile returns an empty file with non-nil maps.
func NewSafeFile() *SafeFile {
	return &SafeFile{Metadata: map[string]string{}, Tensors: map[string]SafeTensor{}}
}

// safeBytes returns prod(shape)·elem, or ok=false if a size is negative or
// the product overflows int64 (and so cannot describe bytes in memory).
func safeBytes(shape []int, elem int) (n int64, ok bool) {
	n = int64(elem)
	for _, s := range shape {
		if s < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(uint64(n), uint64(s))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		n = int64(lo)
	}
	return n, true
}

// Put adds tensor t under name. The file keeps t.Data without copying it.
// It returns an error if name is taken, reserved ("__metadata__") or not
// valid UTF-8, if the dtype is unknown, or if len(t.Data) does not match
// the shape and dtype.
func (f *SafeFile) Put(name string, t SafeTensor) error {
	if f.Tensors == nil {
		f.Tensors = map[string]SafeTensor{}
	}
	switch {
	case name == safeMetadataKey:
		return fmt.Errorf("loope: safetensors Put: tensor name %q is reserved", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("loope: safetensors Put: tensor name %q is not valid UTF-8", name)
	}
	if _, dup := f.Tensors[name]; dup {
		return fmt.Errorf("loope: safetensors Put: duplicate tensor %q", name)
	}
	size, ok := safeDTypeSize[t.DType]
	if !ok {
		return fmt.Errorf("loope: safetensors Put: tensor %q: unknown dtype %q", name, t.DType)
	}
	n, ok := safeBytes(t.Shape, size)
	if !ok {
		return fmt.Errorf("loope: safetensors Put: tensor %q: invalid shape %v", name, t.Shape)
	}
	if n != int64(len(t.Data)) {
		return fmt.Errorf("loope: safetensors Put: tensor %q: shape %v of %s needs %d bytes, got %d",
			name, t.Shape, t.DType, n, len(t.Data))
	}
	t.Shape = slices.Clone(t.Shape)
	if t.Shape == nil {
		t.Shape = []int{}
	}
	f.Tensors[name] = t
	f.Names = append(f.Names, name)
	return nil
}

// isF32 reports whether the Float type T is 4 bytes wide (float32 or a type
// based on it).
func isF32[T Float]() bool { return unsafe.Sizeof(T(0)) == 4 }

// PutFloat adds data with the given shape (none for a scalar) as an F32
// tensor if T is float32 and as F64 if T is float64. The values are copied.
func PutFloat[T Float](f *SafeFile, name string, data []T, shape ...int) error {
	if isF32[T]() {
		b := make([]byte, 4*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(v)))
		}
		return f.Put(name, SafeTensor{DType: "F32", Shape: shape, Data: b})
	}
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(float64(v)))
	}
	return f.Put(name, SafeTensor{DType: "F64", Shape: shape, Data: b})
}

// PutTensor adds t.Data with t.Shape, as PutFloat does; the gradient is not
// stored.
func PutTensor[T Float](f *SafeFile, name string, t *Tensor[T]) error {
	return PutFloat(f, name, t.Data, t.Shape...)
}

// PutInt64 adds data with the given shape as an I64 tensor.
func PutInt64(f *SafeFile, name string, data []int64, shape ...int) error {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return f.Put(name, SafeTensor{DType: "I64", Shape: shape, Data: b})
}

// PutInts adds data with the given shape as an I64 tensor.
func PutInts(f *SafeFile, name string, data []int, shape ...int) error {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(int64(v)))
	}
	return f.Put(name, SafeTensor{DType: "I64", Shape: shape, Data: b})
}

// PutInt32 adds data with the given shape as an I32 tensor.
func PutInt32(f *SafeFile, name string, data []int32, shape ...int) error {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return f.Put(name, SafeTensor{DType: "I32", Shape: shape, Data: b})
}

// PutUint8 adds a copy of data with the given shape as a U8 tensor.
func PutUint8(f *SafeFile, name string, data []uint8, shape ...int) error {
	return f.Put(name, SafeTensor{DType: "U8", Shape: shape, Data: slices.Clone(data)})
}

// lookup returns the tensor called name, or an error saying it is missing.
func (f *SafeFile) lookup(op, name string) (SafeTensor, error) {
	t, ok := f.Tensors[name]
	if !ok {
		return t, fmt.Errorf("loope: safetensors %s: no tensor %q", op, name)
	}
	return t, nil
}

// GetFloat returns a copy of the float tensor called name as []T, with its
// shape. An F32 tensor read as float64 is widened exactly; an F64 tensor
// read as float32 is rounded to nearest. Any other dtype is an error.
func GetFloat[T Float](f *SafeFile, name string) ([]T, []int, error) {
	t, err := f.lookup("GetFloat", name)
	if err != nil {
		return nil, nil, err
	}
	var out []T
	switch t.DType {
	case "F32":
		out = make([]T, len(t.Data)/4)
		for i := range out {
			out[i] = T(math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:])))
		}
	case "F64":
		out = make([]T, len(t.Data)/8)
		for i := range out {
			out[i] = T(math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
	default:
		return nil, nil, fmt.Errorf("loope: safetensors GetFloat: tensor %q has dtype %s, want F32 or F64", name, t.DType)
	}
	return out, slices.Clone(t.Shape), nil
}

// GetTensor returns the float tensor called name as a new Tensor without a
// gradient, converting precision as GetFloat does.
func GetTensor[T Float](f *SafeFile, name string) (*Tensor[T], error) {
	data, shape, err := GetFloat[T](f, name)
	if err != nil {
		return nil, err
	}
	return &Tensor[T]{Shape: shape, Data: data}, nil
}

// GetInt64 returns a copy of the integer tensor called name (I64, or I32
// widened) as []int64, with its shape.
func GetInt64(f *SafeFile, name string) ([]int64, []int, error) {
	t, err := f.lookup("GetInt64", name)
	if err != nil {
		return nil, nil, err
	}
	var out []int64
	switch t.DType {
	case "I64":
		out = make([]int64, len(t.Data)/8)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
	case "I32":
		out = make([]int64, len(t.Data)/4)
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(t.Data[4*i:])))
		}
	default:
		return nil, nil, fmt.Errorf("loope: safetensors GetInt64: tensor %q has dtype %s, want I64 or I32", name, t.DType)
	}
	return out, slices.Clone(t.Shape), nil
}

// GetInts returns the integer tensor called name (I64 or I32) as []int, with
// its shape. A value that does not fit in int is an error.
func GetInts(f *SafeFile, name string) ([]int, []int, error) {
	v, shape, err := GetInt64(f, name)
	if err != nil {
		return nil, nil, err
	}
	out := make([]int, len(v))
	for i, x := range v {
		if int64(int(x)) != x {
			return nil, nil, fmt.Errorf("loope: safetensors GetInts: tensor %q: value %d at %d overflows int", name, x, i)
		}
		out[i] = int(x)
	}
	return out, shape, nil
}

// GetInt32 returns a copy of the I32 tensor called name, with its shape.
func GetInt32(f *SafeFile, name string) ([]int32, []int, error) {
	t, err := f.lookup("GetInt32", name)
	if err != nil {
		return nil, nil, err
	}
	if t.DType != "I32" {
		return nil, nil, fmt.Errorf("loope: safetensors GetInt32: tensor %q has dtype %s, want I32", name, t.DType)
	}
	out := make([]int32, len(t.Data)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out, slices.Clone(t.Shape), nil
}

// GetUint8 returns a copy of the U8 (or BOOL, as 0/1 bytes) tensor called
// name, with its shape.
func GetUint8(f *SafeFile, name string) ([]uint8, []int, error) {
	t, err := f.lookup("GetUint8", name)
	if err != nil {
		return nil, nil, err
	}
	if t.DType != "U8" && t.DType != "BOOL" {
		return nil, nil, fmt.Errorf("loope: safetensors GetUint8: tensor %q has dtype %s, want U8 or BOOL", name, t.DType)
	}
	return slices.Clone(t.Data), slices.Clone(t.Shape), nil
}

// ---------------------------------------------------------------------------
// Writing

// safeHeaderTensor is one tensor entry of the JSON header; the field order
// is the reference writer's.
type safeHeaderTensor struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// header returns the padded JSON header (a multiple of 8 bytes long) and
// the size of the data buffer, or an error if the file is inconsistent.
func (f *SafeFile) header() ([]byte, int64, error) {
	if len(f.Names) != len(f.Tensors) {
		return nil, 0, fmt.Errorf("loope: safetensors write: %d names for %d tensors", len(f.Names), len(f.Tensors))
	}
	w := newJSONWriter()
	w.buf.WriteByte('{')
	if err := w.metadata(f.Metadata); err != nil {
		return nil, 0, err
	}
	off, err := w.tensors(f, len(f.Metadata) > 0)
	if err != nil {
		return nil, 0, err
	}
	w.buf.WriteByte('}')
	for w.buf.Len()%8 != 0 {
		w.buf.WriteByte(' ')
	}
	if w.buf.Len() > safeMaxHeader {
		return nil, 0, fmt.Errorf("loope: safetensors write: header of %d bytes exceeds %d", w.buf.Len(), safeMaxHeader)
	}
	return w.buf.Bytes(), off, nil
}

// jsonWriter builds a safetensors header: JSON values appended to buf by
// an encoder that does not escape HTML.
type jsonWriter struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newJSONWriter() *jsonWriter {
	w := &jsonWriter{}
	w.enc = json.NewEncoder(&w.buf)
	w.enc.SetEscapeHTML(false)
	return w
}

// value appends v (a string or header entry) without the encoder's
// trailing newline.
func (w *jsonWriter) value(v any) error {
	if err := w.enc.Encode(v); err != nil {
		return err
	}
	w.buf.Truncate(w.buf.Len() - 1)
	return nil
}

// metadata appends the "__metadata__" object of md, keys sorted, if md is
// not empty.
func (w *jsonWriter) metadata(md map[string]string) error {
	if len(md) == 0 {
		return nil
	}
	w.buf.WriteString(`"` + safeMetadataKey + `":{`)
	keys := make([]string, 0, len(md))
	for k, v := range md {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("loope: safetensors write: metadata %q: %q is not valid UTF-8", k, v)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		if err := w.value(k); err != nil {
			return err
		}
		w.buf.WriteByte(':')
		if err := w.value(md[k]); err != nil {
			return err
		}
	}
	w.buf.WriteByte('}')
	return nil
}

// tensors appends the entry of each tensor of f in Names order (after a
// comma if comma) and returns the size of the data buffer.
func (w *jsonWriter) tensors(f *SafeFile, comma bool) (int64, error) {
	var off int64
	seen := make(map[string]bool, len(f.Names))
	for i, name := range f.Names {
		t, ok := f.Tensors[name]
		if !ok || seen[name] {
			return 0, fmt.Errorf("loope: safetensors write: Names lists %q, which is missing or repeated", name)
		}
		seen[name] = true
		if name == safeMetadataKey || !utf8.ValidString(name) {
			return 0, fmt.Errorf("loope: safetensors write: invalid tensor name %q", name)
		}
		size, ok := safeDTypeSize[t.DType]
		if !ok {
			return 0, fmt.Errorf("loope: safetensors write: tensor %q: unknown dtype %q", name, t.DType)
		}
		if n, ok := safeBytes(t.Shape, size); !ok || n != int64(len(t.Data)) {
			return 0, fmt.Errorf("loope: safetensors write: tensor %q: shape %v of %s does not match %d bytes",
				name, t.Shape, t.DType, len(t.Data))
		}
		if i > 0 || comma {
			w.buf.WriteByte(',')
		}
		if err := w.value(name); err != nil {
			return 0, err
		}
		w.buf.WriteByte(':')
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		end := off + int64(len(t.Data))
		if err := w.value(safeHeaderTensor{t.DType, shape, [2]int64{off, end}}); err != nil {
			return 0, err
		}
		off = end
	}
	return off, nil
}

// WriteTo writes the file in safetensors format to w and returns the number
// of bytes written.
func (f *SafeFile) WriteTo(w io.Writer) (int64, error) {
	hdr, _, err := f.header()
	if err != nil {
		return 0, err
	}
	var n int64
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	for _, b := range [][]byte{lenBuf[:], hdr} {
		m, err := w.Write(b)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	for _, name := range f.Names {
		m, err := w.Write(f.Tensors[name].Data)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// WriteFile writes the file to path atomically: it writes a temporary file
// in the same folder, syncs and closes it, renames it over path and syncs
// the folder, so path holds either its old content or the complete new file.
func (f *SafeFile) WriteFile(path string) error {
	return writeAtomic(path, func(w io.Writer) error {
		_, err := f.WriteTo(w)
		return err
	})
}

// WriteFileAtomic replaces path by what write produces: it writes a
// temporary file in the same folder, fsyncs it and renames it over path, so
// a crash never leaves a truncated file in place of a good one. Result
// files and checkpoints all go through it.
func WriteFileAtomic(path string, write func(w io.Writer) error) error {
	return writeAtomic(path, write)
}

// fileKind names the type of a file mode: "directory", "symlink", ...
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}

// writeAtomic replaces path by what write produces, atomically (see
// WriteFile). A path that exists and is not a regular file (a device, a
// FIFO, a directory, a symbolic link) is refused, never replaced. The new file gets the permission bits of the file it
// replaces, or 0644. If write fails or panics, or any step before the
// rename fails, path is untouched and the temporary file is removed. An
// error syncing the folder after the rename is returned too, but the new
// file is then already in place.
func writeAtomic(path string, write func(w io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	perm := os.FileMode(0o644)
	if fi, err := os.Lstat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("loope: write %s: it exists and is not a regular file (%s); refusing to replace it", path, fileKind(fi.Mode()))
		}
		perm = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("loope: write %s: %w", path, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	for _, step := range []func() error{
		func() error { return write(bw) },
		bw.Flush,
		func() error { return tmp.Chmod(perm) },
		tmp.Sync,
		tmp.Close,
		func() error { return os.Rename(tmp.Name(), path) },
	} {
		if err := step(); err != nil {
			return fmt.Errorf("loope: write %s: %w", path, err)
		}
	}
	renamed = true
	// The new file is in place; make the rename durable.
	d, err := os.Open(dir)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		return fmt.Errorf("loope: write %s: sync folder: %w", path, err)
	}
	return nil
}
