// This file holds what the CNN reference models of the Three-Cell table
// share (docs/cnn.md): the convolution + BatchNorm unit, the stem option,
// their parameter lists, and the checks of a CNN config. resnet.go builds
// torchvision's resnet50 and inception.go its Inception3 from them.

package loope

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Stems of a CNN reference model (Config.Stem).
const (
	StemSmall    = "small"    // a 3×3 stride-1 convolution, no max-pool
	StemImageNet = "imagenet" // torchvision's 7×7 stride-2 convolution and 3×3 stride-2 max-pool
)

// smallStemBelow is the image side under which the default stem ("") is
// the small one.
const smallStemBelow = 64

// cnnStem returns the stem cfg asks for: Stem, or for "" the small stem
// under smallStemBelow pixels and the ImageNet stem from there.
//
// NOTE(spec): the small default is our adaptation, not torchvision's: on
// the 14- and 28-pixel Three-Cell images torchvision's stem (÷4) would
// leave layer4 a single pixel, far from the ImageNet regime the network
// was designed for (CIFAR ResNets make the same change).
func cnnStem(cfg Config) string {
	if cfg.Stem == "" {
		if cfg.Image < smallStemBelow {
			return StemSmall
		}
		return StemImageNet
	}
	return cfg.Stem
}

// MaxCNNImage bounds the image side of a CNN reference model: with
// full-resolution activations in every stage, one 512-pixel image of
// ResNet-50 with the ImageNet stem already keeps about 1 GB of float32
// activations for the backward pass.
const MaxCNNImage = 512

// validateCNN returns the check of a CNN config whose scalars (buffers
// included) size counts: beyond image, channels and classes, the stem,
// the image bound MaxCNNImage, the parameter bound MaxParams, and that the
// ViT-only fields are unset.
func validateCNN(size func(Config) int64) func(Config) error {
	return func(c Config) error {
		err := checkCNNFields(c)
		if c.Image > MaxCNNImage {
			err = errors.Join(err, fmt.Errorf("image %d exceeds the CNN limit %d", c.Image, MaxCNNImage))
		}
		if n := size(c); n > MaxParams {
			err = errors.Join(err, fmt.Errorf("about %d parameters exceed the limit %d", n, MaxParams))
		}
		return err
	}
}

// checkCNNFields checks the stem and that the ViT-only fields are unset.
func checkCNNFields(c Config) error {
	var errs []error
	if c.Stem != "" && c.Stem != StemSmall && c.Stem != StemImageNet {
		errs = append(errs, fmt.Errorf("unknown CNN stem %q (valid: %s, %s, or empty for %s under %d px)",
			c.Stem, StemSmall, StemImageNet, StemSmall, smallStemBelow))
	}
	if c.Patch != 0 || c.Dim != 0 || c.Depth != 0 || c.Heads != 0 || c.MLP != 0 || c.PE.Name != "" {
		errs = append(errs, fmt.Errorf("a %s config has no patch, dim, depth, heads, mlp or PE (got %d, %d, %d, %d, %d, %q)",
			archName(c.Arch), c.Patch, c.Dim, c.Depth, c.Heads, c.MLP, c.PE.Name))
	}
	return errors.Join(errs...)
}

// cnnReference returns the reference-model config of architecture arch for
// a benchmark model config: the same image, channels and classes, the
// default stem.
func cnnReference(arch string) func(Config) (Config, error) {
	return func(m Config) (Config, error) {
		c := Config{Arch: arch, Image: m.Image, Channels: m.Channels, Classes: m.Classes}
		return c, c.Validate()
	}
}

// convBN is a bias-free convolution followed by BatchNorm2d, torchvision's
// conv + bn pairs (ResNet) and BasicConv2d (Inception, with its ReLU).
type convBN[T Float] struct {
	W                  *Tensor[T] // (O, C, KH, KW)
	G, B               *Tensor[T] // BatchNorm weight and bias (O)
	Mean, Var          *Tensor[T] // running statistics (O), buffers
	stride, padH, padW int        //
	eps                float64    // BatchNorm epsilon
	convName, bnPrefix string     // checkpoint names: "<conv>.weight", "<bn>.weight", ...
}

// newConvBN returns a convBN of o output and c input channels and a kh × kw
// kernel with its weight drawn by initW, BatchNorm weight 1, bias 0,
// running mean 0 and variance 1 (torchvision's init).
func newConvBN[T Float](convName, bnPrefix string, c, o, kh, kw, stride, padH, padW int, eps float64, initW func([]T)) convBN[T] {
	u := convBN[T]{W: NewParam[T](o, c, kh, kw), G: NewParam[T](o), B: NewParam[T](o), Mean: New[T](o), Var: New[T](o),
		stride: stride, padH: padH, padW: padW, eps: eps, convName: convName, bnPrefix: bnPrefix}
	initW(u.W.Data)
	for i := range o {
		u.G.Data[i], u.Var.Data[i] = 1, 1
	}
	return u
}

// cnnBNMomentum is the BatchNorm momentum of both CNNs (PyTorch's default).
const cnnBNMomentum = 0.1

// forward returns bn(conv(x)), with relu followed by ReLU; BatchNorm uses
// batch statistics (and updates the running ones) unless tp is no-grad.
func (u *convBN[T]) forward(tp *Tape[T], x *Tensor[T], relu bool) *Tensor[T] {
	y := tp.Conv2dHW(x, u.W, nil, u.stride, u.padH, u.padW, 1)
	y = tp.BatchNorm2d(y, u.G, u.B, u.Mean, u.Var, cnnBNMomentum, u.eps, !tp.NoGrad)
	if relu {
		y = tp.ReLU(y)
	}
	return y
}

// params returns the unit's tensors in torchvision's state-dict order.
// torchvision's num_batches_tracked is not kept: with momentum 0.1 it
// does not enter any result (as for LOOPE's BatchNorm).
func (u *convBN[T]) params() []NamedParam[T] {
	return []NamedParam[T]{
		{Name: u.convName + ".weight", T: u.W},
		{Name: u.bnPrefix + ".weight", T: u.G, NoDecay: true},
		{Name: u.bnPrefix + ".bias", T: u.B, NoDecay: true},
		{Name: u.bnPrefix + ".running_mean", T: u.Mean, Buffer: true, NoDecay: true},
		{Name: u.bnPrefix + ".running_var", T: u.Var, Buffer: true, NoDecay: true},
	}
}

// size returns the number of scalars of the unit, buffers included.
func (u *convBN[T]) size() int64 { return int64(u.W.Size() + 4*u.G.Size()) }

// kaimingNormalFanOut returns an init drawing N(0, 2/fan_out) with
// fan_out = O·KH·KW from rng: kaiming_normal_(mode='fan_out',
// nonlinearity='relu').
func kaimingNormalFanOut[T Float](rng *rand.Rand, fanOut int) func([]T) {
	std := math.Sqrt(2 / float64(fanOut))
	return func(w []T) {
		for i := range w {
			w[i] = T(std * rng.NormFloat64())
		}
	}
}

// checkImage panics with a clear message unless img is (B, C, S, S) for
// cfg's channels C and image side S.
func checkImage[T Float](op string, cfg Config, img *Tensor[T]) {
	if img == nil || len(img.Shape) != 4 || img.Shape[1] != cfg.Channels || img.Shape[2] != cfg.Image || img.Shape[3] != cfg.Image {
		panic(fmt.Sprintf("loope: %s: image shape %v, want (B, %d, %d, %d)", op, shapeOrNil(img), cfg.Channels, cfg.Image, cfg.Image))
	}
}
