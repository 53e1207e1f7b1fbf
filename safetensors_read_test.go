package loope

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestSafeParseErrors checks each validation path through ParseSafe,
// ReadSafe and ReadSafeFile: an error with the expected text, no panic, and
// for files the path in the message.
func TestSafeParseErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i, tc := range safeBadCases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseSafe(tc.file)
			if err == nil || f != nil {
				t.Fatalf("ParseSafe: got %v, %v; want an error", f, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseSafe: error %q does not contain %q", err, tc.want)
			}
			if _, err := ReadSafe(bytes.NewReader(tc.file), int64(len(tc.file))); err == nil {
				t.Fatalf("ReadSafe: no error")
			}
			path := filepath.Join(dir, "bad"+string(rune('a'+i%26))+strings.Repeat("_", i/26)+".safetensors")
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = ReadSafeFile(path)
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("ReadSafeFile: error %v does not name %s", err, path)
			}
			if !strings.Contains(tc.want, "too short") && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadSafeFile: error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestSafeReadBounds checks the stream reader's limit, trailing bytes, and
// that a hostile header in a small file fails without a large allocation.
func TestSafeReadBounds(t *testing.T) {
	t.Parallel()
	f := NewSafeFile()
	if err := PutFloat(f, "x", []float64{1, 2, 3}, 3); err != nil {
		t.Fatal(err)
	}
	enc := safeEncode(t, f)
	if _, err := ReadSafe(bytes.NewReader(enc), int64(len(enc))+100); err != nil {
		t.Errorf("ReadSafe with slack limit: %v", err)
	}
	if _, err := ReadSafe(bytes.NewReader(enc), int64(len(enc))-1); err == nil {
		t.Errorf("ReadSafe beyond limit: no error")
	}
	if _, err := ReadSafe(bytes.NewReader(append(enc, 0)), int64(len(enc))+1); err == nil {
		t.Errorf("ReadSafe with a trailing byte: no error")
	}
	if _, err := ReadSafe(bytes.NewReader(enc[:len(enc)-1]), int64(len(enc))); err == nil {
		t.Errorf("ReadSafe of truncated data: no error")
	}
	if _, err := ReadSafeFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("ReadSafeFile of a missing file: no error")
	}
	if _, err := ReadSafeFile(t.TempDir()); err == nil {
		t.Errorf("ReadSafeFile of a folder: no error")
	}

}

// TestSafeHostileHeader checks that a small file whose header declares a
// terabyte tensor fails from the header alone, allocating about as much as
// the file, not the declared size. It measures process-wide allocation, so
// it is not parallel.
func TestSafeHostileHeader(t *testing.T) {
	hostile := safeBuild(`{"a":{"dtype":"F64","shape":[1000000,1000000],"data_offsets":[0,8000000000000]}}`, make([]byte, 64))
	path := filepath.Join(t.TempDir(), "hostile.safetensors")
	if err := os.WriteFile(path, hostile, 0o644); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadSafeFile(path)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "beyond the 64-byte data buffer") {
		t.Fatalf("got error %v, want data_offsets beyond the 64-byte buffer", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Fatalf("reading a %d-byte hostile file allocated %d bytes", len(hostile), n)
	} else {
		t.Logf("reading a %d-byte hostile file allocated %d bytes", len(hostile), n)
	}
}

// FuzzParseSafe feeds arbitrary bytes to ParseSafe. It must never panic,
// and whatever parses must survive WriteTo and ParseSafe unchanged.
func FuzzParseSafe(f *testing.F) {
	for _, tc := range safeBadCases {
		f.Add(tc.file)
	}
	g := NewSafeFile()
	g.Metadata["k"] = "v"
	_ = PutFloat(g, "a", []float32{1, 2}, 2)
	_ = PutFloat(g, "b", []float64{3})
	_ = PutInt64(g, "c", []int64{}, 0, 5)
	_ = PutUint8(g, "d", []uint8{9, 8, 7}, 3, 1)
	var buf bytes.Buffer
	_, _ = g.WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Add(safeBuild(`{"a":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, make([]byte, 24)))
	f.Add(safeBuild(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"BF16","shape":[],"data_offsets":[2,4]},"c":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 4)))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseSafe(data)
		if err != nil {
			if p != nil {
				t.Fatal("non-nil file with an error")
			}
			return
		}
		var out bytes.Buffer
		if _, err := p.WriteTo(&out); err != nil {
			t.Fatalf("WriteTo of a parsed file: %v", err)
		}
		q, err := ParseSafe(out.Bytes())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if d := safeEqual(p, q); d != "" {
			t.Fatalf("re-parse differs: %s", d)
		}
	})
}

// safeBadCases are malformed files, each with a fragment its error must
// contain. They also seed FuzzParseSafe.
var safeBadCases = []struct {
	name string
	file []byte
	want string
}{
	{"empty file", nil, "too short"},
	{"7 bytes", []byte{1, 0, 0, 0, 0, 0, 0}, "too short"},
	{"header beyond file", safeBuild(`{}`, nil)[:9], "exceeds the 1 bytes"},
	{"header 2^64-1", append(bytes.Repeat([]byte{0xff}, 8), `{}`...), "exceeds the 100000000-byte limit"},
	{"header 100MB+1", append(binary.LittleEndian.AppendUint64(nil, 100_000_001), `{}`...), "limit"},
	{"no brace", safeBuild(` {}`, nil), "does not start with '{'"},
	{"not json", safeBuild(`{"a":`, nil), "invalid JSON"},
	{"bad json value", safeBuild(`{"a":{"dtype":"F32",]}`, nil), "invalid JSON"},
	{"unquoted key", safeBuild(`{a:1}`, nil), "invalid JSON"},
	{"json array", safeBuild(`[]`, nil), "does not start with '{'"},
	{"trailing garbage", safeBuild(`{} x`, nil), "after the JSON object"},
	{"two objects", safeBuild(`{}{}`, nil), "after the JSON object"},
	{"invalid utf8", safeBuild("{\"\xff\":1}", nil), "UTF-8"},
	{"entry not object", safeBuild(`{"a":[1]}`, nil), `tensor "a": entry`},
	{"unknown dtype", safeBuild(`{"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "a": unknown dtype "F31"`},
	{"dtype not string", safeBuild(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "dtype 4 is not a string"},
	{"missing dtype", safeBuild(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "missing dtype"},
	{"missing shape", safeBuild(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), "missing shape"},
	{"missing offsets", safeBuild(`{"a":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), "missing data_offsets"},
	{"unknown field", safeBuild(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, make([]byte, 4)), `unknown field "x"`},
	{"duplicate field", safeBuild(`{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `duplicate field "dtype"`},
	{"shape null", safeBuild(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, make([]byte, 4)), "not an array"},
	{"negative dim", safeBuild(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), "shape: element 0 is -1"},
	{"fractional dim", safeBuild(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, make([]byte, 4)), "element 0 is 1.5"},
	{"exponent dim", safeBuild(`{"a":{"dtype":"F32","shape":[1e12],"data_offsets":[0,4]}}`, make([]byte, 4)), "element 0 is 1e12"},
	{"dim beyond int64", safeBuild(`{"a":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,4]}}`, make([]byte, 4)), "not an integer"},
	{"huge dims", safeBuild(`{"a":{"dtype":"F32","shape":[1000000000000,1000000000000],"data_offsets":[0,4]}}`, make([]byte, 4)), "overflows 2^63 bytes"},
	{"huge dims times dtype", safeBuild(`{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}`, make([]byte, 8)), "overflows"},
	{"huge dims with zero", safeBuild(`{"a":{"dtype":"F32","shape":[1000000000000,1000000000000,0],"data_offsets":[0,0]}}`, nil), "overflows"},
	{"terabyte tensor", safeBuild(`{"a":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,4000000000000]}}`, make([]byte, 4)), "beyond the 4-byte data buffer"},
	{"shape bytes mismatch", safeBuild(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), "shape [2] of F32 is 8 bytes but data_offsets [0 4] span 4"},
	{"offsets one", safeBuild(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}`, make([]byte, 4)), "is not [begin, end]"},
	{"offsets reversed", safeBuild(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, make([]byte, 4)), "begin > end"},
	{"offsets negative", safeBuild(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}`, make([]byte, 1)), "data_offsets: element 0 is -1"},
	{"offsets beyond end", safeBuild(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 4)), `tensor "a": data_offsets [4 8] beyond the 4-byte data buffer`},
	{"overlap", safeBuild(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), `tensor "b": data_offsets [4 8] overlaps "a" at [0 8]`},
	{"same span", safeBuild(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "overlaps"},
	{"hole", safeBuild(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), `tensor "b": data_offsets [8 12] leaves a hole`},
	{"hole at start", safeBuild(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), "leaves a hole after the start of the buffer"},
	{"trailing data", safeBuild(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 5)), "tensors cover 4 bytes but the data buffer has 5"},
	{"truncated data", safeBuild(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 7)), "beyond the 7-byte data buffer"},
	{"duplicate tensor", safeBuild(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2)), `duplicate name "a"`},
	{"metadata not object", safeBuild(`{"__metadata__":"x"}`, nil), "__metadata__ is \"x\", not an object"},
	{"metadata value number", safeBuild(`{"__metadata__":{"k":1}}`, nil), `__metadata__["k"] is 1, not a string`},
	{"metadata value null", safeBuild(`{"__metadata__":{"k":null}}`, nil), "not a string"},
	{"metadata duplicate", safeBuild(`{"__metadata__":{"k":"a","k":"b"}}`, nil), `duplicate metadata key "k"`},
	{"metadata twice", safeBuild(`{"__metadata__":{},"__metadata__":{}}`, nil), `duplicate name "__metadata__"`},
}
