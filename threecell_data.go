// This file holds ThreeCellData, the Dataset adapter that renders
// Three-Cell images for a ViT: a fixed split of the dataset, or fresh
// images every epoch (streaming).

package loope

import "fmt"

// ThreeCellData is a Dataset of Three-Cell images rendered for a ViT:
// either N images of the fixed dataset from index First on, or, with
// Stream, N fresh images per epoch (image i of epoch e is Gen.Epoch(e, i)).
// Targets are the six label bits. It implements EpochSetter, so Train moves
// a stream to new images every epoch. Like ThreeCell it is not safe for
// concurrent use.
type ThreeCellData struct {
	Gen    *ThreeCell
	First  int  // first fixed-dataset index (fixed data only)
	N      int  // images (per epoch when streaming)
	Stream bool // fresh images every epoch
	epoch  int
}

// NewThreeCellSplit returns the first n images of a split of gen's fixed
// dataset (n = 0: the whole split).
func NewThreeCellSplit(gen *ThreeCell, split ThreeCellSplit, n int) (*ThreeCellData, error) {
	first, size := split.Range()
	if n == 0 {
		n = size
	}
	if n < 0 || n > size {
		return nil, fmt.Errorf("loope: Three-Cell %s split has %d images, asked for %d", split, size, n)
	}
	return &ThreeCellData{Gen: gen, First: first, N: n}, nil
}

// NewThreeCellStream returns a stream of n fresh images per epoch.
func NewThreeCellStream(gen *ThreeCell, n int) (*ThreeCellData, error) {
	if n <= 0 || uint64(n) > 1<<32 {
		return nil, fmt.Errorf("loope: Three-Cell stream needs 0 < images per epoch ≤ 2³², got %d", n)
	}
	return &ThreeCellData{Gen: gen, N: n, Stream: true}, nil
}

// NewThreeCellFor returns the Three-Cell generator whose images match cfg:
// one grid cell per patch, so the grid is cfg.Grid() and a cell is
// cfg.Patch pixels (presets: small 28 px = 14 × 2, tiny 14 px = 7 × 2,
// ti16 224 px = 14 × 16, the paper's images).
func NewThreeCellFor(cfg Config, seed uint64) (*ThreeCell, error) {
	if cfg.Channels != 3 {
		return nil, fmt.Errorf("loope: Three-Cell images are RGB, the model has %d channels", cfg.Channels)
	}
	if cfg.Patch <= 0 || cfg.Image%cfg.Patch != 0 || cfg.Image/cfg.Patch < 3 {
		return nil, fmt.Errorf("loope: Three-Cell needs image = grid·cell with grid ≥ 3 and cell = patch; image %d, patch %d",
			cfg.Image, cfg.Patch)
	}
	return NewThreeCell(cfg.Image/cfg.Patch, cfg.Patch, seed), nil
}

// CheckModel reports whether d's images fit the model cfg: RGB, side
// cfg.Image = grid·cell, and one cell per patch (cell = cfg.Patch), so the
// ViT's patch grid is the Three-Cell grid.
func (d *ThreeCellData) CheckModel(cfg Config) error {
	g, cell := d.Gen.Grid(), d.Gen.CellPx
	switch {
	case cfg.Channels != 3:
		return fmt.Errorf("loope: Three-Cell images are RGB, the model has %d channels", cfg.Channels)
	case d.Gen.Side() != cfg.Image:
		return fmt.Errorf("loope: Three-Cell images are %d px (grid %d × cell %d), the model takes %d px", d.Gen.Side(), g, cell, cfg.Image)
	case cell != cfg.Patch:
		return fmt.Errorf("loope: Three-Cell cell %d px ≠ patch %d px: the %d×%d patch grid is not the %d×%d cell grid",
			cell, cfg.Patch, cfg.Grid(), cfg.Grid(), g, g)
	}
	return nil
}

// Len returns the number of images (per epoch for a stream).
func (d *ThreeCellData) Len() int { return d.N }

// SetEpoch selects the images of epoch e of a stream; fixed data ignores it.
func (d *ThreeCellData) SetEpoch(e int) { d.epoch = e }

// Sample returns sample i (of the current epoch for a stream).
func (d *ThreeCellData) Sample(i int) ThreeCellSample {
	if i < 0 || i >= d.N {
		panic(fmt.Sprintf("loope: ThreeCellData.Sample: index %d outside [0, %d)", i, d.N))
	}
	if d.Stream {
		return d.Gen.Epoch(d.epoch, i)
	}
	return d.Gen.Fixed(d.First + i)
}

// Example writes image i (3, H, W) into img and its six label bits into
// target (at least 6 values).
func (d *ThreeCellData) Example(i int, img, target []float32) {
	s := d.Sample(i)
	RenderThreeCell(img, s, d.Gen.CellPx)
	for k, v := range s.Labels {
		target[k] = float32(v)
	}
}
