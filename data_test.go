package loope

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// randomSet returns an ImageSet of n random c×h×w images with labels i mod k.
func randomSet(n, c, h, w, k int, seed uint64) *ImageSet {
	s := newImageSet(n, c, h, w, k)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range s.Pix {
		s.Pix[i] = uint8(rng.IntN(256))
	}
	for i := range s.Labels {
		s.Labels[i] = int32(i % k)
	}
	return s
}

func TestImageSetExampleNormalises(t *testing.T) {
	t.Parallel()
	s := randomSet(3, 3, 4, 5, 2, 1)
	mean, std := []float32{0.1, 0.5, 0.9}, []float32{0.2, 0.3, 0.4}
	if err := s.SetNorm(mean, std); err != nil {
		t.Fatal(err)
	}
	img, target := make([]float32, 3*4*5), make([]float32, 1)
	for i := range s.N {
		s.Example(i, img, target)
		if target[0] != float32(s.Labels[i]) {
			t.Fatalf("image %d: target %v, want %d", i, target[0], s.Labels[i])
		}
		for j, p := range s.Image(i) {
			c := j / 20
			want := (float64(p)/255 - float64(mean[c])) / float64(std[c])
			if math.Abs(float64(img[j])-want) > 1e-6*(1+math.Abs(want)) {
				t.Fatalf("image %d pixel %d: got %v, want %v", i, j, img[j], want)
			}
		}
	}
	if err := s.SetNorm([]float32{0}, []float32{0}); err == nil {
		t.Error("SetNorm accepted std 0")
	}
	if err := s.SetNorm([]float32{0, 0}, []float32{1, 1}); err == nil {
		t.Error("SetNorm accepted 2 values for 3 channels")
	}
}

func TestImageSetExampleNoAlloc(t *testing.T) {
	s := randomSet(4, 3, 8, 8, 3, 2)
	img, target := make([]float32, 3*8*8), make([]float32, 1)
	a := &Augment{Set: s, Pad: 2, Flip: true, Seed: 7}
	s.Prepare()
	if n := testing.AllocsPerRun(50, func() { s.Example(1, img, target) }); n != 0 {
		t.Errorf("ImageSet.Example: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(50, func() { a.Example(2, img, target) }); n != 0 {
		t.Errorf("Augment.Example: %v allocs, want 0", n)
	}
	v, err := s.View(3, 12) // resized as read, into pooled buffers
	if err != nil {
		t.Fatal(err)
	}
	v.Prepare()
	va := &Augment{Set: v, Pad: 2, Flip: true, Seed: 7}
	vimg := make([]float32, 3*12*12)
	if n := testing.AllocsPerRun(50, func() { v.Example(1, vimg, target) }); n != 0 {
		t.Errorf("View Example: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(50, func() { va.Example(2, vimg, target) }); n != 0 {
		t.Errorf("Augment of a View: %v allocs, want 0", n)
	}
}

func TestWithChannels(t *testing.T) {
	t.Parallel()
	g := randomSet(2, 1, 3, 3, 2, 3)
	if err := g.SetNorm([]float32{0.25}, []float32{0.5}); err != nil {
		t.Fatal(err)
	}
	r, err := g.WithChannels(3)
	if err != nil {
		t.Fatal(err)
	}
	img, target := make([]float32, 27), make([]float32, 1)
	r.Example(1, img, target)
	for c := range 3 {
		for j, p := range g.Image(1) {
			want := float32((float64(p)/255 - 0.25) / 0.5)
			if img[c*9+j] != want {
				t.Fatalf("channel %d pixel %d: got %v, want %v", c, j, img[c*9+j], want)
			}
		}
	}
	// Luma: BT.601 integer weights, rounded.
	c := randomSet(2, 3, 2, 2, 2, 4)
	y, err := c.WithChannels(1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		src := c.Image(i)
		for j := range 4 {
			want := math.Round(0.299*float64(src[j]) + 0.587*float64(src[4+j]) + 0.114*float64(src[8+j]))
			if float64(y.Image(i)[j]) != want {
				t.Errorf("luma %d,%d: got %d, want %v", i, j, y.Image(i)[j], want)
			}
		}
	}
	if _, err := c.WithChannels(2); err == nil {
		t.Error("3 → 2 channels accepted")
	}
}

func TestResizedArea2x(t *testing.T) {
	t.Parallel()
	// 28 → 14 is an exact 2×2 box average, rounded half away from zero.
	s := randomSet(3, 2, 28, 28, 2, 5)
	r, err := s.Resized(14)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.N {
		src, dst := s.Image(i), r.Image(i)
		for c := range 2 {
			for y := range 14 {
				for x := range 14 {
					at := func(yy, xx int) float64 { return float64(src[c*784+yy*28+xx]) }
					want := math.Round((at(2*y, 2*x) + at(2*y, 2*x+1) + at(2*y+1, 2*x) + at(2*y+1, 2*x+1)) / 4)
					if got := dst[c*196+y*14+x]; float64(got) != want {
						t.Fatalf("image %d c %d (%d,%d): got %d, want %v", i, c, y, x, got, want)
					}
				}
			}
		}
	}
	if !slices.Equal(r.Labels, s.Labels) {
		t.Error("labels changed")
	}
}

func TestResizedCentreCropAndBilinear(t *testing.T) {
	t.Parallel()
	// 2×4 → shortest side 4 (scale 2): 4×8 by bilinear, then the centre 4×4,
	// columns 2..5 of the enlarged image. Check against the formula
	// x_src = (j+0.5)/2 − 0.5 clamped, separable.
	s := newImageSet(1, 1, 2, 4, 1)
	copy(s.Pix, []uint8{0, 40, 80, 120, 200, 160, 120, 80})
	r, err := s.Resized(4)
	if err != nil {
		t.Fatal(err)
	}
	lerp := func(n, j int) (int, int, float64) {
		x := min(max((float64(j)+0.5)/2-0.5, 0), float64(n-1))
		k := int(x)
		return k, min(k+1, n-1), x - float64(k)
	}
	for y := range 4 {
		y0, y1, fy := lerp(2, y)
		for x := range 4 {
			x0, x1, fx := lerp(4, x+2)
			p := func(yy, xx int) float64 { return float64(s.Pix[yy*4+xx]) }
			top := p(y0, x0)*(1-fx) + p(y0, x1)*fx
			bot := p(y1, x0)*(1-fx) + p(y1, x1)*fx
			want := math.Round(top*(1-fy) + bot*fy)
			if got := r.Pix[y*4+x]; math.Abs(float64(got)-want) > 0 {
				t.Errorf("(%d,%d): got %d, want %v", y, x, got, want)
			}
		}
	}
	// A uniform image stays uniform through any resize.
	u := newImageSet(1, 1, 17, 9, 1)
	for i := range u.Pix {
		u.Pix[i] = 77
	}
	for _, size := range []int{3, 9, 14, 32} {
		ru, _ := u.Resized(size)
		for j, p := range ru.Pix {
			if p != 77 {
				t.Fatalf("size %d pixel %d: %d, want 77", size, j, p)
			}
		}
	}
}

// augmentReference builds the augmented uint8 image the slow way: pad with
// zeros, crop at (dy, dx), flip.
func augmentReference(s *ImageSet, i, pad, dy, dx int, flip bool) []uint8 {
	H, W, C := s.H, s.W, s.C
	P := make([]uint8, C*(H+2*pad)*(W+2*pad))
	pw := W + 2*pad
	for c := range C {
		for y := range H {
			for x := range W {
				P[c*(H+2*pad)*pw+(y+pad)*pw+x+pad] = s.Image(i)[c*H*W+y*W+x]
			}
		}
	}
	out := make([]uint8, C*H*W)
	for c := range C {
		for y := range H {
			for x := range W {
				cropped := P[c*(H+2*pad)*pw+(y+dy)*pw+x+dx]
				xo := x
				if flip {
					xo = W - 1 - x
				}
				out[c*H*W+y*W+xo] = cropped
			}
		}
	}
	return out
}

func TestAugment(t *testing.T) {
	t.Parallel()
	s := randomSet(40, 3, 6, 5, 4, 6)
	if err := s.SetNorm([]float32{0.3}, []float32{0.7}); err != nil {
		t.Fatal(err)
	}
	lut := s.table()
	a := &Augment{Set: s, Pad: 2, Flip: true, Seed: 11}
	img, target := make([]float32, 90), make([]float32, 1)
	flips, offsets := 0, map[[2]int]bool{}
	for i := range s.N {
		dy, dx, flip := a.draw(i)
		if dy < 0 || dy > 4 || dx < 0 || dx > 4 {
			t.Fatalf("offset (%d,%d) outside [0, 4]", dy, dx)
		}
		offsets[[2]int{dy, dx}] = true
		if flip {
			flips++
		}
		a.Example(i, img, target)
		want := augmentReference(s, i, 2, dy, dx, flip)
		for j, p := range want {
			if img[j] != lut[(j/30)*256+int(p)] {
				t.Fatalf("image %d pixel %d: got %v, want byte %d → %v", i, j, img[j], p, lut[(j/30)*256+int(p)])
			}
		}
		if target[0] != float32(s.Labels[i]) {
			t.Fatalf("target %v, want %d", target[0], s.Labels[i])
		}
	}
	if flips < 10 || flips > 30 || len(offsets) < 10 {
		t.Errorf("draws look degenerate: %d flips of 40, %d distinct offsets", flips, len(offsets))
	}
	// Determinism per (seed, epoch, index), independent of call order; the
	// epoch changes the draws.
	first := make([]float32, 90)
	a.Example(7, first, target)
	a.Example(3, img, target)
	a.Example(7, img, target)
	if !slices.Equal(first, img) {
		t.Error("same (seed, epoch, index) gave different images")
	}
	same := 0
	for i := range s.N {
		d0y, d0x, f0 := a.draw(i)
		a.SetEpoch(1)
		d1y, d1x, f1 := a.draw(i)
		a.SetEpoch(0)
		if d0y == d1y && d0x == d1x && f0 == f1 {
			same++
		}
	}
	if same > 10 {
		t.Errorf("epoch 1 repeats epoch 0's draws for %d of 40 images", same)
	}
	// Padding wider than the image: rows and columns may be all padding.
	wide := &Augment{Set: s, Pad: 7, Flip: true, Seed: 5}
	for i := range s.N {
		dy, dx, flip := wide.draw(i)
		wide.Example(i, img, target)
		for j, p := range augmentReference(s, i, 7, dy, dx, flip) {
			if img[j] != lut[(j/30)*256+int(p)] {
				t.Fatalf("pad 7 image %d pixel %d: got %v, want byte %d", i, j, img[j], p)
			}
		}
	}
	// No augmentation is the identity.
	none := &Augment{Set: s}
	s.Example(5, first, target)
	none.Example(5, img, target)
	if !slices.Equal(first, img) {
		t.Error("Augment without Pad and Flip changed the image")
	}
}

func TestSplitIndices(t *testing.T) {
	t.Parallel()
	train, val := SplitIndices(1000, 0.1, 3)
	if len(val) != 100 || len(train) != 900 {
		t.Fatalf("sizes %d/%d, want 900/100", len(train), len(val))
	}
	all := slices.Concat(train, val)
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("not a partition of 0..999: position %d holds %d", i, v)
		}
	}
	if !slices.IsSorted(train) || !slices.IsSorted(val) {
		t.Error("parts not sorted")
	}
	t2, v2 := SplitIndices(1000, 0.1, 3)
	if !slices.Equal(train, t2) || !slices.Equal(val, v2) {
		t.Error("same seed, different split")
	}
	_, v3 := SplitIndices(1000, 0.1, 4)
	if slices.Equal(val, v3) {
		t.Error("different seeds, same split")
	}
	if val[len(val)-1] < 500 || val[0] > 500 {
		t.Errorf("validation indices not spread: %d..%d", val[0], val[len(val)-1])
	}
	if tr, va := SplitIndices(5, 0, 1); len(tr) != 5 || len(va) != 0 {
		t.Errorf("valFrac 0: %v %v", tr, va)
	}
}

func TestSubsetAndCounts(t *testing.T) {
	t.Parallel()
	s := randomSet(10, 1, 2, 2, 3, 8)
	sub := s.Subset([]int{9, 0, 4})
	if sub.N != 3 || !slices.Equal(sub.Image(0), s.Image(9)) || !slices.Equal(sub.Image(2), s.Image(4)) {
		t.Error("Subset copied the wrong images")
	}
	if !slices.Equal(sub.Labels, []int32{0, 0, 1}) {
		t.Errorf("Subset labels %v, want [0 0 1]", sub.Labels)
	}
	if got := s.ClassCounts(); !slices.Equal(got, []int{4, 3, 3}) {
		t.Errorf("ClassCounts %v, want [4 3 3]", got)
	}
}

func BenchmarkImageSetExample(b *testing.B) {
	s := randomSet(64, 3, 32, 32, 10, 9)
	a := &Augment{Set: s, Pad: 4, Flip: true, Seed: 1}
	img, target := make([]float32, 3*32*32), make([]float32, 1)
	s.Prepare()
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.Example(i%64, img, target)
			i++
		}
	})
	b.Run("augment", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			a.Example(i%64, img, target)
			i++
		}
	})
}

func TestFitAndConcurrentExample(t *testing.T) {
	t.Parallel()
	g := randomSet(6, 1, 28, 28, 10, 12)
	if err := g.SetNorm([]float32{MNISTMean}, []float32{MNISTStd}); err != nil {
		t.Fatal(err)
	}
	f, err := g.Fit(3, 14)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := g.Resized(14)
	if f.Channels() != 3 || f.H != 14 || !slices.Equal(f.Pix, r.Pix) || len(f.Mean) != 3 {
		t.Fatalf("Fit(3, 14): %d channels, %d×%d, mean %v", f.Channels(), f.H, f.W, f.Mean)
	}
	c := randomSet(2, 3, 8, 8, 2, 13)
	f1, err := c.Fit(1, 4)
	if err != nil || f1.C != 1 || f1.H != 4 {
		t.Fatalf("Fit(1, 4): %v, %v", f1, err)
	}
	// Example only reads shared state: two goroutines on a fresh view (run
	// with -race to check).
	done := make(chan []float32)
	for range 2 {
		go func() {
			img, target := make([]float32, 3*14*14), make([]float32, 1)
			for i := range f.N {
				f.Example(i, img, target)
			}
			done <- img
		}()
	}
	if a, b := <-done, <-done; !slices.Equal(a, b) {
		t.Error("concurrent Example calls disagree")
	}
}

// TestViewMatchesFit: a View gives bit for bit the examples of Fit
// (shrinking, enlarging, 1 → 3 and 3 → 1 channels, after Subset and under
// Augment) while storing only the original pixels (issue 19 finding 7).
func TestViewMatchesFit(t *testing.T) {
	t.Parallel()
	grey := randomSet(5, 1, 28, 28, 3, 21)
	if err := grey.SetNorm([]float32{MNISTMean}, []float32{MNISTStd}); err != nil {
		t.Fatal(err)
	}
	rgb := randomSet(5, 3, 12, 16, 3, 22)
	for _, tc := range []struct {
		name    string
		s       *ImageSet
		c, size int
		pad     int
		flip    bool
	}{
		{"grey-shrink", grey, 3, 14, 0, false},
		{"grey-enlarge", grey, 3, 40, 5, true},
		{"grey-same", grey, 1, 28, 0, false},
		{"rgb-enlarge", rgb, 3, 20, 2, true},
		{"rgb-to-grey", rgb, 1, 10, 1, false},
	} {
		f, err := tc.s.Fit(tc.c, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		v, err := tc.s.View(tc.c, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Pix) > len(tc.s.Pix) {
			t.Errorf("%s: the view stores %d pixels, more than the %d stored", tc.name, len(v.Pix), len(tc.s.Pix))
		}
		idx := []int{4, 0, 2}
		for _, pair := range [][2]Dataset{{f, v}, {f.Subset(idx), v.Subset(idx)},
			{&Augment{Set: f, Pad: tc.pad, Flip: tc.flip, Seed: 3}, &Augment{Set: v, Pad: tc.pad, Flip: tc.flip, Seed: 3}}} {
			n := tc.c * tc.size * tc.size
			a, b := make([]float32, n), make([]float32, n)
			ta, tb := make([]float32, 1), make([]float32, 1)
			for i := range pair[0].Len() {
				pair[0].Example(i, a, ta)
				pair[1].Example(i, b, tb)
				if !slices.Equal(a, b) || ta[0] != tb[0] {
					t.Fatalf("%s: example %d of %T differs between Fit and View", tc.name, i, pair[0])
				}
			}
		}
	}
}

// TestLoadTrainData checks the splits of a flat image folder (the paper's
// 80/10/10: test first, then a ninth of the rest for validation, with a
// note on log), the views at the model's size, and the clear errors for a
// bad spec and a validation fraction that holds out nothing.
func TestLoadTrainData(t *testing.T) {
	dir := t.TempDir()
	for c, col := range []color.NRGBA{{255, 0, 0, 255}, {0, 0, 255, 255}} {
		for i := range 20 {
			writeImage(t, filepath.Join(dir, fmt.Sprintf("c%d", c), fmt.Sprintf("%d.png", i)), solid(6, 6, col))
		}
	}
	var log bytes.Buffer
	d, err := LoadTrainData("folder:"+dir, 3, 8, 0.5, 1, &log)
	if err != nil {
		t.Fatal(err)
	}
	if n := d.Train.Len() + d.Val.Len() + d.Test.Len(); n != 40 || d.Test.Len() != 4 || d.Val.Len() != 4 || d.Classes != 2 {
		t.Errorf("splits %d/%d/%d of %d, %d classes; want 32/4/4 of 40, 2 classes", d.Train.Len(), d.Val.Len(), d.Test.Len(), n, d.Classes)
	}
	if !strings.Contains(log.String(), "split 80/10/10") {
		t.Errorf("no note of the split: %q", log.String())
	}
	img, target := make([]float32, 3*8*8), make([]float32, 2)
	d.Train.Example(0, img, target)
	split := t.TempDir() // DIR/train and DIR/test: -val-frac applies
	for _, part := range []string{"train", "test"} {
		for c, col := range []color.NRGBA{{255, 0, 0, 255}, {0, 0, 255, 255}} {
			for i := range 4 {
				writeImage(t, filepath.Join(split, part, fmt.Sprintf("c%d", c), fmt.Sprintf("%d.png", i)), solid(6, 6, col))
			}
		}
	}
	for _, c := range []struct {
		spec    string
		valFrac float64
		want    string
	}{{"bogus:" + dir, 0.1, "unknown -data"}, {"cifar10", 0.1, "needs a folder"}, {"folder:" + split, 0.001, "holds out 0 for validation"}} {
		if _, err := LoadTrainData(c.spec, 3, 8, c.valFrac, 1, io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s, val-frac %g: got %v, want %q", c.spec, c.valFrac, err, c.want)
		}
	}
}
