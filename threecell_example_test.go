package loope_test

import (
	"fmt"

	"github.com/loope-go/loope"
)

// The exact label priors of the paper's 14×14 Three-Cell data, and the
// Table 4 row of the best constant predictor (what a position-blind model
// can reach).
func ExampleThreeCellPriors() {
	p := loope.ThreeCellPriors(loope.ThreeCellGrid)
	fmt.Printf("P(bit=1) %.4f %.4f %.4f %.4f %.4f %.4f\n", p[0], p[1], p[2], p[3], p[4], p[5])
	fmt.Println(loope.ThreeCellPriorAcc(loope.ThreeCellGrid))
	// Output:
	// P(bit=1) 0.3292 0.3292 0.5000 0.4585 0.4585 0.6129
	// distance 67.1 orientation 50.0 area 54.1 vecsum 61.3 average 58.1
}

// One batch of the fixed training split, rendered as model input.
func ExampleThreeCellBatch() {
	tc := loope.NewThreeCell(loope.ThreeCellGrid, loope.ThreeCellCellPx, 0)
	first, _ := loope.ThreeCellTrain.Range()
	idx := []int{first, first + 1}
	side := tc.Side()
	x := make([]float32, len(idx)*3*side*side) // (B, 3, 224, 224)
	y := make([]float32, len(idx)*loope.ThreeCellBits)
	loope.ThreeCellBatch(x, y, tc, loope.ThreeCellFixedStream, idx)
	s := tc.Fixed(first)
	fmt.Println(side, s.Red, s.Green, s.Blue, y[:6])
	// Output:
	// 224 {6 12} {8 1} {11 2} [0 0 1 0 1 1]
}
