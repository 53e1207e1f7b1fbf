// This file holds ResNet-50, the architecture "resnet50": torchvision's
// resnet50 (torchvision/models/resnet.py, ResNet(Bottleneck, [3, 4, 6, 3]))
// layer for layer, with torchvision's initialisation and state-dict names,
// and the small stem for small images (docs/cnn.md). It is a reference row
// of the Three-Cell table (-ref resnet50).

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// resnetBNEps is torchvision ResNet's BatchNorm epsilon.
const resnetBNEps = 1e-5

// resnet50Layers are the Bottleneck blocks per stage and resnet50Planes
// the stages' widths (a block outputs 4× its width, Bottleneck.expansion).
var (
	resnet50Layers = [4]int{3, 4, 6, 3}
	resnet50Planes = [4]int{64, 128, 256, 512}
)

// bottleneck is torchvision's Bottleneck (ResNet V1.5: the stride sits on
// the 3×3 convolution): 1×1 → 3×3 (stride) → 1×1 (4× width), each with
// BatchNorm, plus the shortcut, a 1×1 convolution and BatchNorm
// (downsample) where the shape changes.
type bottleneck[T Float] struct {
	c1, c2, c3 convBN[T]
	down       *convBN[T] // nil: identity shortcut
}

// ResNet is torchvision's ResNet-50 with num_classes = Config.Classes,
// Config.Channels input channels and the stem of Config.Stem.
type ResNet[T Float] struct {
	Cfg    Config
	stem   string
	conv1  convBN[T]          // conv1, bn1
	layers [4][]bottleneck[T] // layer1 … layer4
	FCW    *Tensor[T]         // (K, 2048)
	FCB    *Tensor[T]         // (K)
}

func init() {
	registerArch("resnet50", archSpec{
		summary:   "torchvision resnet50: Bottleneck blocks [3, 4, 6, 3], BatchNorm, global average pool, fc (small stem under 64 px)",
		validate:  validateCNN(resnet50Size),
		minParams: resnet50Size,
		reference: cnnReference("resnet50"),
		f32:       func(c Config, seed uint64) (Model[float32], error) { return asModel(NewResNet50[float32](c, seed)) },
		f64:       func(c Config, seed uint64) (Model[float64], error) { return asModel(NewResNet50[float64](c, seed)) },
	})
}

// resnet50Size returns the number of scalars of a ResNet-50 of cfg,
// BatchNorm buffers included (what every checkpoint holds).
func resnet50Size(cfg Config) int64 {
	bn := func(c int64) int64 { return 4 * c }
	k0 := int64(7 * 7)
	if cnnStem(cfg) == StemSmall {
		k0 = 3 * 3
	}
	n := 64*int64(cfg.Channels)*k0 + bn(64)
	in := int64(64)
	for s, blocks := range resnet50Layers {
		p := int64(resnet50Planes[s])
		for b := range blocks {
			n += in*p + bn(p) + p*p*9 + bn(p) + p*4*p + bn(4*p)
			if b == 0 {
				n += in*4*p + bn(4*p)
			}
			in = 4 * p
		}
	}
	return n + int64(cfg.Classes)*2048 + int64(cfg.Classes)
}

// NewResNet50 builds torchvision's resnet50(num_classes=cfg.Classes) with
// cfg.Channels input channels and cfg's stem, initialised as torchvision
// does, every random value drawn from a PCG stream seeded with seed:
// convolutions kaiming_normal_(mode='fan_out', nonlinearity='relu'),
// BatchNorm weight 1 and bias 0 (zero_init_residual=False), fc as
// nn.Linear's default, U(±1/√2048) for weight and bias.
func NewResNet50[T Float](cfg Config, seed uint64) (*ResNet[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if a := archName(cfg.Arch); a != "resnet50" {
		return nil, fmt.Errorf("loope: NewResNet50: config is of architecture %q; use NewModel", a)
	}
	rng := rand.New(rand.NewPCG(seed, 0x7e5e7))
	m := &ResNet[T]{Cfg: cfg, stem: cnnStem(cfg)}
	conv := func(convName, bnPrefix string, c, o, k, stride, pad int) convBN[T] {
		return newConvBN(convName, bnPrefix, c, o, k, k, stride, pad, pad, resnetBNEps, kaimingNormalFanOut[T](rng, o*k*k))
	}
	if m.stem == StemSmall {
		// NOTE(spec): conv1 = 3×3 stride 1 padding 1 and no max-pool below
		// 64 px (docs/cnn.md); torchvision's is the ImageNet stem below.
		m.conv1 = conv("conv1", "bn1", cfg.Channels, 64, 3, 1, 1)
	} else {
		m.conv1 = conv("conv1", "bn1", cfg.Channels, 64, 7, 2, 3)
	}
	in := 64
	for s, blocks := range resnet50Layers {
		p, stride := resnet50Planes[s], 2
		if s == 0 {
			stride = 1
		}
		m.layers[s] = make([]bottleneck[T], blocks)
		for b := range blocks {
			pre := fmt.Sprintf("layer%d.%d.", s+1, b)
			bs := 1
			if b == 0 {
				bs = stride
			}
			blk := &m.layers[s][b]
			blk.c1 = conv(pre+"conv1", pre+"bn1", in, p, 1, 1, 0)
			blk.c2 = conv(pre+"conv2", pre+"bn2", p, p, 3, bs, 1)
			blk.c3 = conv(pre+"conv3", pre+"bn3", p, 4*p, 1, 1, 0)
			if b == 0 { // stride ≠ 1 or in ≠ 4p: true for every first block
				d := conv(pre+"downsample.0", pre+"downsample.1", in, 4*p, 1, bs, 0)
				blk.down = &d
			}
			in = 4 * p
		}
	}
	bound := 1 / math.Sqrt(float64(in))
	m.FCW = NewParam[T](cfg.Classes, in).FillUniform(rng, -bound, bound)
	m.FCB = NewParam[T](cfg.Classes).FillUniform(rng, -bound, bound)
	return m, nil
}

// Config returns the model's shape.
func (m *ResNet[T]) Config() Config { return m.Cfg }

// PosEmbs returns nil: a CNN has no positional embedding.
func (m *ResNet[T]) PosEmbs() []PosEmb[T] { return nil }

// Params returns every tensor with its torchvision state-dict name, in
// state-dict order (num_batches_tracked is not kept, see convBN.params).
func (m *ResNet[T]) Params() []NamedParam[T] {
	ps := m.conv1.params()
	for s := range m.layers {
		for b := range m.layers[s] {
			blk := &m.layers[s][b]
			ps = append(ps, blk.c1.params()...)
			ps = append(ps, blk.c2.params()...)
			ps = append(ps, blk.c3.params()...)
			if blk.down != nil {
				ps = append(ps, blk.down.params()...)
			}
		}
	}
	return append(ps,
		NamedParam[T]{Name: "fc.weight", T: m.FCW},
		NamedParam[T]{Name: "fc.bias", T: m.FCB, NoDecay: true})
}

// Forward maps images img (B, C, S, S) to logits (B, K): torchvision's
// ResNet._forward_impl. BatchNorm uses batch statistics unless tp is
// no-grad (inference).
func (m *ResNet[T]) Forward(tp *Tape[T], img *Tensor[T]) *Tensor[T] {
	checkImage("ResNet.Forward", m.Cfg, img)
	x := m.conv1.forward(tp, img, true) // conv1, bn1, relu
	if m.stem == StemImageNet {
		x = tp.MaxPool2d(x, 3, 2, 1)
	}
	for s := range m.layers {
		for b := range m.layers[s] {
			blk := &m.layers[s][b]
			y := blk.c1.forward(tp, x, true)
			y = blk.c2.forward(tp, y, true)
			y = blk.c3.forward(tp, y, false)
			id := x
			if blk.down != nil {
				id = blk.down.forward(tp, x, false)
			}
			x = tp.ReLU(tp.Add(y, id)) // out += identity; relu
		}
	}
	x = tp.GlobalAvgPool2d(x)         // avgpool, flatten: (B, 2048)
	return tp.Linear(x, m.FCW, m.FCB) // (B, K)
}
