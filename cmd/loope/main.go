// Command loope is the one binary of the LOOPE Go reference: each
// subcommand lives in its own file and registers itself in commands.
//
//	loope <command> [flags]
//
// Run `loope` alone to list the commands, `loope <command> -h` for flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"

	"github.com/loope-go/loope"
)

// command is one subcommand: run parses args (without the command name)
// and returns an error for bad input; usage errors return errUsage.
type command struct {
	summary string
	run     func(args []string) error
}

// commands maps a subcommand name to its implementation. Files add to it in init.
var commands = map[string]command{}

// errUsage reports that the flags were wrong; the flag package has already
// printed the usage, so main only exits 2.
var errUsage = fmt.Errorf("usage")

// validateOnly, set by tests, makes commands return nil right after
// parsing and validating their flags, before any long work (reading data,
// training, writing output).
var validateOnly bool

// Limits on flags that size work or memory beyond the model's own
// (loope.Config.Validate bounds the model).
const (
	maxBatch   = 1 << 16 // images per step
	maxThreads = 1024    // kernel goroutines
)

// parseFlags parses args into fs. It returns done = true when the command
// must stop: after -h (err nil, usage printed) or a bad flag (errUsage,
// the flag package printed why and the usage).
func parseFlags(fs *flag.FlagSet, args []string) (done bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return true, errUsage
	}
	if fs.NArg() > 0 { // no subcommand takes positional arguments
		return true, badUsage(fs, "unexpected arguments %q", fs.Args())
	}
	return false, nil
}

// badUsage prints "loope <command>: message" and the usage of fs to fs's
// output and returns errUsage.
func badUsage(fs *flag.FlagSet, format string, a ...any) error {
	fmt.Fprintf(fs.Output(), "loope %s: %s\n", fs.Name(), fmt.Sprintf(format, a...))
	fs.Usage()
	return errUsage
}

// finiteFloat is a float64 flag value that accepts only finite numbers:
// NaN and ±Inf (and values beyond the float64 range) are parse errors.
type finiteFloat float64

func (f *finiteFloat) String() string { return strconv.FormatFloat(float64(*f), 'g', -1, 64) }

func (f *finiteFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%q is not a finite number", s)
	}
	*f = finiteFloat(v)
	return nil
}

// floatFlag defines a float64 flag on fs, like fs.Float64, that rejects
// NaN and ±Inf at parse time. Every float flag of loope uses it.
func floatFlag(fs *flag.FlagSet, name string, value float64, usage string) *float64 {
	p := new(float64)
	*p = value
	fs.Var((*finiteFloat)(p), name, usage)
	return p
}

// checkBatch rejects a batch outside [1, maxBatch] or whose input tensor,
// batch·channels·side², exceeds 2³¹ values.
func checkBatch(batch, channels, side int) error {
	if batch < 1 || batch > maxBatch {
		return fmt.Errorf("-batch %d: need 1 ≤ batch ≤ %d", batch, maxBatch)
	}
	if int64(batch)*int64(channels)*int64(side)*int64(side) > 1<<31 {
		return fmt.Errorf("-batch %d: the input batch (%d×%d×%d×%d) exceeds 2³¹ values", batch, batch, channels, side, side)
	}
	return nil
}

// checkModel validates cfg and builds its PE once, on a one-block model,
// so that PE option errors (e.g. an odd fourier width) are usage errors
// found before any work; they do not depend on the depth.
func checkModel(cfg loope.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.Depth = 1
	_, err := loope.NewViT[float32](cfg, 0)
	return err
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "loope: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := cmd.run(os.Args[2:]); err != nil {
		if err == errUsage {
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "loope %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loope <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", n, commands[n].summary)
	}
}
