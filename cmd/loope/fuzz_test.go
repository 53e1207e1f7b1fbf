package main

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fuzzValidateOnly are the commands FuzzFlags stops after validation:
// their work (priors, data, training) takes seconds even at small sizes.
var fuzzValidateOnly = []string{"data", "train", "bench", "threecell"}

// fuzzFlagSeeds are argument lines (space-separated) per command.
var fuzzFlagSeeds = map[string][]string{
	"data":        {"-grid 5 -n 3 -out a.csv", "-grid 4 -n 2 -cell 2 -images -out a.safetensors", "-out a.txt", "-grid 100"},
	"fixture":     {"-preset tiny -dim 8 -heads 2 -depth 1 -out f.safetensors", "-preset tiny -pe fourier -fourier-dim 6 -dim 8 -heads 2 -depth 1 -classes 3 -smoothing 0.1 -out f.safetensors", "-pe loope -loope-act relu -dim 4 -depth 1 -heads 2 -out f.safetensors", "-f64 -pe rope-axial -dim 8 -heads 2 -depth 1 -out f.safetensors"},
	"pe":          {"-pe hilbert -dim 8 -grid 4 -out p.safetensors", "-pe loope -dim 8 -grid 4 -patch 2 -threecell-seed 1 -threecell-index 3 -out p.safetensors", "-pe rpe -dim 8 -heads 2 -grid 3 -patch 2 -out p.safetensors", "-ckpt wrongshape.safetensors -out p.safetensors", "-ckpt hostile-dim.safetensors -out p.safetensors", "-pe loope -dim 8 -grid 4 -patch 2 -image-file huge.png -out p.safetensors", "-pe sincos2d -dim 8 -grid 3x5 -freqs f2 -out p.safetensors"},
	"pesi":        {"-pe hilbert -dim 8 -grid 4", "-all -dim 4 -grid 3", "-in fixture.safetensors -tensor pos_embed", "-in hostile-tb.safetensors", "-grid 3x5 -directions 7 -pe snake -dim 6"},
	"train":       {"-data folder:folder -preset tiny -steps 2 -batch 2", "-data cifar10 -lr -1", "-pe loope -epochs 0.5", "-init-from fixture.safetensors -heads 2", "-init-from hostile-tb.safetensors", "-init-from wrongshape.safetensors -image 8"},
	"bench":       {"-preset tiny -pe none -steps 1 -batch 2", "-fixture fixture.safetensors -steps 1", "-pe fourier -fourier-dim 3"},
	"threecell":   {"-preset tiny -pe none,loope -steps 2 -batch 2 -seeds 2 -loope-act relu", "-pe all -epochs 1 -steps 3", "-seeds 1,1"},
	"sensitivity": {"-in corrupt,hugedim", "-in a,b -metric area"},
}

var digitRun = regexp.MustCompile(`[0-9]+`)

// fuzzArgsOK rejects argument lists that would start long or unbounded
// work when run for real: decimal numbers above 12 (which also excludes
// the 224-px presets ti16, s16, b16), other number bases and digit
// separators, and paths outside the working folder.
func fuzzArgsOK(args []string) bool {
	for _, a := range args {
		l := strings.ToLower(a)
		if strings.ContainsAny(l, "/_\\") || strings.Contains(l, "..") || strings.Contains(l, "0x") || strings.Contains(l, "0o") || strings.Contains(l, "0b") {
			return false
		}
		for _, d := range digitRun.FindAllString(l, -1) {
			if v, err := strconv.Atoi(d); err != nil || v > 12 {
				return false
			}
		}
	}
	return true
}

// FuzzFlags feeds random argument lists to every subcommand's run
// function in a folder holding broken and hostile files (see TestCLI). It
// must return nil or an error, never panic. data, train, bench and
// threecell stop after validating (validateOnly); the others run for real
// on inputs with small numbers (fuzzArgsOK).
func FuzzFlags(f *testing.F) {
	c := makeCLIFiles(f)
	for name, lines := range fuzzFlagSeeds {
		for _, l := range lines {
			f.Add(name, l)
		}
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		f.Fatal(err)
	}
	defer devnull.Close()
	f.Fuzz(func(t *testing.T, name, line string) {
		cmd, ok := commands[name]
		args := strings.Fields(line)
		if !ok || !fuzzArgsOK(args) {
			return
		}
		t.Chdir(c.dir)
		validateOnly = slices.Contains(fuzzValidateOnly, name)
		stdout, stderr := os.Stdout, os.Stderr
		os.Stdout, os.Stderr = devnull, devnull
		defer func() { os.Stdout, os.Stderr, validateOnly = stdout, stderr, false }()
		_ = cmd.run(args)
	})
}
