// Command loope is the one binary of the LOOPE Go reference: each
// subcommand lives in its own file and registers itself in commands.
//
//	loope <command> [flags]
//
// Run `loope` alone to list the commands, `loope <command> -h` for flags.
package main

import (
	"fmt"
	"os"
	"sort"

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

// checkModel validates cfg and builds its PE once, on a one-block model,
// so that PE option errors (e.g. an odd fourier width) are usage errors
// found before any work; they do not depend on the depth.
func checkModel(cfg loope.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if a := cfg.Arch; a != "" && a != "vit" {
		return nil // no PE to build; Validate checked the rest
	}
	cfg.Depth = 1
	_, err := loope.NewModel[float32](cfg, 0)
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
