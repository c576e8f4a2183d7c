// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/loader"
	"github.com/nwbpf/nwbpf/maps"
)

// hostFlags say where the pinned classifier and the state file live.
type hostFlags struct {
	pinDir   string
	stateDir string
}

func (h *hostFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&h.pinDir, "pin-dir", loader.DefaultPinDir, "root of nwbpf's pins (on a bpf filesystem)")
	fs.StringVar(&h.stateDir, "state-dir", loader.DefaultStateDir, "directory of nwbpf's state file")
}

func (h *hostFlags) session(programs bool) (*loader.Session, error) {
	return loader.OpenSession(loader.SessionOptions{PinDir: h.pinDir, StateDir: h.stateDir, Programs: programs})
}

// parseInterleaved parses flags that may come before and after the
// positional arguments (`attach vnet0 --binding b.xml`), which the flag
// package alone stops at.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// oneDevice returns the one positional argument, a valid device name.
func oneDevice(pos []string) (string, error) {
	if len(pos) != 1 {
		return "", fmt.Errorf("want one device name, got %d arguments %q", len(pos), pos)
	}
	if err := compiler.ValidDeviceName(pos[0]); err != nil {
		return "", fmt.Errorf("device %q: %w", pos[0], err)
	}
	return pos[0], nil
}

func runAttach(args []string, stdout io.Writer) error {
	fs := newFlagSet("attach", "usage: nwbpf attach DEV (--binding FILE | --filter NAME --mac MAC [--param NAME=VALUE]...) [--clsact] [--shadow] [--pin-dir DIR] [--state-dir DIR]")
	var bf bindingFlags
	bf.register(fs)
	var hf hostFlags
	hf.register(fs)
	clsact := fs.Bool("clsact", false, "attach through clsact and cls_bpf even where TCX is available")
	shadow := fs.Bool("shadow", false, "shadow mode: evaluate and count, but pass every frame")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	dev, err := oneDevice(pos)
	if err != nil {
		return err
	}
	if bf.portdev != "" && bf.portdev != dev {
		return fmt.Errorf("--portdev %s is not the device %s", bf.portdev, dev)
	}
	if bf.binding == "" {
		bf.portdev = dev
	}
	// Everything that can be wrong with the input is found here, before
	// anything in the kernel is touched.
	prog, inst, bind, err := bf.compileBinding()
	if err != nil {
		return err
	}
	if bind.PortDev != dev {
		return fmt.Errorf("binding %s is for portdev %s, not %s", bind.Source, bind.PortDev, dev)
	}
	entries, err := programEntries(prog)
	if err != nil {
		return err
	}
	req := loader.AttachRequest{
		Stages: prog.Stages, Instances: inst,
		Device: loader.Device{
			Owner: bind.OwnerName, OwnerUUID: compiler.FormatUUID(bind.OwnerUUID),
			MAC: compiler.FormatMAC(bind.MAC), Filter: bind.Filter, Params: params(bind), Entries: entries,
		},
		Opts: loader.AttachOptions{ForceClsact: *clsact},
	}
	if *shadow {
		req.Mode = maps.ModeShadow
	}
	s, err := hf.session(true)
	if err != nil {
		return err
	}
	defer s.Close()
	warn(stdout, s)
	d, err := s.Attach(dev, req)
	if err != nil {
		return err
	}
	n := 0
	for _, st := range d.Entries {
		n += len(st[0]) + len(st[1])
	}
	fmt.Fprintf(stdout, "attached %s (%s, %s, %s): filter %s, %d entries\n", d.Name, d.Kind, d.Method, modeName(d.Mode), d.Filter, n)
	return nil
}

// programEntries describes a program's entries for the state file.
func programEntries(prog *compiler.Program) ([2][2][]loader.Entry, error) {
	var out [2][2][]loader.Entry
	for d := range 2 {
		for st := range 2 {
			out[d][st] = []loader.Entry{}
			for i, r := range prog.Stages[d][st] {
				if int(r.ID) >= len(prog.Meta) {
					return out, fmt.Errorf("%s %s entry %d: rule id %d has no metadata", maps.Dir(d), maps.Stage(st), i, r.ID)
				}
				m := prog.Meta[r.ID]
				out[d][st] = append(out[d][st], loader.Entry{
					Kind: r.Kind.String(), Chain: m.Chain, Priority: m.Priority, Action: m.Action,
					Filter: m.Filter, Rule: m.Rule, Match: m.Match,
				})
			}
		}
	}
	return out, nil
}

func params(b *compiler.Binding) []loader.Param {
	vars := b.Vars()
	out := []loader.Param{}
	for _, n := range vars.Names() {
		v, _ := vars.Get(n)
		out = append(out, loader.Param{Name: n, Values: v})
	}
	return out
}

func modeName(m maps.Mode) string {
	if m == maps.ModeShadow {
		return "shadow"
	}
	return "enforce"
}

// warn prints what the session found and repaired, ahead of the
// command's own output.
func warn(w io.Writer, s *loader.Session) {
	for _, m := range s.Warnings {
		fmt.Fprintln(w, "warning:", m)
	}
}

func runDetach(args []string, stdout io.Writer) error {
	fs := newFlagSet("detach", "usage: nwbpf detach DEV [--pin-dir DIR] [--state-dir DIR]")
	var hf hostFlags
	hf.register(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	dev, err := oneDevice(pos)
	if err != nil {
		return err
	}
	s, err := hf.session(false)
	if err != nil {
		return err
	}
	defer s.Close()
	warn(stdout, s)
	if err := s.Detach(dev); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "detached %s\n", dev)
	return nil
}

// statusJSON is `nwbpf status --json`.
type statusJSON struct {
	Devices  []deviceJSON        `json:"devices"`
	Drops    []loader.DropStatus `json:"drops"`
	Warnings []string            `json:"warnings,omitempty"`
}

// deviceJSON is one device of `nwbpf status --json`.
type deviceJSON struct {
	Name      string               `json:"name"`
	Ifindex   int                  `json:"ifindex"`
	Present   bool                 `json:"present"`
	Kind      string               `json:"kind"`
	Method    string               `json:"method"`
	OutHook   string               `json:"out_hook"` // the hook carrying the guest's frames
	Hooks     map[string]bool      `json:"hooks"`    // nwbpf's program on ingress, egress
	Mode      string               `json:"mode"`
	Bound     bool                 `json:"bound"`
	BindingID uint32               `json:"binding_id"`
	Ruleset   uint32               `json:"ruleset"`
	Owner     string               `json:"owner"`
	OwnerUUID string               `json:"owner_uuid"`
	MAC       string               `json:"mac"`
	Filter    string               `json:"filter"`
	Params    []loader.Param       `json:"params"`
	Attached  string               `json:"attached"`
	Rules     []loader.EntryStatus `json:"rules"`
}

func toJSON(d loader.DeviceStatus) deviceJSON {
	hook := "ingress"
	if d.OutHook == maps.HookEgress {
		hook = "egress"
	}
	return deviceJSON{
		Name: d.Name, Ifindex: d.Ifindex, Present: d.Present, Kind: d.Kind, Method: d.Method, OutHook: hook,
		Hooks: map[string]bool{"ingress": d.Hooks[0], "egress": d.Hooks[1]}, Mode: modeName(d.Mode),
		Bound: d.Bound, BindingID: d.BindingID, Ruleset: d.Binding.Ruleset,
		Owner: d.Owner, OwnerUUID: d.OwnerUUID, MAC: d.MAC, Filter: d.Filter, Params: d.Params,
		Attached: d.Attached.Format("2006-01-02T15:04:05Z"), Rules: d.Rules,
	}
}

func runStatus(args []string, stdout io.Writer) error {
	fs := newFlagSet("status", "usage: nwbpf status [--json] [--pin-dir DIR] [--state-dir DIR]")
	var hf hostFlags
	hf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected arguments %q", pos)
	}
	s, err := hf.session(false)
	if err != nil {
		return err
	}
	defer s.Close()
	devs, drops, err := s.Status()
	if err != nil {
		return err
	}
	if *asJSON {
		out := statusJSON{Devices: []deviceJSON{}, Drops: drops, Warnings: s.Warnings}
		for _, d := range devs {
			out.Devices = append(out.Devices, toJSON(d))
		}
		if out.Drops == nil {
			out.Drops = []loader.DropStatus{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	warn(stdout, s)
	return writeStatus(stdout, devs, drops)
}

// writeStatus prints devices and their rule counters like iptables -L -v.
func writeStatus(w io.Writer, devs []loader.DeviceStatus, drops []loader.DropStatus) error {
	if len(devs) == 0 {
		fmt.Fprintln(w, "no device attached")
	}
	for _, d := range devs {
		state := "present"
		if !d.Present {
			state = "GONE"
		}
		fmt.Fprintf(w, "%s  ifindex %d  %s  %s  %s  %s  hooks ingress:%s egress:%s  binding %d\n",
			d.Name, d.Ifindex, state, d.Kind, d.Method, modeName(d.Mode), onOff(d.Hooks[0]), onOff(d.Hooks[1]), d.BindingID)
		var ps []string
		for _, p := range d.Params {
			ps = append(ps, p.Name+"="+strings.Join(p.Values, ","))
		}
		fmt.Fprintf(w, "  owner %s %s  filter %s  %s\n", d.Owner, d.OwnerUUID, d.Filter, strings.Join(ps, " "))
		if !d.Bound {
			fmt.Fprintln(w, "  NOT BOUND: the classifier passes this device's frames unfiltered")
			continue
		}
		for _, blk := range stageBlocks(d.Rules) {
			e0 := blk[0]
			fmt.Fprintf(w, "  %s %s (%s)\n", e0.Dir, e0.Stage, map[string]string{"out": "sent by the guest", "in": "sent to the guest"}[e0.Dir])
			writeRules(w, blk)
		}
	}
	var lines []string
	for _, d := range drops {
		if d.Packets > 0 || d.ShadowPackets > 0 {
			lines = append(lines, fmt.Sprintf("  %-10s %-3s %d pkts %d bytes (shadow %d pkts %d bytes)", d.Reason, d.Dir, d.Packets, d.Bytes, d.ShadowPackets, d.ShadowBytes))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "drops (all devices):")
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
	return nil
}

// stageBlocks splits entries into runs of one direction and stage.
func stageBlocks(es []loader.EntryStatus) [][]loader.EntryStatus {
	var out [][]loader.EntryStatus
	for i, e := range es {
		if i == 0 || e.Dir != es[i-1].Dir || e.Stage != es[i-1].Stage {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], e)
	}
	return out
}

// writeRules prints one stage's entries as iptables -L -v does: counters
// right-aligned, then position, priority, action, chain, source and match.
func writeRules(w io.Writer, es []loader.EntryStatus) {
	rows := [][]string{{"pkts", "bytes", "#", "prio", "action", "chain", "filter", "match"}}
	for _, e := range es {
		filter := e.Filter
		if filter != "" && e.Rule >= 0 {
			filter = fmt.Sprintf("%s#%d", filter, e.Rule)
		}
		rows = append(rows, []string{
			fmt.Sprint(e.Packets), fmt.Sprint(e.Bytes), fmt.Sprint(e.Index), fmt.Sprint(e.Priority),
			e.Action, e.Chain, filter, e.Match,
		})
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		b.WriteString("   ")
		for i, c := range r {
			switch {
			case i < 4: // numbers
				fmt.Fprintf(&b, " %*s", width[i], c)
			case i < len(r)-1:
				fmt.Fprintf(&b, "  %-*s", width[i], c)
			default:
				b.WriteString("  " + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "OFF"
}
