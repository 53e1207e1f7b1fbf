package loope

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// Forward-value tests for the element-wise, reduction, shape and loss ops,
// beyond the finite-difference checks in gradcheck_test.go: every expected
// number below comes from a closed formula or a naive reference loop.

// mustPanic fails unless f panics with a message containing want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one containing %q", want)
		}
		if msg, _ := r.(string); !strings.Contains(msg, want) {
			t.Fatalf("panic %q, want it to contain %q", r, want)
		}
	}()
	f()
}

func randTensor(rng *rand.Rand, shape ...int) *Tensor[float64] {
	return New[float64](shape...).FillUniform(rng, -1, 1)
}

// naiveBroadcast computes op elementwise by explicit NumPy index mapping.
func naiveBroadcast(op int, a, b *Tensor[float64], out []int) []float64 {
	r := len(out)
	n := numel("test", out)
	res := make([]float64, n)
	idx := make([]int, r)
	for e := range n {
		rem := e
		for k := r - 1; k >= 0; k-- {
			idx[k] = rem % out[k]
			rem /= out[k]
		}
		at := func(t *Tensor[float64]) float64 {
			off := 0
			for k, d := range t.Shape {
				i := idx[k+r-len(t.Shape)]
				if d == 1 {
					i = 0
				}
				off = off*d + i
			}
			return t.Data[off]
		}
		x, y := at(a), at(b)
		switch op {
		case opAdd:
			res[e] = x + y
		case opSub:
			res[e] = x - y
		case opMul:
			res[e] = x * y
		default:
			res[e] = x / y
		}
	}
	return res
}

func TestBroadcastForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	cases := []struct{ a, b, out []int }{
		{[]int{2, 3, 4}, []int{2, 3, 4}, []int{2, 3, 4}},
		{[]int{2, 3, 4}, []int{4}, []int{2, 3, 4}},
		{[]int{2, 3, 4}, []int{3, 4}, []int{2, 3, 4}},
		{[]int{3, 4}, []int{2, 3, 4}, []int{2, 3, 4}},
		{[]int{2, 1, 4}, []int{3, 1}, []int{2, 3, 4}},
		{[]int{3, 1}, []int{1, 4}, []int{3, 4}},
		{[]int{}, []int{2, 3}, []int{2, 3}},
		{[]int{}, []int{}, []int{}},
		{[]int{1, 1}, []int{1}, []int{1, 1}},
		{[]int{2, 3, 4}, []int{2, 3, 1}, []int{2, 3, 4}},
		{[]int{2, 1, 3, 1, 2}, []int{4, 1, 5, 2}, []int{2, 4, 3, 5, 2}},
		{[]int{1, 5, 1, 6}, []int{7, 1, 3, 1}, []int{7, 5, 3, 6}},
		{[]int{0, 3}, []int{3}, []int{0, 3}},
	}
	for _, c := range cases {
		for op := range 4 {
			a, b := randTensor(rng, c.a...), randTensor(rng, c.b...)
			var tp Tape[float64]
			got := tp.binary(op, a, b)
			if !sameShape(got.Shape, c.out) {
				t.Fatalf("%s %v, %v: shape %v, want %v", binaryNames[op], c.a, c.b, got.Shape, c.out)
			}
			want := naiveBroadcast(op, a, b, c.out)
			for i := range want {
				if got.Data[i] != want[i] {
					t.Fatalf("%s %v, %v: elem %d = %v, want %v", binaryNames[op], c.a, c.b, i, got.Data[i], want[i])
				}
			}
		}
	}
	mustPanic(t, "loope: Add: cannot broadcast", func() {
		var tp Tape[float64]
		tp.Add(New[float64](2, 3), New[float64](2))
	})
	mustPanic(t, "loope: AddBias: shape mismatch", func() {
		var tp Tape[float64]
		tp.AddBias(New[float64](2, 3), New[float64](2))
	})
}

// TestParallelBitIdentical checks that kernels that split over threads
// give bit-identical values and gradients for 1 and 4 threads, on tensors
// large enough to take the parallel paths.
func TestParallelBitIdentical(t *testing.T) {
	defer SetThreads(Threads())
	run := func(threads int) (vals, grads [][]float32) {
		SetThreads(threads)
		rng := rand.New(rand.NewPCG(3, 3))
		x := NewParam[float32](8, 96, 64)
		x.FillNormal(rng, 0, 1)
		bias := NewParam[float32](64)
		bias.FillNormal(rng, 0, 1)
		rowScale := NewParam[float32](8, 96, 1)
		rowScale.FillNormal(rng, 1, 0.1)
		var tp Tape[float32]
		h := tp.GELU(tp.Mul(tp.AddBias(x, bias), rowScale))
		s := tp.Softmax(tp.Div(h, rowScale))
		y := tp.Sub(tp.Tanh(s), h)
		tp.Backward(tp.Mean(tp.Mul(y, y)))
		return [][]float32{h.Data, s.Data, y.Data}, [][]float32{x.Grad, bias.Grad, rowScale.Grad}
	}
	v1, g1 := run(1)
	v4, g4 := run(4)
	for k := range v1 {
		for i := range v1[k] {
			if math.Float32bits(v1[k][i]) != math.Float32bits(v4[k][i]) {
				t.Fatalf("value %d elem %d: %v (1 thread) vs %v (4 threads)", k, i, v1[k][i], v4[k][i])
			}
		}
	}
	for k := range g1 {
		for i := range g1[k] {
			if math.Float32bits(g1[k][i]) != math.Float32bits(g4[k][i]) {
				t.Fatalf("grad %d elem %d: %v (1 thread) vs %v (4 threads)", k, i, g1[k][i], g4[k][i])
			}
		}
	}
}

func TestActivationValues(t *testing.T) {
	var tp Tape[float64]
	x := FromData([]float64{1, 0, -1, 2.5, -3}, 5)
	// GELU(1) = Φ(1) = 0.5·(1 + erf(1/√2)) = 0.8413447460685429 (standard normal CDF at 1).
	if g := tp.GELU(x).Data[0]; math.Abs(g-0.8413447460685429) > 1e-15 {
		t.Errorf("GELU(1) = %.17g, want 0.8413447460685429", g)
	}
	checks := []struct {
		name string
		f    func(*Tensor[float64]) *Tensor[float64]
		want func(float64) float64
	}{
		{"GELU", tp.GELU, func(v float64) float64 { return 0.5 * v * math.Erfc(-v/math.Sqrt2) }},
		{"ReLU", tp.ReLU, func(v float64) float64 { return math.Max(v, 0) }},
		{"Sigmoid", tp.Sigmoid, func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }},
		{"Tanh", tp.Tanh, math.Tanh},
		{"Sin", tp.Sin, math.Sin},
		{"Cos", tp.Cos, math.Cos},
		{"Exp", tp.Exp, math.Exp},
	}
	for _, c := range checks {
		y := c.f(x)
		for i, v := range x.Data {
			if w := c.want(v); math.Abs(y.Data[i]-w) > 1e-15*max(1, math.Abs(w)) {
				t.Errorf("%s(%v) = %v, want %v", c.name, v, y.Data[i], w)
			}
		}
	}
	if l := tp.Log(FromData([]float64{math.E}, 1)).Data[0]; math.Abs(l-1) > 1e-15 {
		t.Errorf("Log(e) = %v, want 1", l)
	}
	// Sigmoid must not overflow for very negative inputs.
	if s := tp.Sigmoid(FromData([]float64{-1000, 1000}, 2)).Data; s[0] != 0 || s[1] != 1 {
		t.Errorf("Sigmoid(∓1000) = %v, want [0 1]", s)
	}
	// float32 runs the fast kernel of fastmath.go: within 2 ulp here.
	var tp32 Tape[float32]
	g32 := tp32.GELU(FromData([]float32{1}, 1)).Data[0]
	if d := ulpDiff(g32, 0.8413447460685429); d > 2 {
		t.Errorf("float32 GELU(1) = %v, want %v (%.1f ulp off)", g32, float32(0.8413447460685429), d)
	}
	if g := tp.Scale(x, -2).Data[3]; g != -5 {
		t.Errorf("Scale(2.5, -2) = %v, want -5", g)
	}
	if g := tp.AddScalar(x, 0.5).Data[2]; g != -0.5 {
		t.Errorf("AddScalar(-1, 0.5) = %v, want -0.5", g)
	}
}

func TestReduceValues(t *testing.T) {
	var tp Tape[float64]
	x := FromData([]float64{1, 2, 3, 4, 5, 6}, 2, 3)
	if s := tp.Sum(x); len(s.Shape) != 0 || s.Shape == nil || s.Data[0] != 21 {
		t.Errorf("Sum = %v (shape %#v), want 21 with shape []int{}", s.Data, s.Shape)
	}
	if m := tp.Mean(x); len(m.Shape) != 0 || m.Data[0] != 3.5 {
		t.Errorf("Mean = %v, want 3.5", m.Data)
	}
	for _, c := range []struct {
		got   *Tensor[float64]
		shape []int
		want  []float64
	}{
		{tp.SumAxis(x, 0, false), []int{3}, []float64{5, 7, 9}},
		{tp.SumAxis(x, -1, true), []int{2, 1}, []float64{6, 15}},
		{tp.MeanAxis(x, 1, false), []int{2}, []float64{2, 5}},
		{tp.MeanAxis(x, -2, true), []int{1, 3}, []float64{2.5, 3.5, 4.5}},
	} {
		if !sameShape(c.got.Shape, c.shape) {
			t.Errorf("shape %v, want %v", c.got.Shape, c.shape)
			continue
		}
		for i, w := range c.want {
			if c.got.Data[i] != w {
				t.Errorf("got %v, want %v", c.got.Data, c.want)
				break
			}
		}
	}
	mustPanic(t, "loope: SumAxis: axis 2 out of range", func() { tp.SumAxis(x, 2, false) })
}

func TestSoftmaxValues(t *testing.T) {
	var tp Tape[float64]
	// Row 0 is row 1 shifted by +1000 and row 2 by −1000: softmax is shift
	// invariant, so all three rows must agree, with no Inf or NaN.
	x := FromData([]float64{
		1, 2, 3, 0.5,
		1001, 1002, 1003, 1000.5,
		-999, -998, -997, -999.5,
	}, 3, 4)
	y := tp.Softmax(x)
	// Row 0 by the definition e^x_j / Σ e^x_k.
	z := math.Exp(1) + math.Exp(2) + math.Exp(3) + math.Exp(0.5)
	for r := range 3 {
		s := 0.0
		for j := range 4 {
			v := y.Data[r*4+j]
			if want := math.Exp(x.Data[j]) / z; math.IsNaN(v) || math.Abs(v-want) > 1e-15 {
				t.Errorf("row %d elem %d: %v, want %v", r, j, v, want)
			}
			s += v
		}
		if math.Abs(s-1) > 1e-15 {
			t.Errorf("row %d sums to %v", r, s)
		}
	}
	var tp32 Tape[float32]
	y32 := tp32.Softmax(FromData([]float32{1000, -1000, 0, 1000}, 2, 2))
	if y32.Data[0] != 1 || y32.Data[1] != 0 || y32.Data[2] != 0 || y32.Data[3] != 1 {
		t.Errorf("float32 Softmax of ±1000 = %v, want [1 0 0 1]", y32.Data)
	}
}

func TestCrossEntropyValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	logits := randTensor(rng, 3, 4)
	for i := range logits.Data {
		logits.Data[i] *= 3
	}
	labels := []int{2, 0, 3}
	for _, eps := range []float64{0, 0.1, 0.5} {
		// Hand formula: p = e^x / Σ e^x, loss_r = (1−ε)(−ln p_y) + ε·mean_k(−ln p_k).
		want := 0.0
		for r, y := range labels {
			z := 0.0
			for k := range 4 {
				z += math.Exp(logits.Data[r*4+k])
			}
			mean := 0.0
			for k := range 4 {
				mean -= math.Log(math.Exp(logits.Data[r*4+k])/z) / 4
			}
			want += (1-eps)*-math.Log(math.Exp(logits.Data[r*4+y])/z) + eps*mean
		}
		want /= 3
		var tp Tape[float64]
		if got := tp.CrossEntropy(logits, labels, eps).Data[0]; math.Abs(got-want) > 1e-14 {
			t.Errorf("ε=%v: CrossEntropy = %.17g, want %.17g", eps, got, want)
		}
	}
	// Equal logits: p = 1/K for every class, so loss = ln K for any ε.
	var tp Tape[float64]
	if got := tp.CrossEntropy(FromData([]float64{1000, 1000, 1000, 1000, 1000}, 1, 5), []int{3}, 0.2).Data[0]; math.Abs(got-math.Log(5)) > 1e-12 {
		t.Errorf("uniform logits: %v, want ln 5 = %v", got, math.Log(5))
	}
	mustPanic(t, "loope: CrossEntropy: label 4 of row 1 out of range", func() {
		tp.CrossEntropy(logits, []int{0, 4, 1}, 0)
	})
	mustPanic(t, "loope: CrossEntropy:", func() { tp.CrossEntropy(logits, []int{0, 1}, 0) })
}

func TestBCEWithLogitsValues(t *testing.T) {
	xs := []float64{-3, -0.5, 0, 0.7, 2.5, 4}
	ts := []float64{0, 1, 0.5, 1, 0.2, 0}
	// Naive: −[t·ln σ(x) + (1−t)·ln(1−σ(x))], fine for moderate x.
	want := 0.0
	for i, x := range xs {
		s := 1 / (1 + math.Exp(-x))
		want -= ts[i]*math.Log(s) + (1-ts[i])*math.Log(1-s)
	}
	want /= float64(len(xs))
	var tp Tape[float64]
	if got := tp.BCEWithLogits(FromData(xs, 2, 3), FromData(ts, 2, 3)).Data[0]; math.Abs(got-want) > 1e-14 {
		t.Errorf("BCE = %.17g, want %.17g", got, want)
	}
	// Extremes: x = 100, t = 0 costs 100 + ln(1+e^−100) ≈ 100; x = −100, t = 0
	// costs ln(1+e^−100) ≈ e^−100; x = ±100 with the matching label ≈ e^−100.
	big := tp.BCEWithLogits(FromData([]float64{100, -100, 100, -100}, 4), FromData([]float64{0, 0, 1, 1}, 4)).Data[0]
	if wantBig := (100 + 100 + 2*math.Exp(-100) + 2*math.Exp(-100)) / 4; math.IsInf(big, 0) || math.IsNaN(big) || math.Abs(big-wantBig) > 1e-12 {
		t.Errorf("BCE at ±100 = %v, want %v", big, wantBig)
	}
	// Targets never receive a gradient, even if they have a Grad buffer.
	logits := NewParam[float64](2, 3)
	copy(logits.Data, xs)
	targets := NewParam[float64](2, 3)
	copy(targets.Data, ts)
	tp.Reset()
	tp.Backward(tp.BCEWithLogits(logits, targets))
	for i, g := range targets.Grad {
		if g != 0 {
			t.Fatalf("targets.Grad[%d] = %v, want 0", i, g)
		}
	}
	for i, g := range logits.Grad {
		if want := (1/(1+math.Exp(-xs[i])) - ts[i]) / 6; math.Abs(g-want) > 1e-15 {
			t.Errorf("logits.Grad[%d] = %v, want (σ(x)−t)/n = %v", i, g, want)
		}
	}
}

func TestShapeOpValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	var tp Tape[float64]
	// Permute against an explicit index loop, on a shape big enough to
	// cross the 32-wide tiles of the last-two-axes fast path.
	x := randTensor(rng, 2, 33, 40)
	for _, perm := range [][]int{{0, 2, 1}, {1, 0, 2}, {2, 1, 0}, {1, 2, 0}} {
		y := tp.Permute(x, perm...)
		for i := range 2 {
			for j := range 33 {
				for k := range 40 {
					src := [3]int{i, j, k}
					if got, want := y.At(src[perm[0]], src[perm[1]], src[perm[2]]), x.At(i, j, k); got != want {
						t.Fatalf("perm %v at %v: %v, want %v", perm, src, got, want)
					}
				}
			}
		}
	}
	if y := tp.Transpose(x, 0, -1); !sameShape(y.Shape, []int{40, 33, 2}) || y.At(5, 7, 1) != x.At(1, 7, 5) {
		t.Errorf("Transpose(0, -1): shape %v", y.Shape)
	}
	// Split then Concat is the identity.
	parts := tp.Split(x, 1, 10, 0, 23)
	if !sameShape(parts[1].Shape, []int{2, 0, 40}) || !sameShape(parts[2].Shape, []int{2, 23, 40}) {
		t.Fatalf("Split shapes %v %v", parts[1].Shape, parts[2].Shape)
	}
	back := tp.Concat(-2, parts...)
	for i, v := range x.Data {
		if back.Data[i] != v {
			t.Fatalf("Concat(Split(x)) differs at %d", i)
		}
	}
	g := tp.Gather(x, -1, []int{39, 0, 39})
	if !sameShape(g.Shape, []int{2, 33, 3}) || g.At(1, 4, 0) != x.At(1, 4, 39) || g.At(1, 4, 1) != x.At(1, 4, 0) {
		t.Errorf("Gather wrong: shape %v", g.Shape)
	}
	mustPanic(t, "loope: Gather: index 40 out of range", func() { tp.Gather(x, 2, []int{40}) })
	mustPanic(t, "loope: Slice: range [3, 2)", func() { tp.Slice(x, 0, 3, 2) })
	mustPanic(t, "loope: Split: sizes [1 2]", func() { tp.Split(x, 0, 1, 2) })
	mustPanic(t, "loope: Permute: permutation [0 0 1]", func() { tp.Permute(x, 0, 0, 1) })
	mustPanic(t, "loope: Concat: shape [2 33 41]", func() { tp.Concat(1, x, New[float64](2, 33, 41)) })
}

func TestReshapeView(t *testing.T) {
	var tp Tape[float64]
	p := NewParam[float64](2, 6)
	for i := range p.Data {
		p.Data[i] = float64(i)
	}
	v := tp.Reshape(p, 3, -1)
	if !sameShape(v.Shape, []int{3, 4}) || &v.Data[0] != &p.Data[0] || &v.Grad[0] != &p.Grad[0] {
		t.Fatalf("Reshape is not a view: shape %v", v.Shape)
	}
	if tp.Len() != 0 {
		t.Errorf("Reshape recorded %d ops, want 0", tp.Len())
	}
	mustPanic(t, "loope: Reshape: cannot reshape [2 6] into [5 -1]", func() { tp.Reshape(p, 5, -1) })
	mustPanic(t, "loope: Reshape: bad shape [-1 -1]", func() { tp.Reshape(p, -1, -1) })
	// The arena must never write into a view's storage: after Reset, build
	// a step of ops whose outputs match the view's size and check that p is
	// untouched.
	want := append([]float64(nil), p.Data...)
	for step := range 3 {
		tp.Reset()
		if step == 0 {
			tp.Reshape(p, 12)
		}
		a := tp.New(12)
		b := tp.AddScalar(tp.Reshape(a, 3, 4), 7)
		tp.Backward(tp.Sum(tp.Mul(b, b)))
		for i, w := range want {
			if p.Data[i] != w || p.Grad[i] != 0 {
				t.Fatalf("step %d: p changed at %d: data %v grad %v", step, i, p.Data[i], p.Grad[i])
			}
		}
	}
	tp.NoGrad = true
	if v := tp.Reshape(p, 12); v.Grad != nil {
		t.Error("Reshape in no-grad mode carries a Grad")
	}
}

// TestGELUDerivative checks the backward, which takes Φ(x) = y/x from the
// forward output, against Φ(x) + x·φ(x) with Φ from erf, across the
// branch points ±1e-3 and −10, in float64 and float32.
func TestGELUDerivative(t *testing.T) {
	xs := []float64{-40, -12, -10.5, -10, -9.99, -3, -1, -0.3, -1.1e-3, -1e-3, -9e-4, -1e-8, 0,
		1e-30, 1e-8, 9e-4, 1e-3, 1.1e-3, 0.3, 1, 2.5, 8, 40}
	want := make([]float64, len(xs))
	for i, x := range xs {
		want[i] = 0.5*math.Erfc(-x/math.Sqrt2) + x*math.Exp(-x*x/2)/math.Sqrt(2*math.Pi)
	}
	x64 := NewParam[float64](len(xs))
	copy(x64.Data, xs)
	var tp Tape[float64]
	tp.Backward(tp.Sum(tp.GELU(x64)))
	x32 := NewParam[float32](len(xs))
	for i, v := range xs {
		x32.Data[i] = float32(v)
	}
	var tp32 Tape[float32]
	tp32.Backward(tp32.Sum(tp32.GELU(x32)))
	for i, w := range want {
		if d := math.Abs(x64.Grad[i] - w); d > 1e-15*max(1, math.Abs(w)) {
			t.Errorf("float64 GELU'(%g) = %.17g, want %.17g", xs[i], x64.Grad[i], w)
		}
		// float32: x is rounded to float32 first; compare with the exact
		// derivative at that rounded x.
		xr := float64(float32(xs[i]))
		w32 := 0.5*math.Erfc(-xr/math.Sqrt2) + xr*math.Exp(-xr*xr/2)/math.Sqrt(2*math.Pi)
		if d := math.Abs(float64(x32.Grad[i]) - w32); d > 3e-7*max(1, math.Abs(w32)) {
			t.Errorf("float32 GELU'(%g) = %.9g, want %.9g", xs[i], x32.Grad[i], w32)
		}
	}
}
