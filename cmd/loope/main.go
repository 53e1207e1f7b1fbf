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
