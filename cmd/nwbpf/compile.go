// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nwbpf/nwbpf/compiler"
)

// bindingFlags are the flags shared by every command that takes a binding.
type bindingFlags struct {
	filterDir string
	binding   string
	portdev   string
	mac       string
	filter    string
	params    paramList
	strict    bool
}

type paramList []string

func (p *paramList) String() string     { return strings.Join(*p, ",") }
func (p *paramList) Set(v string) error { *p = append(*p, v); return nil }

func (b *bindingFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.filterDir, "filter-dir", "", "directory of filter XML files (default: "+strings.Join(compiler.DefaultFilterDirs, ", then ")+")")
	fs.StringVar(&b.binding, "binding", "", "libvirt <filterbinding> XML file")
	fs.StringVar(&b.portdev, "portdev", "", "guest interface (tap or macvtap), without --binding")
	fs.StringVar(&b.mac, "mac", "", "guest MAC address, without --binding")
	fs.StringVar(&b.filter, "filter", "", "root filter name, without --binding")
	fs.Var(&b.params, "param", "filter parameter NAME=VALUE, repeat for lists (without --binding)")
	fs.BoolVar(&b.strict, "strict-subchain-end", false, "end of an L2 sub-chain returns to the root chain instead of accepting (libvirt accepts)")
}

// load reads the filter set and the binding the flags describe.
func (b *bindingFlags) load() (*compiler.Set, *compiler.Binding, error) {
	var set *compiler.Set
	var err error
	if b.filterDir != "" {
		set, err = compiler.LoadDir(b.filterDir)
	} else {
		set, _, err = compiler.LoadDefault()
	}
	if err != nil {
		return nil, nil, err
	}
	bind, err := b.bindingFromFlags()
	if err != nil {
		return nil, nil, err
	}
	return set, bind, nil
}

func (b *bindingFlags) bindingFromFlags() (*compiler.Binding, error) {
	if b.binding != "" {
		if b.portdev != "" || b.mac != "" || b.filter != "" || len(b.params) > 0 {
			return nil, fmt.Errorf("--binding excludes --portdev, --mac, --filter and --param")
		}
		data, err := os.ReadFile(b.binding)
		if err != nil {
			return nil, fmt.Errorf("read binding: %w", err)
		}
		return compiler.ParseBinding(data, b.binding)
	}
	if b.filter == "" || b.mac == "" {
		return nil, fmt.Errorf("give --binding FILE, or --filter and --mac (and --portdev, --param)")
	}
	var x strings.Builder
	x.WriteString("<filterbinding><owner><name>cli</name><uuid>00000000-0000-0000-0000-000000000000</uuid></owner>")
	portdev := b.portdev
	if portdev == "" {
		portdev = "vnet0"
	}
	fmt.Fprintf(&x, "<portdev name=%q/><mac address=%q/><filterref filter=%q>", portdev, b.mac, b.filter)
	for _, p := range b.params {
		name, val, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--param %q: want NAME=VALUE", p)
		}
		fmt.Fprintf(&x, "<parameter name=%q value=%q/>", xmlEscape(name), xmlEscape(val))
	}
	x.WriteString("</filterref></filterbinding>")
	return compiler.ParseBinding([]byte(x.String()), "command line")
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// newFlagSet returns a command's flag set: errors are returned, and -h
// prints the usage line, then the flags.
func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// compileBinding compiles and binds.
func (b *bindingFlags) compileBinding() (*compiler.Program, compiler.Instances, *compiler.Binding, error) {
	set, bind, err := b.load()
	if err != nil {
		return nil, nil, nil, err
	}
	prog, err := set.Compile(bind.Filter, compiler.Options{StrictSubchainEnd: b.strict})
	if err != nil {
		return nil, nil, nil, err
	}
	inst, err := prog.Bind(bind.Vars())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("binding %s: %w", bind.Source, err)
	}
	return prog, inst, bind, nil
}

func runCompile(args []string, stdout io.Writer) error {
	fs := newFlagSet("compile", "usage: nwbpf compile (--binding FILE | --filter NAME --mac MAC [--portdev DEV] [--param NAME=VALUE]...) [--filter-dir DIR] [--json] [--strict-subchain-end]")
	var bf bindingFlags
	bf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	prog, inst, _, err := bf.compileBinding()
	if err != nil {
		return err
	}
	l := prog.List(inst)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(l)
	}
	return l.WriteText(stdout)
}
