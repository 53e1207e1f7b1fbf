package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestPESICommand(t *testing.T) {
	var out, errb bytes.Buffer
	// loope-paper §7 Table 5, 1D Sinusoid row.
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
