//go:build !amd64 || noasm

// This file is the build without assembly kernels: the float32
// transcendental kernels of fastmath.go run in plain Go.

package loope

// archFastMath is false: no assembly kernels in this build.
const archFastMath = false

func softmaxRowAVX2(r *float32, n int, c *[fmRows][8]float32) { panic("loope: no assembly kernels") }

func softmaxBackRowAVX2(p, d *float32, n int, scale float32, c *[fmRows][8]float32) {
	panic("loope: no assembly kernels")
}

func geluAVX2(y, x *float32, n int, c *[fmRows][8]float32) { panic("loope: no assembly kernels") }

func geluDerivAVX2(y, der, x *float32, n int, c *[fmRows][8]float32) {
	panic("loope: no assembly kernels")
}

func mulAddAVX2(dst, a, b *float32, n int) { panic("loope: no assembly kernels") }

func expAVX2(y, x *float32, n int, c *[fmRows][8]float32) { panic("loope: no assembly kernels") }
