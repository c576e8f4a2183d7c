// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

type command struct {
	summary string
	run     func(args []string, stdout io.Writer) error
}

var commands = map[string]command{
	"compile": {"compile a binding's filter tree and print the program", runCompile},
	"attach":  {"attach the classifier to a guest device and bind its filter", runAttach},
	"detach":  {"detach the classifier from a guest device and unbind it", runDetach},
	"status":  {"list attached devices with per-rule packet and byte counters", runStatus},
	"verdict": {"run frames through the real classifier (BPF_PROG_TEST_RUN)", runVerdict},
	"demo":    {"show clean-traffic at work in a throw-away copy of libvirt's default network (root)", runDemo},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: nwbpf <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'nwbpf <command> -h' for a command's flags.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "nwbpf: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err := c.run(args[1:], stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "nwbpf %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
