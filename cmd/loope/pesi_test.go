package main

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/loope-go/loope"
)

func TestPESICommand(t *testing.T) {
	var out, errb bytes.Buffer
	// docs/paper.md §7 Table 5, 1D Sinusoid row.
	if err := pesiMain([]string{"-pe", "sin1d"}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	if got, want := strings.TrimSpace(out.String()), "M_U 1.9567  M_D 1.4905  A_SU 0.1243"; got != want {
		t.Errorf("pesi -pe sin1d: got %q, want %q", got, want)
	}
	out.Reset()
	if err := pesiMain([]string{"-all", "-dim", "64", "-grid", "5x6", "-directions", "8"}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	if n := strings.Count(out.String(), "\n| "); n != 1+10 { // header + one row per PE
		t.Errorf("-all printed %d table rows, want 11:\n%s", n, out.String())
	}
	for _, bad := range [][]string{
		{"-pe", "spiral"}, {"-grid", "0"}, {"-grid", "3y4"}, {"-dim", "7"}, {"-directions", "0"},
		{"-freqs", "f9"}, {"-pe", "sincos2d", "-dim", "6"}, {"extra"}, {"-nosuchflag"},
	} {
		errb.Reset()
		if err := pesiMain(bad, &out, &errb); err != errUsage {
			t.Errorf("%v: err = %v, want errUsage", bad, err)
		}
	}
	errb.Reset()
	pesiMain([]string{"-pe", "spiral"}, &out, &errb)
	if !strings.Contains(errb.String(), "sincos2d-sum") {
		t.Errorf("unknown PE message does not list the valid names: %q", errb.String())
	}
}

func TestPESICommandFile(t *testing.T) {
	dir := t.TempDir()
	pe, err := loope.FixedPE("hilbert", 64, 6, 6, "")
	if err != nil {
		t.Fatal(err)
	}
	f := loope.NewSafeFile()
	if err := loope.PutFloat(f, "pos_embed", pe, 1, 37, 64); err != nil {
		t.Fatal(err)
	}
	one := filepath.Join(dir, "one.safetensors")
	if err := f.WriteFile(one); err != nil {
		t.Fatal(err)
	}
	// Score the table as read back (F64, so identical) directly.
	back, _, err := loope.GetFloat[float64](f, "pos_embed")
	if err != nil {
		t.Fatal(err)
	}
	s := loope.PESI(loope.DropCLS(back, 64), 64, 6, 6, 12)
	want := fmt.Sprintf("M_U %.4f  M_D %.4f  A_SU %.4f", s.MU, s.MD, s.ASU)
	for _, args := range [][]string{
		{"-in", one, "-directions", "12"},                                       // grid inferred from 37 = 6²+1
		{"-in", one, "-tensor", "pos_embed", "-grid", "6", "-directions", "12"}, // explicit
	} {
		var out, errb bytes.Buffer
		if err := pesiMain(args, &out, &errb); err != nil {
			t.Fatal(args, err, errb.String())
		}
		if got := strings.TrimSpace(out.String()); got != want {
			t.Errorf("%v: got %q, want %q", args, got, want)
		}
	}
	if err := loope.PutFloat(f, "other", pe[:64*36], 36, 64); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two.safetensors")
	if err := f.WriteFile(two); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	for _, tc := range []struct {
		args []string
		msg  string // "" means a usage error
	}{
		{[]string{"-in", two}, "choose one with -tensor"},
		{[]string{"-in", two, "-tensor", "other", "-grid", "4x4"}, "needs 16 or 17"},
		{[]string{"-in", two, "-tensor", "nope"}, "nope"},
		{[]string{"-in", filepath.Join(dir, "missing.safetensors")}, "missing"},
		{[]string{"-in", one, "-all"}, ""},
		{[]string{"-tensor", "pos_embed"}, ""},
	} {
		err := pesiMain(tc.args, &out, &errb)
		switch {
		case tc.msg == "" && err != errUsage:
			t.Errorf("%v: err = %v, want errUsage", tc.args, err)
		case tc.msg != "" && (err == nil || err == errUsage || !strings.Contains(err.Error(), tc.msg)):
			t.Errorf("%v: err = %v, want an error mentioning %q", tc.args, err, tc.msg)
		}
	}
	// The other tensor (36 rows, no CLS) on its inferred 6×6 grid.
	out.Reset()
	if err := pesiMain([]string{"-in", two, "-tensor", "other", "-directions", "12"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got == "" {
		t.Error("no output for a CLS-free table")
	}
}

// TestPESIRejectsBadTables: `pesi -in` refuses a table with a NaN or Inf
// or an all-zero row, naming the row, and a grid side below 2 (issue 19
// finding 9).
func TestPESIRejectsBadTables(t *testing.T) {
	dir := t.TempDir()
	good, err := loope.FixedPE("hilbert", 8, 3, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, edit func(d []float64)) string {
		d := slices.Clone(good)
		edit(d)
		f := loope.NewSafeFile()
		if err := loope.PutFloat(f, "pos_embed", d, 1, 10, 8); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".safetensors")
		if err := f.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-in", write("nan", func(d []float64) { d[3*8+2] = math.NaN() })}, "row 3 holds NaN at column 2"},
		{[]string{"-in", write("inf", func(d []float64) { d[9*8] = math.Inf(-1) })}, "row 9 holds -Inf at column 0"},
		{[]string{"-in", write("zero", func(d []float64) { clear(d[5*8 : 6*8]) })}, "row 5 is all zeros"},
		{[]string{"-in", write("ok", func([]float64) {}), "-grid", "1x9"}, "each side ≥ 2"},
		{[]string{"-grid", "1"}, "each side ≥ 2"},
	} {
		var out, errb bytes.Buffer
		err := pesiMain(tc.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error()+errb.String(), tc.want) {
			t.Errorf("%v: got %v (stderr %q, stdout %q), want %q", tc.args, err, errb.String(), out.String(), tc.want)
		}
	}
	var out, errb bytes.Buffer
	if err := pesiMain([]string{"-in", filepath.Join(dir, "ok.safetensors")}, &out, &errb); err != nil || !strings.HasPrefix(out.String(), "M_U ") {
		t.Errorf("good table: %v %q", err, out.String())
	}
}
