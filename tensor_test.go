package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// randOf returns a tensor of the given shape with U(-1, 1) values from rng.
func randOf[T Float](rng *rand.Rand, shape ...int) *Tensor[T] {
	return New[T](shape...).FillUniform(rng, -1, 1)
}

// maxDiff returns max_i |a_i − b_i|, panicking on a length mismatch.
func maxDiff[T, U Float](a []T, b []U) float64 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("maxDiff: lengths %d, %d", len(a), len(b)))
	}
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

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
