package loope

import (
	"slices"
	"testing"
)

// TestThreeCellCentres checks the nine cells of supplement Fig. 2 for
// G = 14 (docs/paper.md §8): (0,0), (13,0), (0,13), (13,13), (0,7), (7,0),
// (7,13), (13,7), (7,7).
func TestThreeCellCentres(t *testing.T) {
	t.Parallel()
	var got []Cell
	for _, row := range ThreeCellCentres(14) {
		got = append(got, row[:]...)
	}
	want := []Cell{{0, 0}, {13, 0}, {0, 13}, {13, 13}, {0, 7}, {7, 0}, {7, 13}, {13, 7}, {7, 7}}
	for _, c := range want {
		if !slices.Contains(got, c) {
			t.Errorf("centre cells %v lack %v", got, c)
		}
	}
	if len(got) != 9 {
		t.Errorf("%d cells, want 9", len(got))
	}
}
