//go:build !amd64 || noasm

// This file is the build without assembly kernels: every GEMM runs the
// plain-Go micro-kernel of matmul_generic.go.

package loope

// archKernelF32 returns nil: no assembly kernel in this build.
func archKernelF32() *gemmKernel[float32] { return nil }

// archKernelF64 returns nil: no assembly kernel in this build.
func archKernelF64() *gemmKernel[float64] { return nil }
