// This file holds the image-folder reader: one subfolder per class, as
// torchvision's ImageFolder expects (root/dog/xxx.png, root/cat/yyy.jpg).
// Class folders sorted by name give the class indices 0..K−1; each class
// folder is walked recursively in lexical order, skipping hidden files and
// folders (names starting with '.') and files that are not .png, .jpg or
// .jpeg (any case). Every image is decoded with the standard library
// (image/png, image/jpeg), converted to RGB, resized so its shortest side is
// S and centre-cropped to S×S (area filter when shrinking, bilinear when
// enlarging; see resizer in data.go) and stored as uint8.
//
// Colour conversion: grayscale images are replicated to the three channels;
// non-premultiplied alpha (PNG RGBA) is dropped, as PIL's convert("RGB");
// other colour models go through color.RGBAModel (premultiplied, so
// transparent pixels of paletted images become black).

package loope

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// folderMaxPixels bounds the size of one image (width·height) accepted
// before decoding, so a tiny file declaring a huge image fails fast.
const folderMaxPixels = 1 << 26

// isImageName reports whether name has a .png, .jpg or .jpeg extension.
func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// LoadFolder reads an image-folder dataset from root: every non-hidden
// subfolder is a class, in sorted order, and every PNG or JPEG below it an
// example of that class. Each image becomes 3×size×size uint8 (see the file
// comment). The set has no normalisation (p/255); call SetNorm. Unreadable,
// corrupt or truncated images, an empty class folder, or no class at all
// are errors naming the file or folder. Skipped entries are not reported; LoadFolderLog lists them.
func LoadFolder(root string, size int) (*ImageSet, error) {
	return LoadFolderLog(root, size, nil)
}

// LoadFolderLog is LoadFolder that reports on log (if not nil) every entry
// it skipped: hidden files and folders, files outside the class folders,
// and files that are not .png, .jpg or .jpeg.
func LoadFolderLog(root string, size int, log io.Writer) (*ImageSet, error) {
	if size < 1 {
		return nil, fmt.Errorf("loope: LoadFolder: size %d < 1", size)
	}
	f, err := listImageFolder(root)
	if err != nil {
		return nil, err
	}
	if len(f.skipped) > 0 && log != nil {
		const show = 10
		more := ""
		if len(f.skipped) > show {
			more = fmt.Sprintf(" and %d more", len(f.skipped)-show)
		}
		fmt.Fprintf(log, "image folder %s: skipped %d entries: %s%s\n", root, len(f.skipped), strings.Join(f.skipped[:min(show, len(f.skipped))], ", "), more)
	}
	s := newImageSet(len(f.paths), 3, size, size, len(f.classes))
	copy(s.Labels, f.labels)
	s.Names = f.classes
	errs := make([]error, len(f.paths))
	parallelFor(len(f.paths), 8, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			errs[i] = loadImage(s.Image(i), f.paths[i], size)
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// imageFolder is the listing of an image-folder dataset.
type imageFolder struct {
	classes []string // the class folders, sorted
	paths   []string // every image file, class by class
	labels  []int32  // the class index of each path
	skipped []string // entries that are not images of a class, each with why
}

// listImageFolder lists the classes and image files below root, as
// LoadFolder reads them.
func listImageFolder(root string) (imageFolder, error) {
	var f imageFolder
	entries, err := os.ReadDir(root)
	if err != nil {
		return f, fmt.Errorf("loope: image folder: %w", err)
	}
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Name(), "."):
			f.skipped = append(f.skipped, e.Name()+" (hidden)")
		case e.IsDir():
			f.classes = append(f.classes, e.Name())
		default:
			f.skipped = append(f.skipped, e.Name()+" (not in a class folder)")
		}
	}
	slices.Sort(f.classes)
	if len(f.classes) == 0 {
		return f, fmt.Errorf("loope: image folder %s: no class subfolders", root)
	}
	for k, class := range f.classes {
		dir := filepath.Join(root, class)
		before := len(f.paths)
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				f.skipped = append(f.skipped, rel+" (hidden)")
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			switch {
			case d.IsDir():
			case isImageName(d.Name()):
				f.paths = append(f.paths, p)
				f.labels = append(f.labels, int32(k))
			default:
				f.skipped = append(f.skipped, rel+" (not .png/.jpg/.jpeg)")
			}
			return nil
		})
		if err != nil {
			return f, fmt.Errorf("loope: image folder: %w", err)
		}
		if len(f.paths) == before {
			return f, fmt.Errorf("loope: image folder %s: class folder %q has no .png/.jpg/.jpeg file", root, class)
		}
	}
	return f, nil
}

// loadImage decodes the image file p and writes it resized and cropped to
// dst (3, size, size).
func loadImage(dst []uint8, p string, size int) error {
	raw, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("loope: image folder: %w", err)
	}
	return decodeImage(dst, p, raw, size)
}

// decodeImage decodes raw, the bytes of the PNG or JPEG file name, into dst
// (3, size, size).
func decodeImage(dst []uint8, name string, raw []byte, size int) error {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("loope: image file %s: %w", name, err)
	}
	if format != "png" && format != "jpeg" {
		return fmt.Errorf("loope: image file %s: format %s, want png or jpeg", name, format)
	}
	if cfg.Width < 1 || cfg.Height < 1 || int64(cfg.Width)*int64(cfg.Height) > folderMaxPixels {
		return fmt.Errorf("loope: image file %s: %d×%d pixels (accepted: 1 to %d)", name, cfg.Width, cfg.Height, folderMaxPixels)
	}
	var img image.Image
	if format == "png" {
		img, err = png.Decode(bytes.NewReader(raw))
	} else {
		img, err = jpeg.Decode(bytes.NewReader(raw))
	}
	if err != nil {
		return fmt.Errorf("loope: image file %s: %w", name, err)
	}
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	planes := make([]uint8, 3*h*w)
	toRGBPlanes(planes, img)
	rz := newResizer(h, w, size)
	tmp := rz.scratch()
	for c := range 3 {
		rz.plane(dst[c*size*size:(c+1)*size*size], planes[c*h*w:(c+1)*h*w], tmp)
	}
	return nil
}

// toRGBPlanes writes img as three planes R, G, B (3, h, w) into dst.
func toRGBPlanes(dst []uint8, img image.Image) {
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	hw := h * w
	r, g, bl := dst[:hw], dst[hw:2*hw], dst[2*hw:3*hw]
	switch m := img.(type) {
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			copy(r[y*w:(y+1)*w], row)
			copy(g[y*w:(y+1)*w], row)
			copy(bl[y*w:(y+1)*w], row)
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				r[y*w+x], g[y*w+x], bl[y*w+x] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.RGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				r[y*w+x], g[y*w+x], bl[y*w+x] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.YCbCr:
		for y := range h {
			for x := range w {
				yi, ci := m.YOffset(b.Min.X+x, b.Min.Y+y), m.COffset(b.Min.X+x, b.Min.Y+y)
				r[y*w+x], g[y*w+x], bl[y*w+x] = color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			}
		}
	default:
		for y := range h {
			for x := range w {
				c := color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
				r[y*w+x], g[y*w+x], bl[y*w+x] = c.R, c.G, c.B
			}
		}
	}
}
