// This file holds the safetensors reader (the format and the checks it
// makes are described in safetensors.go): ReadSafeFile, ReadSafe,
// ParseSafe, and the validation of the header and its tensor entries.

package loope

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"unicode/utf8"
)

// ReadSafeFile reads and validates the safetensors file at path. The header
// is checked against the file size before anything is allocated, so a
// hostile header costs at most its own (bounded) size in memory.
func ReadSafeFile(path string) (*SafeFile, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loope: safetensors: %w", err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("loope: safetensors: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("loope: safetensors %s: not a regular file", path)
	}
	return readSafe(fd, st.Size(), true, path)
}

// ReadSafe reads and validates a safetensors file of at most limit bytes
// from r, which must end where the file ends. Memory use is bounded by
// limit.
func ReadSafe(r io.Reader, limit int64) (*SafeFile, error) {
	return readSafe(r, limit, false, "<reader>")
}

// ParseSafe parses and validates a safetensors file held in data. The
// tensors' Data slices alias data (with capacity clipped to each tensor),
// so data must not be modified while the result is in use.
func ParseSafe(data []byte) (*SafeFile, error) {
	const src = "<memory>"
	if len(data) < 8 {
		return nil, fmt.Errorf("loope: safetensors %s: %d bytes is too short for the 8-byte header length", src, len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if err := checkHeaderLen(n, int64(len(data)), src); err != nil {
		return nil, err
	}
	hdr, buf := data[8:8+n], data[8+n:]
	f, spans, err := parseSafeHeader(hdr, int64(len(buf)), true, src)
	if err != nil {
		return nil, err
	}
	for i, name := range f.Names {
		t := f.Tensors[name]
		t.Data = buf[spans[i][0]:spans[i][1]:spans[i][1]]
		f.Tensors[name] = t
	}
	return f, nil
}

// checkHeaderLen rejects a header length n that exceeds safeMaxHeader or the
// size bytes of the file (after the 8-byte length).
func checkHeaderLen(n uint64, size int64, src string) error {
	if n > safeMaxHeader {
		return fmt.Errorf("loope: safetensors %s: header length %d exceeds the %d-byte limit", src, n, safeMaxHeader)
	}
	if int64(n) > size-8 {
		return fmt.Errorf("loope: safetensors %s: header length %d exceeds the %d bytes after the length field", src, n, size-8)
	}
	return nil
}

// readSafe reads a file from r. If exact, size is the file's size and the
// data buffer is size-8-N bytes; otherwise size is an upper bound and the
// data buffer is what the header describes, after which r must be at EOF.
func readSafe(r io.Reader, size int64, exact bool, src string) (*SafeFile, error) {
	var lenBuf [8]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, fmt.Errorf("loope: safetensors %s: reading the header length: %w", src, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if err := checkHeaderLen(n, size, src); err != nil {
		return nil, err
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("loope: safetensors %s: reading the %d-byte header: %w", src, n, err)
	}
	dataLen := size - 8 - int64(n)
	f, spans, err := parseSafeHeader(hdr, dataLen, exact, src)
	if err != nil {
		return nil, err
	}
	if !exact {
		dataLen = 0
		if len(spans) > 0 {
			dataLen = spans[len(spans)-1][1]
		}
	}
	buf := make([]byte, dataLen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("loope: safetensors %s: reading the %d-byte data buffer: %w", src, dataLen, err)
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m != 0 {
		return nil, fmt.Errorf("loope: safetensors %s: bytes after the %d-byte data buffer", src, dataLen)
	}
	for i, name := range f.Names {
		t := f.Tensors[name]
		t.Data = buf[spans[i][0]:spans[i][1]:spans[i][1]]
		f.Tensors[name] = t
	}
	return f, nil
}

// jsonObject walks the JSON object in raw, calling fn for each member in
// order. It fails on anything but one object (plus trailing whitespace) and
// on duplicate keys, which encoding/json would silently merge; what names
// the keys in that message ("tensor", "field", ...).
func jsonObject(raw []byte, what string, fn func(key string, val json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		key := tok.(string) // object keys are always strings
		if seen[key] {
			return fmt.Errorf("duplicate %s %q", what, key)
		}
		seen[key] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return fmt.Errorf("invalid JSON after %q: %w", key, err)
		}
		if err := fn(key, val); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// jsonInts decodes raw as an array of JSON integers within [0, MaxInt64].
// Fractions, exponents, negatives and out-of-range values are errors.
func jsonInts(raw json.RawMessage) ([]int64, error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fmt.Errorf("%s is not an array", raw)
	}
	var nums []json.RawMessage
	if err := json.Unmarshal(raw, &nums); err != nil {
		return nil, err
	}
	out := make([]int64, len(nums))
	for i, s := range nums {
		v, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("element %d is %s, not an integer in [0, 2^63)", i, s)
		}
		out[i] = v
	}
	return out, nil
}

// parseSafeHeader validates the JSON header hdr of a file whose data buffer
// is dataLen bytes long (an upper bound unless exact) and returns the file
// without tensor data, plus each tensor's [begin, end) in Names order.
func parseSafeHeader(hdr []byte, dataLen int64, exact bool, src string) (*SafeFile, [][2]int64, error) {
	fail := func(format string, args ...any) (*SafeFile, [][2]int64, error) {
		return nil, nil, fmt.Errorf("loope: safetensors %s: "+format, append([]any{src}, args...)...)
	}
	if len(hdr) == 0 || hdr[0] != '{' {
		return fail("header does not start with '{'")
	}
	if !utf8.Valid(hdr) {
		return fail("header is not valid UTF-8")
	}
	f := NewSafeFile()
	var entries []safeEntry
	err := jsonObject(hdr, "name", func(key string, val json.RawMessage) error {
		if key == safeMetadataKey {
			if val[0] != '{' {
				return fmt.Errorf("%s is %s, not an object", safeMetadataKey, val)
			}
			return jsonObject(val, "metadata key", func(k string, v json.RawMessage) error {
				if v[0] != '"' {
					return fmt.Errorf("%s[%q] is %s, not a string", safeMetadataKey, k, v)
				}
				var s string
				if err := json.Unmarshal(v, &s); err != nil {
					return fmt.Errorf("%s[%q]: %w", safeMetadataKey, k, err)
				}
				f.Metadata[k] = s
				return nil
			})
		}
		e, err := parseSafeEntry(key, val)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", key, err)
		}
		e.name = key
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return fail("header: %v", err)
	}
	if err := tileSafeEntries(entries, dataLen, exact); err != nil {
		return fail("%v", err)
	}
	spans := make([][2]int64, len(entries))
	for i, e := range entries {
		f.Names = append(f.Names, e.name)
		f.Tensors[e.name] = e.t
		spans[i] = e.offset
	}
	return f, spans, nil
}

// safeEntry is a validated tensor entry of a header: its name, a tensor
// without data and its data_offsets.
type safeEntry struct {
	name   string
	t      SafeTensor
	offset [2]int64
}

// tileSafeEntries sorts entries by offset and checks that they tile the
// data buffer of dataLen bytes: each within it, each starting where the
// previous one ended, and (exact) the last ending at its end. The sort is
// stable, so empty tensors at one offset keep their header order.
func tileSafeEntries(entries []safeEntry, dataLen int64, exact bool) error {
	for _, e := range entries {
		if e.offset[1] > dataLen {
			return fmt.Errorf("tensor %q: data_offsets %v beyond the %d-byte data buffer", e.name, e.offset, dataLen)
		}
	}
	slices.SortStableFunc(entries, func(a, b safeEntry) int {
		if c := cmp.Compare(a.offset[0], b.offset[0]); c != 0 {
			return c
		}
		return cmp.Compare(a.offset[1], b.offset[1])
	})
	var end int64
	for i, e := range entries {
		if e.offset[0] != end {
			what := "leaves a hole after"
			if e.offset[0] < end {
				what = "overlaps"
			}
			prev := "the start of the buffer"
			if i > 0 {
				prev = strconv.Quote(entries[i-1].name) + fmt.Sprintf(" at %v", entries[i-1].offset)
			}
			return fmt.Errorf("tensor %q: data_offsets %v %s %s", e.name, e.offset, what, prev)
		}
		end = e.offset[1]
	}
	if exact && end != dataLen {
		return fmt.Errorf("tensors cover %d bytes but the data buffer has %d", end, dataLen)
	}
	return nil
}

// parseSafeEntry validates one tensor entry {"dtype", "shape",
// "data_offsets"} of a header.
func parseSafeEntry(name string, val json.RawMessage) (safeEntry, error) {
	var e safeEntry
	if val[0] != '{' {
		return e, fmt.Errorf("entry %s is not an object", val)
	}
	var shape, offsets []int64
	var haveDType bool
	err := jsonObject(val, "field", func(k string, v json.RawMessage) error {
		var err error
		switch k {
		case "dtype":
			if v[0] != '"' {
				return fmt.Errorf("dtype %s is not a string", v)
			}
			haveDType = true
			err = json.Unmarshal(v, &e.t.DType)
		case "shape":
			shape, err = jsonInts(v)
		case "data_offsets":
			offsets, err = jsonInts(v)
		default:
			return fmt.Errorf("unknown field %q", k)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		return nil
	})
	switch {
	case err != nil:
		return e, err
	case !haveDType:
		return e, errors.New("missing dtype")
	case shape == nil:
		return e, errors.New("missing shape")
	case offsets == nil:
		return e, errors.New("missing data_offsets")
	case len(offsets) != 2:
		return e, fmt.Errorf("data_offsets %v is not [begin, end]", offsets)
	case offsets[0] > offsets[1]:
		return e, fmt.Errorf("data_offsets %v has begin > end", offsets)
	}
	size, ok := safeDTypeSize[e.t.DType]
	if !ok {
		return e, fmt.Errorf("unknown dtype %q", e.t.DType)
	}
	e.t.Shape = make([]int, len(shape))
	for i, s := range shape {
		if int64(int(s)) != s {
			return e, fmt.Errorf("shape %v: size %d overflows int", shape, s)
		}
		e.t.Shape[i] = int(s)
	}
	n, ok := safeBytes(e.t.Shape, size)
	if !ok {
		return e, fmt.Errorf("shape %v of %s overflows 2^63 bytes", shape, e.t.DType)
	}
	if n != offsets[1]-offsets[0] {
		return e, fmt.Errorf("shape %v of %s is %d bytes but data_offsets %v span %d",
			shape, e.t.DType, n, offsets, offsets[1]-offsets[0])
	}
	e.offset = [2]int64{offsets[0], offsets[1]}
	return e, nil
}
