// This file holds the paper's protocol for the Three-Cell sweep
// (ThreeCellBenchConfig.InitFrom, -init-from): every PE run starts from one
// pretrained backbone with its PE swapped in and a new head.

package loope

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// CheckInitFrom reads InitFrom, checks that its backbone loads into Model
// (channels, width, depth, MLP; the image and patch may differ, as
// LoadTimmViT resamples them) and sets InitFromSHA256. It errs, naming the
// file and the tensor, if the file is missing, not safetensors, not a
// timm ViT or of another shape, if it changed since the digest was taken,
// or if Model is not a ViT. Without InitFrom it does nothing.
func (c *ThreeCellBenchConfig) CheckInitFrom() error {
	if c.InitFrom == "" {
		return nil
	}
	if a := archName(c.Model.Arch); a != "vit" {
		return fmt.Errorf("-init-from %s: loads a timm ViT backbone, and the model is %s (use -arch vit)", c.InitFrom, a)
	}
	f, err := ReadSafeFile(c.InitFrom)
	if err == nil { // a trial load: every tensor name and shape is checked
		mc := c.Model
		mc.PE = PEConfig{Name: "none"}
		_, _, err = LoadTimmViT[float32](f, mc, TimmOptions{})
	}
	if err != nil {
		return fmt.Errorf("-init-from %s: %w", c.InitFrom, err)
	}
	digest, err := fileSHA256(c.InitFrom)
	if err == nil && c.InitFromSHA256 != "" && c.InitFromSHA256 != digest {
		err = fmt.Errorf("the file changed (SHA-256 %s; the sweep's runs were made from %s)", digest, c.InitFromSHA256)
	}
	if err != nil {
		return fmt.Errorf("-init-from %s: %w", c.InitFrom, err)
	}
	c.InitFromSHA256 = digest
	return nil
}

// fileSHA256 returns the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	fd, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fd.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fd); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// newRunModel builds run sr's model: fresh, or with InitFrom's backbone.
func (c ThreeCellBenchConfig) newRunModel(mc Config, sr SweepRun) (Model[float32], error) {
	if c.InitFrom == "" || sr.Ref {
		return NewModel[float32](mc, sr.Seed)
	}
	f, err := ReadSafeFile(c.InitFrom)
	if err != nil {
		return nil, err
	}
	m, _, err := LoadTimmViT[float32](f, mc, TimmOptions{Seed: sr.Seed})
	if err != nil {
		return nil, fmt.Errorf("-init-from %s: %w", c.InitFrom, err)
	}
	return m, nil
}
