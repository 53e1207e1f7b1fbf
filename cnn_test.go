package loope

import (
	"strings"
	"testing"
)

// TestThreeCellRefStem: a sweep's CNNStem reaches its reference configs,
// and a bad one is an error naming the stem.
func TestThreeCellRefStem(t *testing.T) {
	vit, err := Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	c := ThreeCellBenchConfig{Model: vit, Refs: []string{"resnet50"}, CNNStem: StemImageNet}
	rc, err := c.refConfig("resnet50")
	if err != nil || rc.Stem != StemImageNet || cnnStem(rc) != StemImageNet {
		t.Errorf("refConfig: %+v, %v", rc, err)
	}
	c.CNNStem = "huge"
	if _, err := c.refConfig("resnet50"); err == nil || !strings.Contains(err.Error(), `unknown CNN stem "huge"`) {
		t.Errorf("bad stem: %v", err)
	}
}
