package loope

import (
	"strings"
	"testing"
)

// TestResNet50Size: torchvision's resnet50() has 25,557,032 trainable
// parameters (3 channels, 1000 classes, ImageNet stem); resnet50Size
// counts them plus the BatchNorm buffers, as the built model does.
func TestResNet50Size(t *testing.T) {
	cfg := Config{Arch: "resnet50", Image: 224, Channels: 3, Classes: 1000}
	m, err := NewResNet50[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := NumParams[float32](m); n != 25557032 {
		t.Errorf("NumParams %d, torchvision 25557032", n)
	}
	var all int64
	for _, p := range m.Params() {
		all += int64(p.T.Size())
	}
	if s := resnet50Size(cfg); s != all {
		t.Errorf("resnet50Size %d, model holds %d", s, all)
	}
	small := Config{Arch: "resnet50", Image: 16, Channels: 1, Classes: 6}
	ms, err := NewResNet50[float32](small, 1)
	if err != nil {
		t.Fatal(err)
	}
	if w := ms.conv1.W.Shape; w[1] != 1 || w[2] != 3 || ms.stem != StemSmall {
		t.Errorf("small stem: conv1 %v, stem %q", w, ms.stem)
	}
	if !HasBatchStats[float32](ms) || len(ms.PosEmbs()) != 0 {
		t.Error("a ResNet has batch statistics and no PE")
	}
}

// TestResNet50BadConfig: bad configs are errors naming the field.
func TestResNet50BadConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Arch: "resnet50", Image: 16, Channels: 3, Classes: 4, Stem: "huge"}, "unknown CNN stem"},
		{Config{Arch: "resnet50", Image: 16, Channels: 3, Classes: 4, Dim: 64}, "has no patch, dim"},
		{Config{Arch: "resnet50", Image: 1024, Channels: 3, Classes: 4}, "exceeds the CNN limit"},
		{Config{Arch: "resnet50", Image: 16, Channels: 3, Classes: 0}, "classes must be > 0"},
		{Config{Arch: "resnet50", Image: 16, Channels: 3, Classes: MaxClasses}, "parameters exceed"},
	} {
		_, err := NewModel[float32](c.cfg, 1)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
}

// TestResNet50Reference: the Three-Cell reference config keeps the
// benchmark's image, channels and classes.
func TestResNet50Reference(t *testing.T) {
	vit, err := Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := referenceConfig("resnet50", vit)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Arch != "resnet50" || rc.Image != vit.Image || rc.Channels != vit.Channels || rc.Classes != vit.Classes {
		t.Errorf("reference config %+v for %+v", rc, vit)
	}
}
