package loope_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/loope-go/loope"
)

// ExampleSafeFile writes a small checkpoint atomically and reads it back,
// converting the stored F32 weights to float64.
func ExampleSafeFile() {
	dir, err := os.MkdirTemp("", "loope-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ckpt.safetensors")

	f := loope.NewSafeFile()
	f.Metadata["step"] = "100"
	w := loope.FromData([]float32{0.5, -1, 2, 4}, 2, 2)
	if err := loope.PutTensor(f, "head.weight", w); err != nil {
		panic(err)
	}
	if err := loope.PutInts(f, "order", []int{2, 0, 1, 3}, 4); err != nil {
		panic(err)
	}
	if err := f.WriteFile(path); err != nil {
		panic(err)
	}

	g, err := loope.ReadSafeFile(path)
	if err != nil {
		panic(err)
	}
	back, err := loope.GetTensor[float64](g, "head.weight")
	if err != nil {
		panic(err)
	}
	order, _, err := loope.GetInts(g, "order")
	if err != nil {
		panic(err)
	}
	fmt.Println(g.Names, g.Metadata["step"], g.Tensors["head.weight"].DType)
	fmt.Println(back.Shape, back.Data, order)
	// Output:
	// [head.weight order] 100 F32
	// [2 2] [0.5 -1 2 4] [2 0 1 3]
}
