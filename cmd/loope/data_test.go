package main

import (
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/loope-go/loope"
)

// TestDataCSV writes a small CSV and reads it back against the library.
func TestDataCSV(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "tc.csv")
	var err error
	msg := captureStderr(t, func() { err = runData([]string{"-grid", "5", "-n", "50", "-data-seed", "3", "-out", out}) })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(msg, "priors G=5 P(bit=1) ") || strings.Count(msg, "\n") != 1 {
		t.Errorf("stderr %q, want one line of priors", msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"r_row", "r_col", "g_row", "g_col", "b_row", "b_col", "b0", "b1", "b2", "b3", "b4", "b5"}
	if len(rows) != 51 || len(rows[0]) != len(want) {
		t.Fatalf("%d rows of %d fields, want 51 of %d", len(rows), len(rows[0]), len(want))
	}
	for k, h := range want {
		if rows[0][k] != h {
			t.Fatalf("header field %d = %q, want %q", k, rows[0][k], h)
		}
	}
	tc := loope.NewThreeCell(5, 1, 3)
	for i, row := range rows[1:] {
		s := tc.Fixed(i)
		vals := []int{s.Red.Row, s.Red.Col, s.Green.Row, s.Green.Col, s.Blue.Row, s.Blue.Col}
		for _, v := range s.Labels {
			vals = append(vals, int(v))
		}
		for k, v := range vals {
			if row[k] != strconv.Itoa(v) {
				t.Fatalf("row %d field %s = %q, want %d", i, want[k], row[k], v)
			}
		}
	}
	if fi, err := os.Stat(out); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o644 {
		t.Errorf("output mode %v, want 0644", fi.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files in the output directory, want only tc.csv", len(ents))
	}
}

// TestDataSafetensors writes cells, labels and images and reads them back.
func TestDataSafetensors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tc.safetensors")
	var err error
	captureStderr(t, func() {
		err = runData([]string{"-grid", "4", "-cell", "3", "-n", "20", "-data-seed", "9", "-images", "-out", out})
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := loope.ReadSafeFile(out)
	if err != nil {
		t.Fatal(err)
	}
	cells, cshape, err := loope.GetInt64(f, "cells")
	if err != nil {
		t.Fatal(err)
	}
	labels, lshape, err := loope.GetUint8(f, "labels")
	if err != nil {
		t.Fatal(err)
	}
	images, ishape, err := loope.GetUint8(f, "images")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cshape, []int{20, 3, 2}) || !slices.Equal(lshape, []int{20, 6}) || !slices.Equal(ishape, []int{20, 12, 12, 3}) {
		t.Fatalf("shapes %v %v %v, want [20 3 2] [20 6] [20 12 12 3]", cshape, lshape, ishape)
	}
	if f.Metadata["grid"] != "4" || f.Metadata["seed"] != "9" || f.Metadata["cell_px"] != "3" {
		t.Errorf("metadata %v", f.Metadata)
	}
	tc := loope.NewThreeCell(4, 3, 9)
	img := make([]uint8, 12*12*3)
	for i := range 20 {
		s := tc.Fixed(i)
		want := []int64{int64(s.Red.Row), int64(s.Red.Col), int64(s.Green.Row), int64(s.Green.Col), int64(s.Blue.Row), int64(s.Blue.Col)}
		if !slices.Equal(cells[6*i:6*i+6], want) {
			t.Fatalf("sample %d: cells %v, want %v", i, cells[6*i:6*i+6], want)
		}
		if !slices.Equal(labels[6*i:6*i+6], s.Labels[:]) {
			t.Fatalf("sample %d: labels %v, want %v", i, labels[6*i:6*i+6], s.Labels)
		}
		s.RenderRGB(img, 3)
		if !slices.Equal(images[i*len(img):(i+1)*len(img)], img) {
			t.Fatalf("sample %d: image differs from RenderRGB", i)
		}
	}
	captureStderr(t, func() { err = runData([]string{"-grid", "4", "-n", "20", "-out", out}) })
	if err != nil {
		t.Fatal(err)
	}
	if f, err = loope.ReadSafeFile(out); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Names, []string{"cells", "labels"}) {
		t.Errorf("without -images: tensors %v, want [cells labels]", f.Names)
	}
}

// TestDataUsage checks that bad flags are usage errors and write nothing.
func TestDataUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-grid", "2", "-out", filepath.Join(dir, "a.csv")},
		{"-n", "0", "-out", filepath.Join(dir, "a.csv")},
		{"-cell", "0", "-out", filepath.Join(dir, "a.csv")},
		{"-out", filepath.Join(dir, "a.txt")},
		{"-images", "-out", filepath.Join(dir, "a.csv")},
		{},
		{"-bogus"},
	} {
		fs := captureStderr(t, func() {
			if err := runData(args); err != errUsage {
				t.Errorf("%q: got %v, want a usage error", args, err)
			}
		})
		if fs == "" {
			t.Errorf("%q: no message on stderr", args)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("usage errors left %d files behind", len(ents))
	}
}

// captureStderr runs fn with os.Stderr redirected and returns what it wrote.
func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	fn()
	os.Stderr = old
	w.Close()
	return <-done
}
