// This file holds our reader of the CIFAR-10 and CIFAR-100 "binary version"
// files (https://www.cs.toronto.edu/~kriz/cifar.html, "Binary version").
//
// A CIFAR-10 file is a sequence of 3073-byte records: 1 label byte (0..9),
// then 3072 pixel bytes, the 32×32 red plane, then green, then blue, each
// row-major. CIFAR-100 records are 3074 bytes: a coarse label (0..19), a fine
// label (0..99), then the same 3072 pixels. The training set is
// data_batch_1.bin..data_batch_5.bin (CIFAR-10, 10 000 records each) or
// train.bin (CIFAR-100, 50 000); the test set is test_batch.bin or test.bin
// (10 000). The archives unpack to cifar-10-batches-bin/ and cifar-100-binary/.
//
// Reading checks that each file size is a multiple of the record size and
// every label is in range, and allocates the whole set once from the file
// sizes before reading.

package loope

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// CIFAR normalisation: the per-channel mean and standard deviation over all
// training pixels scaled to [0, 1], the values widely quoted for PyTorch
// CIFAR recipes. NOTE(spec): the other popular CIFAR-10 std
// (0.2023, 0.1994, 0.2010) is a mean of per-image stds, not the pixel std.
var (
	CIFAR10Mean  = []float32{0.4914, 0.4822, 0.4465}
	CIFAR10Std   = []float32{0.2470, 0.2435, 0.2616}
	CIFAR100Mean = []float32{0.5071, 0.4865, 0.4409}
	CIFAR100Std  = []float32{0.2673, 0.2564, 0.2762}
)

// cifarPixels is the number of pixel bytes per record: 3 planes of 32×32.
const cifarPixels = 3 * 32 * 32

// cifarFormat describes one record layout.
type cifarFormat struct {
	labelBytes int  // 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
	labelAt    int  // which label byte is used
	classes    int  // 10, 20 (coarse) or 100 (fine)
	hundred    bool // CIFAR-100
}

// newCIFARFormat returns the layout for CIFAR-10 or CIFAR-100 with fine or
// coarse labels (coarse is ignored for CIFAR-10).
func newCIFARFormat(hundred, coarse bool) cifarFormat {
	switch {
	case !hundred:
		return cifarFormat{labelBytes: 1, labelAt: 0, classes: 10}
	case coarse:
		return cifarFormat{labelBytes: 2, labelAt: 0, classes: 20, hundred: true}
	}
	return cifarFormat{labelBytes: 2, labelAt: 1, classes: 100, hundred: true}
}

// record returns the record size in bytes.
func (f cifarFormat) record() int { return f.labelBytes + cifarPixels }

// cifarRecords checks size, the byte count of the file name, against the
// record size and returns the number of records it holds.
func cifarRecords(name string, size int64, f cifarFormat) (int, error) {
	rec := int64(f.record())
	if size%rec != 0 {
		return 0, fmt.Errorf("loope: CIFAR file %s: size %d is not a multiple of the %d-byte record (truncated?)", name, size, rec)
	}
	if size == 0 {
		return 0, fmt.Errorf("loope: CIFAR file %s: empty", name)
	}
	return int(size / rec), nil
}

// readCIFAR reads n records of file name from r into pix (n, 3, 32, 32) and
// labels (n), checking every label against the class count.
func readCIFAR(name string, r io.Reader, f cifarFormat, pix []uint8, labels []int32) error {
	var lab [2]byte
	for i := range labels {
		if _, err := io.ReadFull(r, lab[:f.labelBytes]); err != nil {
			return fmt.Errorf("loope: CIFAR file %s: record %d: %w", name, i, err)
		}
		if f.hundred {
			if lab[0] >= 20 {
				return fmt.Errorf("loope: CIFAR file %s: record %d: coarse label %d out of range [0, 20)", name, i, lab[0])
			}
			if lab[1] >= 100 {
				return fmt.Errorf("loope: CIFAR file %s: record %d: fine label %d out of range [0, 100)", name, i, lab[1])
			}
		} else if lab[0] >= 10 {
			return fmt.Errorf("loope: CIFAR file %s: record %d: label %d out of range [0, 10)", name, i, lab[0])
		}
		labels[i] = int32(lab[f.labelAt])
		if _, err := io.ReadFull(r, pix[i*cifarPixels:(i+1)*cifarPixels]); err != nil {
			return fmt.Errorf("loope: CIFAR file %s: record %d: %w", name, i, err)
		}
	}
	return nil
}

// parseCIFAR parses the bytes of one CIFAR file into an ImageSet.
func parseCIFAR(name string, raw []byte, hundred, coarse bool) (*ImageSet, error) {
	f := newCIFARFormat(hundred, coarse)
	n, err := cifarRecords(name, int64(len(raw)), f)
	if err != nil {
		return nil, err
	}
	s := newImageSet(n, 3, 32, 32, f.classes)
	if err := readCIFAR(name, bytes.NewReader(raw), f, s.Pix, s.Labels); err != nil {
		return nil, err
	}
	return s, nil
}

// cifarFiles returns the file names of the requested split.
func cifarFiles(hundred, train bool) []string {
	switch {
	case hundred && train:
		return []string{"train.bin"}
	case hundred:
		return []string{"test.bin"}
	case train:
		return []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
	}
	return []string{"test_batch.bin"}
}

// LoadCIFAR reads the CIFAR-10 (hundred false) or CIFAR-100 training or test
// set from dir, the unpacked binary archive (cifar-10-batches-bin or
// cifar-100-binary) or a folder containing it. CIFAR-100 uses the 100 fine
// labels, or the 20 coarse ones if coarse is set. The set has 3 channels of
// 32×32 pixels, class names from batches.meta.txt or
// {fine,coarse}_label_names.txt if present, and the usual normalisation
// (CIFAR10Mean/Std, CIFAR100Mean/Std).
func LoadCIFAR(dir string, hundred, train, coarse bool) (*ImageSet, error) {
	files := cifarFiles(hundred, train)
	sub := "cifar-10-batches-bin"
	if hundred {
		sub = "cifar-100-binary"
	}
	if _, err := os.Stat(filepath.Join(dir, files[0])); err != nil {
		if _, err2 := os.Stat(filepath.Join(dir, sub, files[0])); err2 == nil {
			dir = filepath.Join(dir, sub)
		}
	}
	f := newCIFARFormat(hundred, coarse)
	counts := make([]int, len(files))
	total := 0
	for k, name := range files {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("loope: CIFAR: %w", err)
		}
		if counts[k], err = cifarRecords(p, st.Size(), f); err != nil {
			return nil, err
		}
		total += counts[k]
	}
	s := newImageSet(total, 3, 32, 32, f.classes)
	at := 0
	for k, name := range files {
		p := filepath.Join(dir, name)
		if err := readCIFARFile(p, f, s.Pix[at*cifarPixels:(at+counts[k])*cifarPixels], s.Labels[at:at+counts[k]]); err != nil {
			return nil, err
		}
		at += counts[k]
	}
	s.Names = cifarNames(dir, hundred, coarse, f.classes)
	mean, std := CIFAR10Mean, CIFAR10Std
	if hundred {
		mean, std = CIFAR100Mean, CIFAR100Std
	}
	if err := s.SetNorm(mean, std); err != nil {
		return nil, err
	}
	return s, nil
}

// readCIFARFile reads the records of file p into pix and labels.
func readCIFARFile(p string, f cifarFormat, pix []uint8, labels []int32) error {
	fh, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("loope: CIFAR: %w", err)
	}
	defer fh.Close()
	return readCIFAR(p, bufio.NewReaderSize(fh, 1<<16), f, pix, labels)
}

// cifarNames reads the class names shipped with the archive, or returns nil
// if the file is absent or does not list exactly the expected count.
func cifarNames(dir string, hundred, coarse bool, classes int) []string {
	name := "batches.meta.txt"
	if hundred {
		name = "fine_label_names.txt"
		if coarse {
			name = "coarse_label_names.txt"
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil
	}
	names := strings.Fields(string(b))
	if len(names) != classes {
		return nil
	}
	return names
}
