package loope_test

import (
	"fmt"
	"math"

	"github.com/loope-go/loope"
)

// One LayerNorm row and its backward in the reference layer: forward
// returns the row statistics the backward needs; the backward adds.
func ExampleRefLayerNormForward() {
	x, gamma, beta := []float64{1, 2, 3, 6}, []float64{1, 1, 1, 1}, []float64{0, 0, 0, 0}
	y, mean, rstd := make([]float64, 4), make([]float64, 1), make([]float64, 1)
	loope.RefLayerNormForward(y, mean, rstd, x, gamma, beta, 1, 4, 0)
	dx, dg, db := make([]float64, 4), make([]float64, 4), make([]float64, 4)
	loope.RefLayerNormBackward(dx, dg, db, []float64{1, 0, 0, 0}, x, gamma, mean, rstd, 1, 4)
	fmt.Printf("mean %.2f, y %.4f\n", mean[0], y)
	fmt.Printf("dx %.4f, sum zero: %v\n", dx, math.Abs(dx[0]+dx[1]+dx[2]+dx[3]) < 1e-12)
	// Output:
	// mean 3.00, y [-1.0690 -0.5345 0.0000 1.6036]
	// dx [0.2482 -0.2100 -0.1336 0.0955], sum zero: true
}

// A whole ViT step through the reference layer: LOOPE on the tiny preset,
// the BCE loss of the Three-Cell bits, and the gradients by checkpoint
// name, as a fixture stores them.
func ExampleRefViTForward() {
	cfg, _ := loope.Preset("tiny")
	cfg.PE.Name = "loope"
	m, _ := loope.NewViT[float64](cfg, 1)
	const b = 2
	img := make([]float64, b*cfg.Channels*cfg.Image*cfg.Image) // (B, C, H, W)
	for i := range img {
		img[i] = math.Sin(float64(i))
	}
	a, err := loope.RefViTForward(m, img, b)
	if err != nil {
		fmt.Println(err)
		return
	}
	targets := []float64{1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1} // (B, 6)
	dlogits := make([]float64, len(a.Logits))
	loss := loope.RefBCEWithLogits(dlogits, a.Logits, targets)
	grads := loope.RefViTBackward(m, a, dlogits)
	fmt.Printf("logits (%d, %d), loss %.4f\n", b, cfg.Classes, loss)
	fmt.Printf("%d gradients; LOOPE's Linear: %d values\n", len(grads), len(grads["pos_embed.art_conv.12.weight"]))
	// Output:
	// logits (2, 6), loss 0.6510
	// 69 gradients; LOOPE's Linear: 2401 values
}
