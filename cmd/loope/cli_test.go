package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/loope-go/loope"
)

// cliFiles are the hostile and broken inputs of TestCLI, written into dir.
type cliFiles struct {
	dir                                   string
	ckptDir, ckpt, wrongShape, corrupt    string
	hostileDim, hostileTB, hostileParams  string
	fixture, fixtureBadInput, fixtureBadY string
	fixtureNaNInput, fixtureNaNWeight     string
	badPNG, hugePNG, folder               string
	resultsCorrupt, resultsHugeDim        string
	hostileResumeDir, wrongShapeResumeDir string
	notADir                               string
}

// writeSafe writes f to path or fails the test.
func writeSafe(t testing.TB, f *loope.SafeFile, path string) string {
	t.Helper()
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeFile writes b to path or fails the test.
func writeFile(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// replaced returns a copy of f with tensor name replaced by a float32 zero
// tensor of the given shape.
func replaced(t testing.TB, f *loope.SafeFile, name string, shape ...int) *loope.SafeFile {
	t.Helper()
	g := loope.NewSafeFile()
	for k, v := range f.Metadata {
		g.Metadata[k] = v
	}
	for _, n := range f.Names {
		var err error
		if n == name {
			size := 1
			for _, s := range shape {
				size *= s
			}
			err = loope.PutFloat(g, n, make([]float32, size), shape...)
		} else {
			err = g.Put(n, f.Tensors[n])
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// hugePNG returns a valid PNG header whose IHDR declares w×h pixels (with a
// correct CRC) followed by a one-pixel image's remaining chunks.
func hugePNG(t testing.TB, w, h uint32) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// 8-byte signature, then IHDR: length (4), "IHDR" (4), data (13), CRC (4).
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func makeCLIFiles(t testing.TB) cliFiles {
	dir := t.TempDir()
	c := cliFiles{dir: dir}
	cfg, _ := loope.Preset("tiny")
	cfg.Dim, cfg.Heads, cfg.MLP, cfg.Depth = 8, 2, 8, 1
	m, err := loope.NewViT[float32](cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	c.ckptDir = filepath.Join(dir, "ck")
	os.Mkdir(c.ckptDir, 0o755)
	c.ckpt = filepath.Join(c.ckptDir, "last.safetensors")
	if err := loope.SaveCheckpoint(c.ckpt, m, nil); err != nil {
		t.Fatal(err)
	}
	ck, err := loope.ReadSafeFile(c.ckpt)
	if err != nil {
		t.Fatal(err)
	}
	c.wrongShape = writeSafe(t, replaced(t, ck, "pos_embed", 1, 5, 8), filepath.Join(dir, "wrongshape.safetensors"))
	c.corrupt = writeFile(t, filepath.Join(dir, "corrupt.safetensors"), []byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":garbage!!}"))

	// A config of width 10⁹, and one inside the bounds (ti16) whose tensors
	// the file does not hold.
	hd := loope.NewSafeFile()
	hd.Metadata["config"] = `{"image":224,"channels":3,"patch":16,"dim":1000000000,"depth":12,"heads":3,"mlp":768,"classes":6,"eps":1e-6,"pe":{"name":"learnable"}}`
	loope.PutFloat(hd, "pos_embed", []float32{1, 2, 3}, 3)
	c.hostileDim = writeSafe(t, hd, filepath.Join(dir, "hostile-dim.safetensors"))
	ti, _ := loope.Preset("ti16")
	hp := loope.NewSafeFile()
	hp.Metadata["config"] = fmt.Sprintf(`{"image":%d,"channels":3,"patch":%d,"dim":%d,"depth":%d,"heads":%d,"mlp":%d,"classes":6,"eps":1e-6,"pe":{"name":"learnable"}}`,
		ti.Image, ti.Patch, ti.Dim, ti.Depth, ti.Heads, ti.MLP)
	loope.PutFloat(hp, "pos_embed", []float32{1}, 1)
	c.hostileParams = writeSafe(t, hp, filepath.Join(dir, "hostile-params.safetensors"))
	// A header declaring a 1 TB tensor, with a config, in a file of a few hundred bytes.
	hdr := `{"__metadata__":{"config":"{}"},"w":{"dtype":"F32","shape":[274877906944],"data_offsets":[0,1099511627776]}}`
	tb := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	c.hostileTB = writeFile(t, filepath.Join(dir, "hostile-tb.safetensors"), append(append(tb, hdr...), 0, 0, 0, 0))
	c.hostileResumeDir = filepath.Join(dir, "resume-hostile")
	writeFile(t, filepath.Join(c.hostileResumeDir, "last.safetensors"), mustRead(t, c.hostileDim))
	c.wrongShapeResumeDir = filepath.Join(dir, "resume-wrongshape")
	writeFile(t, filepath.Join(c.wrongShapeResumeDir, "last.safetensors"), mustRead(t, c.hostileTB))

	fx, err := loope.Fixture[float32](loope.FixtureConfig{Model: cfg, Seed: 1, Batch: 2, Loss: "bce"})
	if err != nil {
		t.Fatal(err)
	}
	c.fixture = writeSafe(t, fx, filepath.Join(dir, "fixture.safetensors"))
	c.fixtureBadInput = writeSafe(t, replaced(t, fx, "input", 2, 3, 5, 5), filepath.Join(dir, "fixture-badinput.safetensors"))
	c.fixtureBadY = writeSafe(t, replaced(t, fx, "targets", 2, 7), filepath.Join(dir, "fixture-badtargets.safetensors"))
	// NaN in the input (bench's loss guard) and in a weight (LoadParams).
	for _, nc := range []struct {
		name string
		dst  *string
	}{{"input", &c.fixtureNaNInput}, {"head.bias", &c.fixtureNaNWeight}} {
		g := replaced(t, fx, "", 0) // a copy
		bad := g.Tensors[nc.name]
		bad.Data = slices.Clone(bad.Data)
		binary.LittleEndian.PutUint32(bad.Data, math.Float32bits(float32(math.NaN())))
		g.Tensors[nc.name] = bad
		*nc.dst = writeSafe(t, g, filepath.Join(dir, "fixture-nan-"+nc.name+".safetensors"))
	}

	c.badPNG = writeFile(t, filepath.Join(dir, "bad.png"), []byte("\x89PNG\r\n\x1a\nnot a png at all"))
	c.hugePNG = writeFile(t, filepath.Join(dir, "huge.png"), hugePNG(t, 100000, 100000))
	c.folder = filepath.Join(dir, "folder")
	var img bytes.Buffer
	png.Encode(&img, image.NewGray(image.Rect(0, 0, 14, 14)))
	for _, split := range []string{"train", "test"} {
		for _, class := range []string{"a", "b"} {
			for i := range 3 {
				writeFile(t, filepath.Join(c.folder, split, class, fmt.Sprintf("%d.png", i)), img.Bytes())
			}
		}
	}
	c.resultsCorrupt = writeFile(t, filepath.Join(dir, "corrupt", "results.json"), []byte(`{"config": [`))
	c.resultsHugeDim = writeFile(t, filepath.Join(dir, "hugedim", "results.json"),
		[]byte(`{"config":{"freqs":"f1","model":{"dim":1000000000000}},"grid":14}`))
	c.notADir = writeFile(t, filepath.Join(dir, "file.txt"), []byte("x"))
	return c
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loopeBinary builds the loope binary once per test process and returns
// its path.
func loopeBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "loope-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "loope")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the binary loopeBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestCLI runs the built binary with bad arguments and broken or hostile
// files: usage errors exit 2 with the usage, other errors exit 1 with a
// message, nothing panics, and hostile files (a 1 TB tensor, a width of
// 10⁹, a config whose tensors the file lacks) fail with a small peak RSS.
func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := loopeBinary(t)
	c := makeCLIFiles(t)
	out := filepath.Join(c.dir, "out.safetensors")
	unwritable := filepath.Join(c.notADir, "out.safetensors") // below a regular file
	type cliCase struct {
		args []string
		code int
		want string // in stderr
	}
	cases := []cliCase{
		{nil, 2, "usage: loope <command>"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"help"}, 0, "usage: loope <command>"},

		{[]string{"data", "-grid", "2", "-out", "x.csv"}, 2, "need 3 ≤ G ≤ 32"},
		{[]string{"data", "-grid", "100", "-out", "x.csv"}, 2, "need 3 ≤ G ≤ 32"},
		{[]string{"data", "-cell", "1000", "-images", "-out", "x.safetensors"}, 2, "-cell 1000"},
		{[]string{"data", "-n", "10000", "-cell", "200", "-images", "-out", "x.safetensors"}, 2, "exceed 8 GB"},
		{[]string{"data", "-n", "5", "-out", filepath.Join(c.notADir, "x.csv")}, 1, "loope data:"},

		{[]string{"fixture"}, 2, "-out is required"},
		{[]string{"fixture", "-pe", "bogus", "-out", out}, 2, "unknown positional embedding"},
		{[]string{"fixture", "-preset", "huge", "-out", out}, 2, "unknown preset"},
		{[]string{"fixture", "-dim", "1000000000", "-out", out}, 2, "exceeds the limit"},
		{[]string{"fixture", "-heads", "3", "-out", out}, 2, "not divisible by heads"},
		{[]string{"fixture", "-batch", "0", "-out", out}, 2, "-batch 0"},
		{[]string{"fixture", "-smoothing", "0.1", "-out", out}, 2, "-smoothing needs -classes"},
		{[]string{"fixture", "-arch", "resnet50", "-pe", "loope", "-out", out}, 2, "-pe is a ViT option"},
		{[]string{"threecell", "-cnn-stem", "small", "-out", out}, 2, "no reference model"},
		{[]string{"threecell", "-ref", "inception3", "-batch", "1", "-out", out}, 2, "needs at least 2 images"},
		{[]string{"threecell", "-ref", "resnet50", "-cnn-stem", "huge", "-out", out}, 2, "unknown CNN stem"},
		{[]string{"fixture", "-arch", "resnet50", "-cnn-stem", "huge", "-out", out}, 2, "unknown CNN stem"},
		{[]string{"fixture", "-arch", "inception3", "-image", "1000", "-out", out}, 2, "exceeds the CNN limit"},
		{[]string{"fixture", "-arch", "nope", "-out", out}, 2, "unknown architecture"},
		{[]string{"fixture", "-cnn-stem", "small", "-out", out}, 2, "-cnn-stem is for a CNN"},
		{[]string{"fixture", "-pe", "fourier", "-fourier-dim", "3", "-out", out}, 2, "must be even"},
		{[]string{"fixture", "-preset", "tiny", "-dim", "8", "-heads", "2", "-depth", "1", "-out", unwritable}, 1, "loope fixture:"},

		{[]string{"pe", "-pe", "bogus", "-out", out}, 2, "unknown -pe \"bogus\" (valid:"},
		{[]string{"pe", "-grid", "0", "-out", out}, 2, "want G or HxW"},
		{[]string{"pe", "-grid", "1000", "-out", out}, 2, "each side must be ≤ 64"},
		{[]string{"pe", "-dim", "0", "-out", out}, 2, "-dim 0"},
		{[]string{"pe", "-pe", "sincos2d", "-dim", "6", "-out", out}, 2, "multiple of 4"},
		{[]string{"pe", "-pe", "rpe", "-patch", "0", "-grid", "4", "-out", out}, 2, "-patch 0"},
		{[]string{"pe", "-pe", "loope", "-dim", "8", "-grid", "4", "-patch", "2", "-threecell-seed", "1", "-threecell-index", "-1", "-out", out}, 2, "-threecell-index -1"},
		{[]string{"pe", "-ckpt", filepath.Join(c.dir, "missing.safetensors"), "-out", out}, 1, "no such file"},
		{[]string{"pe", "-ckpt", c.corrupt, "-out", out}, 1, "loope pe:"},
		{[]string{"pe", "-ckpt", c.wrongShape, "-out", out}, 1, "has shape [1 5 8], model wants [1 50 8]"},
		{[]string{"pe", "-ckpt", c.ckpt, "-out", unwritable}, 1, "loope pe:"},
		{[]string{"pe", "-pe", "loope", "-dim", "8", "-grid", "4", "-patch", "2", "-image-file", c.badPNG, "-out", out}, 1, "png"},
		{[]string{"pe", "-pe", "loope", "-dim", "8", "-grid", "4", "-patch", "2", "-image-file", c.hugePNG, "-out", out}, 1, "image is 100000x100000"},

		{[]string{"pesi", "-dim", "3"}, 2, "must be even"},
		{[]string{"pesi", "-grid", "0"}, 2, "want G or HxW"},
		{[]string{"pesi", "-grid", "100"}, 2, "each side must be ≤ 64"},
		{[]string{"pesi", "-directions", "0"}, 2, "-directions 0"},
		{[]string{"pesi", "-pe", "bogus"}, 2, "unknown -pe"},
		{[]string{"pesi", "-in", filepath.Join(c.dir, "missing.safetensors")}, 1, "no such file"},
		{[]string{"pesi", "-in", c.corrupt}, 1, "loope pesi:"},
		{[]string{"pesi", "-in", c.ckpt}, 1, "choose one with -tensor"},
		{[]string{"pesi", "-in", c.ckpt, "-tensor", "nope"}, 1, "nope"},
		{[]string{"pesi", "-in", c.ckpt, "-tensor", "head.bias"}, 1, "has shape"},

		{[]string{"train", "-steps", "10", "-epochs", "2"}, 2, "-steps and -epochs do not go together"},
		{[]string{"train", "-warmup", "-2"}, 2, "-warmup -2: need ≥ 0, or -1"},
		{[]string{"train", "-epochs", "0"}, 2, "-epochs 0: need 0 < epochs"},
		{[]string{"train", "-batch", "0"}, 2, "-batch 0"},
		{[]string{"train", "-pe", "bogus"}, 2, "unknown positional embedding"},
		{[]string{"train", "-data", "bogus"}, 2, `-data "bogus"`},
		{[]string{"train", "-data", "cifar10"}, 2, `-data "cifar10"`},
		{[]string{"train", "-lr", "-1"}, 2, "lr > 0"},
		{[]string{"train", "-threads", "100000"}, 2, "-threads 100000"},
		{[]string{"train", "-val-frac", "1"}, 2, "-val-frac"},
		{[]string{"train", "-time", "-1s"}, 2, "-time -1s"},
		{[]string{"train", "-replicas", "-1"}, 2, "-replicas"},
		{[]string{"train", "-replicas", "65", "-batch", "64"}, 2, "-replicas 65: need ≤ -batch 64"},
		{[]string{"train", "-pe-lr-scale", "-2"}, 2, "PE learning-rate scale"},
		{[]string{"train", "-data", "folder:" + c.folder, "-preset", "tiny", "-pe", "loope", "-replicas", "2", "-out", filepath.Join(c.dir, "tl")}, 2, "BatchNorm"},
		{[]string{"train", "-data", "folder:" + c.folder, "-preset", "tiny", "-out", filepath.Join(c.dir, "tt"), "-time", "1ms"}, 1, "too short"},
		{[]string{"train", "-data", "folder:" + filepath.Join(c.dir, "missing")}, 1, "loope train:"},
		{[]string{"train", "-data", "folder:" + c.folder, "-preset", "tiny", "-resume", filepath.Join(c.dir, "missing")}, 1, "no such file"},
		{[]string{"train", "-data", "folder:" + c.folder, "-preset", "tiny", "-out", filepath.Join(c.dir, "tr"), "-resume", filepath.Join(c.dir, "missing")}, 2, "writes into"},
		{[]string{"train", "-data", "folder:" + c.folder, "-preset", "tiny", "-out", unwritable}, 1, "loope train:"},

		{[]string{"fixture", "-pe", "rope-dinov3", "-dino-shift", "NaN"}, 2, "not a finite number"},
		{[]string{"bench", "-steps", "0"}, 2, "-steps"},
		{[]string{"bench", "-preset", "huge"}, 2, "unknown preset"},
		{[]string{"bench", "-pe", "bogus"}, 2, "unknown positional embedding"},
		{[]string{"bench", "-threads", "100000"}, 2, "-threads 100000"},
		{[]string{"bench", "-batch", "100000000"}, 2, "-batch 100000000"},
		{[]string{"bench", "-fixture", c.fixture, "-pe", "none"}, 2, "drop -pe"},
		{[]string{"bench", "-fixture", filepath.Join(c.dir, "missing.safetensors")}, 1, "no such file"},
		{[]string{"bench", "-fixture", c.corrupt}, 1, "loope bench:"},
		{[]string{"bench", "-fixture", c.ckpt}, 1, "input"},
		{[]string{"bench", "-fixture", c.fixtureBadInput, "-steps", "1"}, 1, "input has shape [2 3 5 5]"},
		{[]string{"bench", "-fixture", c.fixtureBadY, "-steps", "1"}, 1, "targets have shape [2 7]"},
		{[]string{"bench", "-fixture", c.fixtureNaNInput, "-steps", "1"}, 1, "non-finite loss NaN at step 1"},
		{[]string{"bench", "-fixture", c.fixtureNaNWeight, "-steps", "1"}, 1, "non-finite value NaN in head.bias at element 0"},

		{[]string{"threecell", "-steps", "0"}, 2, "-steps 0"},
		{[]string{"threecell", "-pe", "bogus"}, 2, "unknown positional embedding"},
		{[]string{"threecell", "-batch", "100000000"}, 2, "-batch 100000000"},
		{[]string{"threecell", "-train-size", "1000000000"}, 2, "-train-size 1000000000"},
		{[]string{"threecell", "-seeds", "0"}, 2, "-seeds"},

		// -arch (issue 20)
		{[]string{"fixture", "-arch", "bogus-arch", "-out", out}, 2, `unknown architecture "bogus-arch"`},
		{[]string{"fixture", "-arch", "cait", "-preset", "tiny", "-out", out}, 2, "-preset tiny is a vit preset, not a cait one"},
		{[]string{"fixture", "-preset", "cait-tiny", "-out", out}, 2, "-preset cait-tiny is a cait preset, not a vit one"},
		{[]string{"fixture", "-arch", "cait", "-pe", "pape", "-out", out}, 2, `positional embedding "pape" cannot enter a CaiT`},
		{[]string{"fixture", "-arch", "cait", "-dim1", "8", "-out", out}, 2, "-dim1 is a crossvit option"},
		{[]string{"fixture", "-arch", "crossvit", "-depth1", "-1", "-out", out}, 2, "-depth1 -1: need ≥ 0"},
		{[]string{"fixture", "-cait-cls", "learned", "-out", out}, 2, "-cait-cls is a cait option, and -arch is vit"},
		{[]string{"fixture", "-arch", "resnet50", "-cait-cls", "learned", "-out", out}, 2, "-cait-cls is a ViT option"},
		{[]string{"fixture", "-arch", "resnet50", "-freqs", "f1", "-out", out}, 2, "-freqs is a ViT option"},
		{[]string{"fixture", "-arch", "crossvit", "-heads1", "5", "-out", out}, 2, "branch 1: dim 128 is not divisible by heads 5"},
		{[]string{"train", "-arch", "bogus-arch"}, 2, `unknown architecture "bogus-arch"`},
		{[]string{"train", "-arch", "cait", "-init-from", c.ckpt}, 1, `tensor "patch_embed.proj.weight" has shape [8 3 2 2], model wants [64 3 2 2]`},
		{[]string{"bench", "-arch", "cait", "-preset", "small"}, 2, "-preset small is a vit preset"},
		{[]string{"threecell", "-arch", "cait", "-preset", "tiny"}, 2, "-preset tiny is a vit preset"},

		{[]string{"sensitivity"}, 2, "-in needs at least two"},
		{[]string{"sensitivity", "-in", "a,b", "-metric", "bogus"}, 2, "-metric"},
		{[]string{"sensitivity", "-in", filepath.Join(c.dir, "missing") + "," + filepath.Join(c.dir, "missing2")}, 1, "no such file"},
		{[]string{"sensitivity", "-in", c.resultsCorrupt + "," + c.resultsCorrupt}, 1, "loope sensitivity:"},
		{[]string{"sensitivity", "-in", c.resultsHugeDim + "," + c.resultsHugeDim}, 1, "model dim 1000000000000"},
	}
	// Hostile files: they must fail fast with a small peak RSS.
	hostile := []cliCase{
		{[]string{"pe", "-ckpt", c.hostileDim, "-out", out}, 1, "dim 1000000000 exceeds the limit 8192"},
		{[]string{"pe", "-ckpt", c.hostileTB, "-out", out}, 1, "loope pe:"},
		{[]string{"pe", "-ckpt", c.hostileParams, "-out", out}, 1, "the file holds 1 values"},
		{[]string{"bench", "-fixture", c.hostileDim}, 1, "dim 1000000000 exceeds the limit 8192"},
		{[]string{"bench", "-fixture", c.hostileTB}, 1, "loope bench:"},
		{[]string{"bench", "-fixture", c.hostileParams}, 1, "the file holds 1 values"},
		{[]string{"pesi", "-in", c.hostileTB}, 1, "loope pesi:"},
		{[]string{"train", "-data", "folder:" + c.folder, "-preset", "tiny", "-resume", c.hostileResumeDir}, 1, "dim 1000000000 exceeds the limit 8192"},
		{[]string{"train", "-data", "folder:" + c.folder, "-preset", "tiny", "-resume", c.wrongShapeResumeDir}, 1, "loope train:"},
	}
	for name := range commands {
		cases = append(cases, cliCase{[]string{name, "-bogus-flag"}, 2, "flag provided but not defined"},
			cliCase{[]string{name, "-h"}, 0, "-"})
	}
	run := func(tc cliCase) (stderr string, maxRSS int64) {
		cmd := exec.Command(bin, tc.args...)
		cmd.Dir = c.dir
		var se bytes.Buffer
		cmd.Stderr = &se
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		stderr = se.String()
		if code != tc.code {
			t.Errorf("loope %s: exit %d, want %d; stderr:\n%s", strings.Join(tc.args, " "), code, tc.code, stderr)
		}
		if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
			t.Errorf("loope %s: a panic or trace on stderr:\n%s", strings.Join(tc.args, " "), stderr)
		}
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("loope %s: stderr does not contain %q:\n%s", strings.Join(tc.args, " "), tc.want, stderr)
		}
		if tc.code == 2 && len(tc.args) > 0 && !strings.Contains(stderr, "-h") && !strings.Contains(stderr, "usage") && !strings.Contains(stderr, "Usage") {
			t.Errorf("loope %s: usage error without the usage or a pointer to -h:\n%s", strings.Join(tc.args, " "), stderr)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			maxRSS = int64(ru.Maxrss) << 10 // kB on Linux
		}
		return stderr, maxRSS
	}
	for _, tc := range cases {
		run(tc)
	}
	for _, tc := range hostile {
		stderr, rss := run(tc)
		if rss > 200<<20 {
			t.Errorf("loope %s: peak RSS %d MB, want < 200 MB", strings.Join(tc.args, " "), rss>>20)
		}
		t.Logf("peak RSS %.1f MB: loope %s: %s", float64(rss)/(1<<20), tc.args[0], strings.TrimSpace(stderr))
	}
	// Control: the RSS measurement sees a child that does allocate (400
	// Three-Cell images of 224² RGB are 60 MB, built in memory).
	ctl := filepath.Join(c.dir, "ctl", "images.safetensors")
	os.Mkdir(filepath.Dir(ctl), 0o755)
	if _, rss := run(cliCase{[]string{"data", "-n", "400", "-cell", "16", "-images", "-out", ctl}, 0, "priors"}); rss < 60<<20 {
		t.Errorf("control: peak RSS %d MB, want ≥ 60 MB (is the measurement working?)", rss>>20)
	}
	if ents, _ := os.ReadDir(c.dir); len(ents) == 0 {
		t.Error("no files")
	} else if _, err := os.Stat(out); err == nil {
		t.Error("a failing command wrote -out")
	}
}
