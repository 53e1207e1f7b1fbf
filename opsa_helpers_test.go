package loope

import "math/rand/v2"

// Helpers for the opsa rows of gradCases (element-wise, reduction, shape
// and loss ops).

// binCase returns a gradCase build for the binary op code op on in[0], in[1].
func binCase(op int) func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
	return func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
		switch op {
		case opAdd:
			return tp.Add(in[0], in[1])
		case opSub:
			return tp.Sub(in[0], in[1])
		case opMul:
			return tp.Mul(in[0], in[1])
		default:
			return tp.Div(in[0], in[1])
		}
	}
}

// unaryCase returns a gradCase build applying f to in[0].
func unaryCase(f func(*Tape[float64], *Tensor[float64]) *Tensor[float64]) func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] {
	return func(tp *Tape[float64], in []*Tensor[float64]) *Tensor[float64] { return f(tp, in[0]) }
}

// uniformInit fills every input with U(lo, hi).
func uniformInit(lo, hi float64) func(int, []float64, *rand.Rand) {
	return func(_ int, x []float64, rng *rand.Rand) {
		for j := range x {
			x[j] = lo + (hi-lo)*rng.Float64()
		}
	}
}

// awayFromZero fills input i with ±U(0.3, 1.3) (random sign) and the other
// inputs with U(-1, 1): a kink or pole at 0 stays ≥ 0.3 away, far beyond
// the 1e-6 FD step.
func awayFromZero(i int) func(int, []float64, *rand.Rand) {
	return func(k int, x []float64, rng *rand.Rand) {
		for j := range x {
			if k != i {
				x[j] = 2*rng.Float64() - 1
				continue
			}
			v := 0.3 + rng.Float64()
			if rng.IntN(2) == 0 {
				v = -v
			}
			x[j] = v
		}
	}
}
