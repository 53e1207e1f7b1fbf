package loope

// Compares Conv2d, Conv2dHW, BatchNorm2d, LayerNorm, Attention, Rotate,
// MaxPool2d, AvgPool2d, GlobalAvgPool2d and ResizeBilinear (outputs,
// gradients, running statistics) with PyTorch in float64, using the golden
// file written by testdata/gen/ops_torch.py (format in its docstring).

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// torchCase is one "case" block of testdata/ops_torch.golden.
type torchCase struct {
	name    string
	params  map[string]float64
	tensors map[string]*Tensor[float64] // by tag: "in:x", "r", "out", "grad:x", "post:runMean"
	inOrder []string                    // input argument names in file order
}

// readTorchGolden parses testdata/ops_torch.golden.
func readTorchGolden(t *testing.T) []*torchCase {
	t.Helper()
	f, err := os.Open("testdata/ops_torch.golden")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	var cases []*torchCase
	line := 0
	next := func() []string {
		if !sc.Scan() {
			t.Fatalf("ops_torch.golden: unexpected end after line %d", line)
		}
		line++
		return strings.Fields(sc.Text())
	}
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "# ops_torch.golden v1 torch ") {
		t.Fatalf("ops_torch.golden: bad header")
	}
	t.Logf("golden: %s", sc.Text())
	line++
	for sc.Scan() {
		line++
		fs := strings.Fields(sc.Text())
		switch {
		case len(fs) >= 2 && fs[0] == "case":
			c := &torchCase{name: fs[1], params: map[string]float64{}, tensors: map[string]*Tensor[float64]{}}
			for _, kv := range fs[2:] {
				k, v, _ := strings.Cut(kv, "=")
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("ops_torch.golden line %d: %v", line, err)
				}
				c.params[k] = x
			}
			cases = append(cases, c)
		case len(fs) >= 3 && fs[0] == "tensor" && len(cases) > 0:
			c := cases[len(cases)-1]
			nd, _ := strconv.Atoi(fs[2])
			shape := make([]int, nd)
			for i := range shape {
				shape[i], _ = strconv.Atoi(fs[3+i])
			}
			vals := next()
			data := make([]float64, len(vals))
			for i, s := range vals {
				if data[i], err = strconv.ParseFloat(s, 64); err != nil {
					t.Fatalf("ops_torch.golden line %d: %v", line, err)
				}
			}
			c.tensors[fs[1]] = FromData(data, shape...)
			if arg, ok := strings.CutPrefix(fs[1], "in:"); ok {
				c.inOrder = append(c.inOrder, arg)
			}
		default:
			t.Fatalf("ops_torch.golden line %d: unexpected %q", line, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestOpsAgainstTorch(t *testing.T) {
	cases := readTorchGolden(t)
	if len(cases) != 23 {
		t.Fatalf("ops_torch.golden: %d cases, want 23", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := map[string]*Tensor[float64]{}
			for _, arg := range c.inOrder {
				x := c.tensors["in:"+arg].Clone()
				if _, ok := c.tensors["grad:"+arg]; ok {
					x.Grad = make([]float64, x.Size())
				}
				in[arg] = x
			}
			p := c.params
			var tp Tape[float64]
			var out *Tensor[float64]
			switch {
			case strings.HasPrefix(c.name, "conv_"):
				out = tp.Conv2d(in["x"], in["w"], in["bias"], int(p["stride"]), int(p["pad"]), int(p["groups"]))
			case strings.HasPrefix(c.name, "bn_"):
				out = tp.BatchNorm2d(in["x"], in["gamma"], in["beta"], in["runMean"], in["runVar"],
					p["momentum"], p["eps"], p["training"] == 1)
			case c.name == "layernorm":
				out = tp.LayerNorm(in["x"], in["gamma"], in["beta"], p["eps"])
			case strings.HasPrefix(c.name, "attn_"):
				out = tp.Attention(in["q"], in["k"], in["v"], in["bias"], p["scale"])
			case strings.HasPrefix(c.name, "rotate_"):
				out = tp.Rotate(in["x"], in["cos"], in["sin"], int(p["skip"]))
			case strings.HasPrefix(c.name, "convhw_"):
				out = tp.Conv2dHW(in["x"], in["w"], in["bias"], int(p["stride"]), int(p["padh"]), int(p["padw"]), 1)
			case strings.HasPrefix(c.name, "maxpool_"):
				out = tp.MaxPool2d(in["x"], int(p["kernel"]), int(p["stride"]), int(p["pad"]))
			case strings.HasPrefix(c.name, "avgpool_"):
				out = tp.AvgPool2d(in["x"], int(p["kernel"]), int(p["stride"]), int(p["pad"]), p["countpad"] == 1)
			case c.name == "gap":
				out = tp.GlobalAvgPool2d(in["x"])
			case strings.HasPrefix(c.name, "resize_"):
				out = tp.ResizeBilinear(in["x"], int(p["oh"]), int(p["ow"]))
			default:
				t.Fatalf("unknown case %s", c.name)
			}
			tp.backwardFrom(out, c.tensors["r"].Data)
			checked := 0
			maxd := 0.0
			for tag, want := range c.tensors {
				kind, arg, _ := strings.Cut(tag, ":")
				var got []float64
				switch kind {
				case "out":
					mustSameShape("torch golden", out, want)
					got = out.Data
				case "grad":
					got = in[arg].Grad
				case "post":
					got = in[arg].Data
				default:
					continue
				}
				checked++
				for i, w := range want.Data {
					maxd = max(maxd, math.Abs(got[i]-w))
					if d := math.Abs(got[i] - w); !(d <= 1e-9*max(1, math.Abs(w))) {
						t.Errorf("%s[%d]: %.17g, torch %.17g", tag, i, got[i], w)
						break
					}
				}
			}
			t.Logf("max |diff| vs torch over %d tensors: %.3g", checked, maxd)
			if checked < 2 {
				t.Errorf("only %d tensors compared", checked)
			}
		})
	}
}
