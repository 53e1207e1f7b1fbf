// Package loope is a pure-Go reference implementation of LOOPE, "Learnable
// Optimal Patch Order in Positional Embeddings for Vision Transformers"
// (arXiv 2504.14386), with its own tensors, a packed SIMD GEMM, a
// reverse-mode autodiff tape, a timm-faithful ViT, every positional
// embedding the paper compares, the Three-Cell Experiment and the PESI
// metrics.
//
// # Notation
//
// Shape comments throughout use:
//
//	B batch, N tokens (incl. CLS), D width, H heads, Dh head dim (D/H),
//	P patch side, G grid side, C channels, K outputs (classes or label bits).
//
// # Precision
//
// Every op is written once for Float (float32 or float64). Training and
// benchmarks use float32; gradient checks, goldens and -f64 fixtures use
// float64.
//
// # Autodiff
//
// A Tape records ops in creation order; Backward replays them in reverse and
// accumulates into Tensor.Grad. Each op's forward and backward sit next to
// each other in the ops_*.go files. Tape.Reset recycles every activation and
// gradient buffer for the next step.
package loope
