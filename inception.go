// This file holds Inception-V3, the architecture "inception3":
// torchvision's Inception3 (torchvision/models/inception.py) with
// aux_logits=False, transform_input=False and dropout 0, layer for layer,
// with torchvision's initialisation (init_weights=True) and state-dict
// names; images under 75 px are first resized bilinearly to 75 px
// (docs/cnn.md). It is a reference row of the Three-Cell table
// (-ref inception3).

package loope

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Inception-V3 constants: BasicConv2d's BatchNorm epsilon, torchvision's
// minimum input side (Inception_V3_Weights min_size), and the weight
// standard deviation of init_weights (no module of the aux-free network
// sets its own stddev).
const (
	inceptionBNEps    = 1e-3
	inceptionMinImage = 75
	inceptionInitStd  = 0.1
)

// inceptionKind is the type of a Mixed block: torchvision's InceptionA … E.
type inceptionKind byte

const (
	inceptionA inceptionKind = 'A'
	inceptionB inceptionKind = 'B'
	inceptionC inceptionKind = 'C'
	inceptionD inceptionKind = 'D'
	inceptionE inceptionKind = 'E'
)

// inceptionBlock is one Mixed block: its kind and its BasicConv2d units
// by branch name (e.g. "branch7x7_2").
type inceptionBlock[T Float] struct {
	kind inceptionKind
	u    map[string]*convBN[T]
}

// Inception is torchvision's Inception3 without the auxiliary head, with
// num_classes = Config.Classes and Config.Channels input channels.
type Inception[T Float] struct {
	Cfg    Config
	stem   [5]*convBN[T] // Conv2d_1a_3x3, 2a, 2b, 3b_1x1, 4a_3x3
	blocks []inceptionBlock[T]
	order  []*convBN[T] // every unit in state-dict order
	FCW    *Tensor[T]   // (K, 2048)
	FCB    *Tensor[T]   // (K)
}

func init() {
	registerArch("inception3", archSpec{
		summary:   "torchvision Inception3 (no aux head, dropout 0): BasicConv2d stem, Mixed_5b … Mixed_7c, global average pool, fc; inputs under 75 px resized to 75",
		validate:  validateCNN(inception3Size),
		minParams: inception3Size,
		reference: cnnReference("inception3"),
		f32:       func(c Config, seed uint64) (Model[float32], error) { return asModel(NewInception3[float32](c, seed)) },
		f64:       func(c Config, seed uint64) (Model[float64], error) { return asModel(NewInception3[float64](c, seed)) },
	})
}

// inceptionBuilder makes BasicConv2d units in torchvision's order; with a
// nil rng it only counts their scalars (inception3Size).
type inceptionBuilder[T Float] struct {
	rng   *rand.Rand
	n     int64
	order []*convBN[T]
}

// conv returns the unit name (name.conv, name.bn) of o output and c input
// channels, a kh × kw kernel, stride and padding (ph, pw); nil when
// counting.
func (b *inceptionBuilder[T]) conv(name string, c, o, kh, kw, stride, ph, pw int) *convBN[T] {
	b.n += int64(o*c*kh*kw + 4*o)
	if b.rng == nil {
		return nil
	}
	u := newConvBN(name+".conv", name+".bn", c, o, kh, kw, stride, ph, pw, inceptionBNEps, func(w []T) {
		truncNormal(w, b.rng, inceptionInitStd) // trunc_normal_(std=0.1, a=−2, b=2)
	})
	b.order = append(b.order, &u)
	return &u
}

// sq is conv with a square kernel and padding.
func (b *inceptionBuilder[T]) sq(name string, c, o, k, stride, pad int) *convBN[T] {
	return b.conv(name, c, o, k, k, stride, pad, pad)
}

// inceptionMixed lists the Mixed blocks: name, kind, input channels and
// the block's parameter (pool_features for A, channels_7x7 for C).
var inceptionMixed = []struct {
	name  string
	kind  inceptionKind
	in, p int
}{
	{"Mixed_5b", inceptionA, 192, 32}, {"Mixed_5c", inceptionA, 256, 64}, {"Mixed_5d", inceptionA, 288, 64},
	{"Mixed_6a", inceptionB, 288, 0},
	{"Mixed_6b", inceptionC, 768, 128}, {"Mixed_6c", inceptionC, 768, 160}, {"Mixed_6d", inceptionC, 768, 160}, {"Mixed_6e", inceptionC, 768, 192},
	{"Mixed_7a", inceptionD, 768, 0}, {"Mixed_7b", inceptionE, 1280, 0}, {"Mixed_7c", inceptionE, 2048, 0},
}

// build creates the stem and every Mixed block, torchvision's
// Inception3.__init__ and InceptionA … E.__init__ in order.
func (b *inceptionBuilder[T]) build(channels int) (stem [5]*convBN[T], blocks []inceptionBlock[T]) {
	stem = [5]*convBN[T]{
		b.sq("Conv2d_1a_3x3", channels, 32, 3, 2, 0),
		b.sq("Conv2d_2a_3x3", 32, 32, 3, 1, 0),
		b.sq("Conv2d_2b_3x3", 32, 64, 3, 1, 1),
		b.sq("Conv2d_3b_1x1", 64, 80, 1, 1, 0),
		b.sq("Conv2d_4a_3x3", 80, 192, 3, 1, 0),
	}
	for _, mb := range inceptionMixed {
		u := map[string]*convBN[T]{}
		add := func(branch string, c, o, kh, kw, stride, ph, pw int) {
			u[branch] = b.conv(mb.name+"."+branch, c, o, kh, kw, stride, ph, pw)
		}
		in := mb.in
		switch mb.kind {
		case inceptionA:
			add("branch1x1", in, 64, 1, 1, 1, 0, 0)
			add("branch5x5_1", in, 48, 1, 1, 1, 0, 0)
			add("branch5x5_2", 48, 64, 5, 5, 1, 2, 2)
			add("branch3x3dbl_1", in, 64, 1, 1, 1, 0, 0)
			add("branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1)
			add("branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1)
			add("branch_pool", in, mb.p, 1, 1, 1, 0, 0)
		case inceptionB:
			add("branch3x3", in, 384, 3, 3, 2, 0, 0)
			add("branch3x3dbl_1", in, 64, 1, 1, 1, 0, 0)
			add("branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1)
			add("branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0)
		case inceptionC:
			c7 := mb.p
			add("branch1x1", in, 192, 1, 1, 1, 0, 0)
			add("branch7x7_1", in, c7, 1, 1, 1, 0, 0)
			add("branch7x7_2", c7, c7, 1, 7, 1, 0, 3)
			add("branch7x7_3", c7, 192, 7, 1, 1, 3, 0)
			add("branch7x7dbl_1", in, c7, 1, 1, 1, 0, 0)
			add("branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0)
			add("branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3)
			add("branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0)
			add("branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3)
			add("branch_pool", in, 192, 1, 1, 1, 0, 0)
		case inceptionD:
			add("branch3x3_1", in, 192, 1, 1, 1, 0, 0)
			add("branch3x3_2", 192, 320, 3, 3, 2, 0, 0)
			add("branch7x7x3_1", in, 192, 1, 1, 1, 0, 0)
			add("branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3)
			add("branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0)
			add("branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0)
		case inceptionE:
			add("branch1x1", in, 320, 1, 1, 1, 0, 0)
			add("branch3x3_1", in, 384, 1, 1, 1, 0, 0)
			add("branch3x3_2a", 384, 384, 1, 3, 1, 0, 1)
			add("branch3x3_2b", 384, 384, 3, 1, 1, 1, 0)
			add("branch3x3dbl_1", in, 448, 1, 1, 1, 0, 0)
			add("branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1)
			add("branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1)
			add("branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0)
			add("branch_pool", in, 192, 1, 1, 1, 0, 0)
		}
		blocks = append(blocks, inceptionBlock[T]{kind: mb.kind, u: u})
	}
	return stem, blocks
}

// inception3Size returns the number of scalars of an Inception3 of cfg,
// BatchNorm buffers included.
func inception3Size(cfg Config) int64 {
	var b inceptionBuilder[float32]
	b.build(cfg.Channels)
	return b.n + int64(cfg.Classes)*2048 + int64(cfg.Classes)
}

// NewInception3 builds torchvision's Inception3(num_classes=cfg.Classes,
// aux_logits=False, transform_input=False, init_weights=True, dropout=0)
// with cfg.Channels input channels, every random value drawn from a PCG
// stream seeded with seed: convolution and fc weights trunc_normal_(std
// 0.1, a = −2, b = 2), BatchNorm weight 1 and bias 0, the fc bias
// nn.Linear's default U(±1/√2048).
func NewInception3[T Float](cfg Config, seed uint64) (*Inception[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if a := archName(cfg.Arch); a != "inception3" {
		return nil, fmt.Errorf("loope: NewInception3: config is of architecture %q; use NewModel", a)
	}
	b := inceptionBuilder[T]{rng: rand.New(rand.NewPCG(seed, 0x1ce3))}
	m := &Inception[T]{Cfg: cfg}
	m.stem, m.blocks = b.build(cfg.Channels)
	m.order = b.order
	m.FCW = NewParam[T](cfg.Classes, 2048)
	truncNormal(m.FCW.Data, b.rng, inceptionInitStd)
	bound := 1 / math.Sqrt(2048)
	m.FCB = NewParam[T](cfg.Classes).FillUniform(b.rng, -bound, bound)
	return m, nil
}

// Config returns the model's shape.
func (m *Inception[T]) Config() Config { return m.Cfg }

// PosEmbs returns nil: a CNN has no positional embedding.
func (m *Inception[T]) PosEmbs() []PosEmb[T] { return nil }

// Params returns every tensor with its torchvision state-dict name, in
// state-dict order (num_batches_tracked is not kept, see convBN.params).
func (m *Inception[T]) Params() []NamedParam[T] {
	var ps []NamedParam[T]
	for _, u := range m.order {
		ps = append(ps, u.params()...)
	}
	return append(ps,
		NamedParam[T]{Name: "fc.weight", T: m.FCW},
		NamedParam[T]{Name: "fc.bias", T: m.FCB, NoDecay: true})
}

// Forward maps images img (B, C, S, S) to logits (B, K): torchvision's
// Inception3._forward without the aux head. BatchNorm uses batch
// statistics unless tp is no-grad (inference).
func (m *Inception[T]) Forward(tp *Tape[T], img *Tensor[T]) *Tensor[T] {
	checkImage("Inception.Forward", m.Cfg, img)
	x := img
	if m.Cfg.Image < inceptionMinImage {
		// NOTE(spec): torchvision needs 75 px at least; smaller images are
		// resized bilinearly (align_corners=False) to 75 px (docs/cnn.md).
		x = tp.ResizeBilinear(x, inceptionMinImage, inceptionMinImage)
	}
	x = m.stem[0].forward(tp, x, true) // Conv2d_1a_3x3
	x = m.stem[1].forward(tp, x, true) // Conv2d_2a_3x3
	x = m.stem[2].forward(tp, x, true) // Conv2d_2b_3x3
	x = tp.MaxPool2d(x, 3, 2, 0)       // maxpool1
	x = m.stem[3].forward(tp, x, true) // Conv2d_3b_1x1
	x = m.stem[4].forward(tp, x, true) // Conv2d_4a_3x3
	x = tp.MaxPool2d(x, 3, 2, 0)       // maxpool2
	for i := range m.blocks {
		x = m.blocks[i].forward(tp, x)
	}
	// avgpool, dropout (p = 0: NOTE(spec), the identity, for deterministic
	// fixtures and runs), flatten, fc.
	x = tp.GlobalAvgPool2d(x)
	return tp.Linear(x, m.FCW, m.FCB)
}

// forward runs one Mixed block on x (B, C, H, W): its branches, then
// torch.cat along the channels.
func (blk *inceptionBlock[T]) forward(tp *Tape[T], x *Tensor[T]) *Tensor[T] {
	u := blk.u
	run := func(in *Tensor[T], names ...string) *Tensor[T] {
		for _, n := range names {
			in = u[n].forward(tp, in, true)
		}
		return in
	}
	switch blk.kind {
	case inceptionA:
		return tp.Concat(1,
			run(x, "branch1x1"),
			run(x, "branch5x5_1", "branch5x5_2"),
			run(x, "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"),
			run(tp.AvgPool2d(x, 3, 1, 1, true), "branch_pool"))
	case inceptionB:
		return tp.Concat(1,
			run(x, "branch3x3"),
			run(x, "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"),
			tp.MaxPool2d(x, 3, 2, 0))
	case inceptionC:
		return tp.Concat(1,
			run(x, "branch1x1"),
			run(x, "branch7x7_1", "branch7x7_2", "branch7x7_3"),
			run(x, "branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5"),
			run(tp.AvgPool2d(x, 3, 1, 1, true), "branch_pool"))
	case inceptionD:
		return tp.Concat(1,
			run(x, "branch3x3_1", "branch3x3_2"),
			run(x, "branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"),
			tp.MaxPool2d(x, 3, 2, 0))
	default: // inceptionE
		b3 := run(x, "branch3x3_1")
		d3 := run(x, "branch3x3dbl_1", "branch3x3dbl_2")
		return tp.Concat(1,
			run(x, "branch1x1"),
			tp.Concat(1, run(b3, "branch3x3_2a"), run(b3, "branch3x3_2b")),
			tp.Concat(1, run(d3, "branch3x3dbl_3a"), run(d3, "branch3x3dbl_3b")),
			run(tp.AvgPool2d(x, 3, 1, 1, true), "branch_pool"))
	}
}
