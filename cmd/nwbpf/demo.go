// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/internal/sandbox"
	"github.com/nwbpf/nwbpf/loader"
	"github.com/nwbpf/nwbpf/maps"
)

// demoFilter is the stock filter the demo binds to every guest.
const demoFilter = "clean-traffic"

// errNoStockFilters says libvirt's stock filters are missing; the demo
// does not ship copies of them.
var errNoStockFilters = errors.New("libvirt's stock filters are not installed (apt-get install libvirt-daemon-config-nwfilter)")

// Waits for frames: a delivered frame arrives within microseconds here,
// so a probe that is not there after dropWait was dropped.
const (
	deliverWait = 2 * time.Second
	dropWait    = 400 * time.Millisecond
)

// demoConfig is what a test changes in the demo.
type demoConfig struct {
	// filterDirs are searched in order for the stock filters.
	filterDirs []string
	// suffix is the unique part of every name (random when empty).
	suffix string
	// bpffs is the bpf filesystem under which the demo pins.
	bpffs string
	// afterAttach, when set, runs once the guests are attached, before
	// any probe is sent.
	afterAttach func()
	// shadow binds the guests in shadow mode (evaluate and count, pass
	// everything), so that the spoofed probes are delivered and the demo
	// must report failed expectations.
	shadow bool
}

func runDemo(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: nwbpf demo [--filter-dir DIR]")
		fmt.Fprintln(fs.Output(), "\nBuilds a throw-away copy of libvirt's default network in private network")
		fmt.Fprintln(fs.Output(), "namespaces (bridge, NAT in nftables, two guests on taps, an upstream server),")
		fmt.Fprintln(fs.Output(), "binds the stock clean-traffic filter to both guests, sends legitimate and")
		fmt.Fprintln(fs.Output(), "spoofed traffic, reports what was delivered and dropped, and removes")
		fmt.Fprintln(fs.Output(), "everything. Needs root. Exits non-zero when a probe has the wrong outcome.")
		fs.PrintDefaults()
	}
	dir := fs.String("filter-dir", "", "directory of libvirt's stock filters (default: "+strings.Join(compiler.DefaultFilterDirs, ", then ")+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := demoConfig{filterDirs: compiler.DefaultFilterDirs, bpffs: "/sys/fs/bpf"}
	if *dir != "" {
		cfg.filterDirs = []string{*dir}
	}
	// Ctrl-C and SIGTERM stop the probes; the sandbox is removed either
	// way. The handler stays until the cleanup is over.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return demo(ctx, stdout, cfg)
}

// stockFilters returns the first of dirs holding clean-traffic, and the
// compiled filter tree.
func stockFilters(dirs []string) (string, *compiler.Program, error) {
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, demoFilter+".xml")); err != nil {
			continue
		}
		set, err := compiler.LoadDir(dir)
		if err != nil {
			return "", nil, err
		}
		prog, err := set.Compile(demoFilter, compiler.Options{})
		if err != nil {
			return "", nil, err
		}
		return dir, prog, nil
	}
	return "", nil, fmt.Errorf("no %s.xml in %s: %w", demoFilter, strings.Join(dirs, " or "), errNoStockFilters)
}

// demoRun is one run of the demo: the sandbox, the classifier and the
// transcript.
type demoRun struct {
	ctx   context.Context
	w     io.Writer
	cfg   demoConfig
	net   *sandbox.Network
	prog  *compiler.Program
	sess  *loader.Session
	fails []string
	seq   int
}

// demo runs the demo and returns an error when anything failed, an
// expectation included; everything it built is removed in any case.
func demo(ctx context.Context, w io.Writer, cfg demoConfig) (err error) {
	start := time.Now()
	dir, prog, err := stockFilters(cfg.filterDirs)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("the demo builds namespaces and loads BPF: run it as root (sudo make demo)")
	}
	if _, err := sandbox.NftBinary(); err != nil {
		return err
	}
	if cfg.suffix == "" {
		if cfg.suffix, err = sandbox.Suffix(); err != nil {
			return err
		}
	}
	r := &demoRun{ctx: ctx, w: w, cfg: cfg, prog: prog}

	fmt.Fprintf(w, "nwbpf demo %s: libvirt's default network in a sandbox, stock %s from %s\n\n", cfg.suffix, demoFilter, dir)
	r.net, err = sandbox.NewNetwork(cfg.suffix, 2)
	if err != nil {
		return fmt.Errorf("build sandbox: %w", err)
	}
	defer func() {
		if cerr := r.net.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("remove sandbox: %w", cerr))
		}
		if err == nil {
			fmt.Fprintf(w, "\nsandbox removed; %s\n", time.Since(start).Round(10*time.Millisecond))
		}
	}()
	r.describe()

	fmt.Fprintln(w, "\nWithout nwbpf, the sandbox delivers every probe (so every drop below is nwbpf's):")
	if err := r.probes(false); err != nil {
		return err
	}

	pinDir := filepath.Join(cfg.bpffs, "nwbpf-demo-"+cfg.suffix)
	stateDir, err := os.MkdirTemp("", "nwbpf-demo-"+cfg.suffix+"-")
	if err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	defer func() {
		err = errors.Join(err, r.unload(pinDir, stateDir))
	}()
	if err := r.attach(pinDir, stateDir); err != nil {
		return err
	}
	if cfg.afterAttach != nil {
		cfg.afterAttach()
	}

	fmt.Fprintln(w, "\nWith nwbpf (rules whose counters moved on the attached classifier; both guests share")
	fmt.Fprintln(w, "one stored filter tree and its counters, which also count the host's own frames):")
	if err := r.probes(true); err != nil {
		return err
	}
	if err := r.status(); err != nil {
		return err
	}
	if len(r.fails) > 0 {
		return fmt.Errorf("%d expectations failed: %s", len(r.fails), strings.Join(r.fails, "; "))
	}
	fmt.Fprintln(w, "\nall expectations met: legitimate traffic delivered (NAT included), spoofed traffic dropped by nwbpf")
	return nil
}

// describe prints the topology.
func (r *demoRun) describe() {
	n := r.net
	fmt.Fprintf(r.w, "  netns %-34s bridge %s %s/24 (like virbr0), NAT: nft table ip %s (masquerade)\n", n.Host.Name, n.Bridge, sandbox.GatewayIP, sandbox.NftTable)
	fmt.Fprintf(r.w, "  netns %-34s UDP echo server %s:%d, no route back to %s\n", n.Upstream.Name, sandbox.ServerIP, sandbox.ServerPort, sandbox.GuestSubnet)
	for _, g := range n.Guests {
		fmt.Fprintf(r.w, "  %-40s tap %s, MAC %s, IP %s (the demo plays the VM)\n", g.Name, g.Tap.Name, g.MAC, g.IP)
	}
}

// attach loads the classifier under a private pin dir and binds the
// stock filter to every guest's tap, as `nwbpf attach` does.
func (r *demoRun) attach(pinDir, stateDir string) error {
	var err error
	r.sess, err = loader.OpenSession(loader.SessionOptions{PinDir: pinDir, StateDir: stateDir, Programs: true})
	if err != nil {
		return fmt.Errorf("load classifier: %w", err)
	}
	entries, err := programEntries(r.prog)
	if err != nil {
		return err
	}
	fmt.Fprintln(r.w)
	for _, g := range r.net.Guests {
		bind, err := guestBinding(g)
		if err != nil {
			return err
		}
		inst, err := r.prog.Bind(bind.Vars())
		if err != nil {
			return fmt.Errorf("bind %s to %s: %w", demoFilter, g.Name, err)
		}
		req := loader.AttachRequest{
			Stages: r.prog.Stages, Instances: inst,
			Device: loader.Device{
				Owner: bind.OwnerName, OwnerUUID: compiler.FormatUUID(bind.OwnerUUID),
				MAC: compiler.FormatMAC(bind.MAC), Filter: bind.Filter, Params: params(bind), Entries: entries,
			},
		}
		if r.cfg.shadow {
			req.Mode = maps.ModeShadow
		}
		var d *loader.Device
		err = r.net.Host.Do(func() error {
			var err error
			d, err = r.sess.Attach(g.Tap.Name, req)
			return err
		})
		if err != nil {
			return fmt.Errorf("attach %s: %w", g.Tap.Name, err)
		}
		fmt.Fprintf(r.w, "attached nwbpf to %s (%s, %s, %s): filter %s, MAC=%s IP=%s\n", d.Name, d.Kind, d.Method, modeName(d.Mode), d.Filter, g.MAC, g.IP)
	}
	fmt.Fprintf(r.w, "  pins under %s, state in %s\n", pinDir, stateDir)
	return nil
}

// guestBinding is the <filterbinding> libvirt would instantiate for g.
func guestBinding(g *sandbox.Guest) (*compiler.Binding, error) {
	var uuid [16]byte
	if _, err := rand.Read(uuid[:]); err != nil {
		return nil, fmt.Errorf("read random bytes: %w", err)
	}
	uuid[6] = uuid[6]&0x0f | 0x40 // version 4
	uuid[8] = uuid[8]&0x3f | 0x80 // RFC 4122 variant
	doc := fmt.Sprintf(`<filterbinding><owner><name>%s</name><uuid>%s</uuid></owner>`+
		`<portdev name='%s'/><mac address='%s'/>`+
		`<filterref filter='%s'><parameter name='IP' value='%s'/></filterref></filterbinding>`,
		g.Name, compiler.FormatUUID(uuid), g.Tap.Name, g.MAC, demoFilter, g.IP)
	return compiler.ParseBinding([]byte(doc), g.Name)
}

// unload detaches the guests and removes the pins and the state.
func (r *demoRun) unload(pinDir, stateDir string) error {
	var errs []error
	if r.sess != nil {
		for _, g := range r.net.Guests {
			err := r.net.Host.Do(func() error { return r.sess.Detach(g.Tap.Name) })
			if err != nil && !errors.Is(err, loader.ErrNotAttached) {
				errs = append(errs, fmt.Errorf("detach %s: %w", g.Tap.Name, err))
			}
		}
		errs = append(errs, r.sess.Close())
	}
	if err := os.RemoveAll(pinDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove pins %s: %w", pinDir, err))
	}
	if err := os.RemoveAll(stateDir); err != nil {
		errs = append(errs, fmt.Errorf("remove state dir %s: %w", stateDir, err))
	}
	return errors.Join(errs...)
}

// probe is one frame a guest sends, and how to see whether it arrived.
type probe struct {
	legit bool
	from  *sandbox.Guest
	what  string
	frame []byte
	// observe waits for the frame's effect and says whether it was
	// delivered, with details for the transcript. Details may name a
	// failed expectation beyond delivery (a reply not NATed, say).
	observe func(r *demoRun, wait time.Duration) (delivered bool, detail string, bad string, err error)
}

// probes sends the demo's probes and prints their outcomes. Under
// enforce, the classifier's counters say which rule decided.
func (r *demoRun) probes(enforce bool) error {
	n := r.net
	g1, g2 := n.Guests[0], n.Guests[1]
	spoofIP := net.IPv4(192, 168, 122, 99).To4()
	spoofMAC := net.HardwareAddr{0x52, 0x54, 0x00, 0xde, 0xad, 0x01}
	zero := net.HardwareAddr{0, 0, 0, 0, 0, 0}
	sport := func() uint16 { r.seq++; return uint16(40000 + r.seq) }

	var ps []probe
	ps = append(ps, probe{
		legit: true, from: g1,
		what:  fmt.Sprintf("%s → host: ARP who-has %s tell %s", g1.Name, sandbox.GatewayIP, g1.IP),
		frame: arpFrame(layers.ARPRequest, g1.MAC, layers.EthernetBroadcast, g1.MAC, g1.IP, zero, sandbox.GatewayIP),
		observe: func(r *demoRun, wait time.Duration) (bool, string, string, error) {
			mac, err := awaitARPReply(r.ctx, g1.Tap, sandbox.GatewayIP, g1.IP, wait)
			if mac == nil || err != nil {
				return false, "", "", err
			}
			return true, fmt.Sprintf("answered: %s is-at %s", sandbox.GatewayIP, mac), "", nil
		},
	})
	ps = append(ps, r.serverProbe(true, g1, g1.MAC, g1.IP, sport(),
		fmt.Sprintf("%s → upstream: UDP %s → %s:%d through the NAT", g1.Name, g1.IP, sandbox.ServerIP, sandbox.ServerPort)))
	p, err := r.tapProbe(true, g1, g2, g1.MAC, g1.IP, sport(),
		fmt.Sprintf("%s → %s: UDP %s → %s", g1.Name, g2.Name, g1.IP, g2.IP))
	if err != nil {
		return err
	}
	ps = append(ps, p)
	ps = append(ps, r.serverProbe(false, g1, g1.MAC, spoofIP, sport(),
		fmt.Sprintf("%s → upstream: UDP from spoofed source IP %s", g1.Name, spoofIP)))
	ps = append(ps, r.serverProbe(false, g1, spoofMAC, g1.IP, sport(),
		fmt.Sprintf("%s → upstream: UDP from spoofed source MAC %s", g1.Name, spoofMAC)))
	ps = append(ps, probe{
		legit: false, from: g1,
		what:  fmt.Sprintf("%s → all: ARP spoofing, gratuitous reply %q", g1.Name, fmt.Sprintf("%s is-at %s", sandbox.GatewayIP, g1.MAC)),
		frame: arpFrame(layers.ARPReply, g1.MAC, layers.EthernetBroadcast, g1.MAC, sandbox.GatewayIP, layers.EthernetBroadcast, sandbox.GatewayIP),
	})
	last := &ps[len(ps)-1]
	last.observe = func(r *demoRun, wait time.Duration) (bool, string, string, error) {
		ok, err := awaitFrame(r.ctx, g2.Tap, last.frame, wait)
		return ok, "seen by " + g2.Name, "", err
	}
	p, err = r.tapProbe(false, g1, g2, g1.MAC, sandbox.GatewayIP, sport(),
		fmt.Sprintf("%s → %s: UDP claiming to come from the gateway %s", g1.Name, g2.Name, sandbox.GatewayIP))
	if err != nil {
		return err
	}
	ps = append(ps, p)

	for i, p := range ps {
		if err := r.ctx.Err(); err != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		if err := r.runProbe(i+1, p, enforce); err != nil {
			return err
		}
	}
	return nil
}

// serverProbe is a UDP datagram from a guest to the upstream echo server,
// through the NAT. Delivered means the server got it; a legitimate one
// must also arrive masqueraded and its echo must come back to the guest.
func (r *demoRun) serverProbe(legit bool, g *sandbox.Guest, smac net.HardwareAddr, sip net.IP, sport uint16, what string) probe {
	payload := nonce(what)
	frame := udpFrame(smac, r.net.BridgeMAC, sip, sandbox.ServerIP, sport, sandbox.ServerPort, payload)
	return probe{legit: legit, from: g, what: what, frame: frame,
		observe: func(r *demoRun, wait time.Duration) (bool, string, string, error) {
			from, err := awaitServer(r.ctx, r.net.Server, payload, wait)
			if from == nil || err != nil {
				return false, "", "", err
			}
			detail := fmt.Sprintf("server got it from %s", from)
			bad := ""
			if !from.IP.Equal(sandbox.UplinkIP) {
				bad = fmt.Sprintf("server saw source %s, not the NAT's %s", from.IP, sandbox.UplinkIP)
			} else {
				detail += " (masqueraded)"
			}
			if !legit {
				return true, detail, bad, nil
			}
			src, dst, err := awaitEcho(r.ctx, g.Tap, payload, wait)
			if err != nil {
				return true, detail, bad, err
			}
			if src == "" {
				return true, detail, "the echo did not come back to " + g.Name, nil
			}
			return true, detail + "; echo came back as " + src + " → " + dst, bad, nil
		},
	}
}

// tapProbe is a UDP datagram from guest g to guest to, seen on to's tap.
func (r *demoRun) tapProbe(legit bool, g, to *sandbox.Guest, smac net.HardwareAddr, sip net.IP, sport uint16, what string) (probe, error) {
	frame := udpFrame(smac, to.MAC, sip, to.IP, sport, 9, nonce(what))
	return probe{legit: legit, from: g, what: what, frame: frame,
		observe: func(r *demoRun, wait time.Duration) (bool, string, string, error) {
			ok, err := awaitFrame(r.ctx, to.Tap, frame, wait)
			return ok, "seen by " + to.Name, "", err
		},
	}, nil
}

// counters is a snapshot of the classifier's rule and drop counters.
type counters struct {
	rules map[string]loader.EntryStatus // by ruleset, dir, stage, index
	drops map[string]uint64             // by stage reason and dir
}

func (r *demoRun) snapshot() (counters, error) {
	c := counters{rules: map[string]loader.EntryStatus{}, drops: map[string]uint64{}}
	var devs []loader.DeviceStatus
	var drops []loader.DropStatus
	err := r.net.Host.Do(func() error {
		var err error
		devs, drops, err = r.sess.Status()
		return err
	})
	if err != nil {
		return c, fmt.Errorf("read counters: %w", err)
	}
	for _, d := range devs {
		for _, e := range d.Rules {
			c.rules[fmt.Sprintf("%d %s %s %3d", d.Binding.Ruleset, e.Dir, e.Stage, e.Index)] = e
		}
	}
	for _, d := range drops {
		c.drops[d.Reason+"/"+d.Dir] = d.Packets
	}
	return c, nil
}

// decided lists the entries that decided frames between before and
// after (terminal actions and chain ends of the root chain whose counters
// moved), and the drop counters that moved.
func decided(before, after counters) (rules []string, drops []string, dropped uint64) {
	keys := make([]string, 0, len(after.rules))
	for k := range after.rules {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	seen := map[string]bool{}
	for _, k := range keys {
		e := after.rules[k]
		delta := e.Packets - before.rules[k].Packets
		terminal := e.Action == "accept" || e.Action == "drop" || e.Action == "reject" || (e.Kind == "end" && e.Chain == "root")
		if delta == 0 || !terminal {
			continue
		}
		what := e.Action + " " + e.Filter
		if e.Filter != "" && e.Rule >= 0 {
			what = fmt.Sprintf("%s %s#%d (prio %d)", e.Action, e.Filter, e.Rule, e.Priority)
		} else if e.Kind == "end" {
			what = "end of root chain: accept"
		}
		line := fmt.Sprintf("%s %s #%d %s +%d", e.Dir, e.Stage, e.Index, what, delta)
		if !seen[line] { // guests sharing a ruleset share its counters
			seen[line] = true
			rules = append(rules, line)
		}
	}
	for k, v := range after.drops {
		if delta := v - before.drops[k]; delta > 0 {
			drops = append(drops, fmt.Sprintf("%s +%d", k, delta))
			dropped += delta
		}
	}
	slices.Sort(drops)
	return rules, drops, dropped
}

// runProbe sends one probe, observes it and prints the outcome; under
// enforce with the classifier's counters.
func (r *demoRun) runProbe(i int, p probe, enforce bool) error {
	for _, g := range r.net.Guests {
		if err := g.Tap.Drain(); err != nil {
			return err
		}
	}
	drainServer(r.net.Server)
	var before counters
	if enforce {
		var err error
		if before, err = r.snapshot(); err != nil {
			return err
		}
	}
	if err := p.from.Tap.Send(p.frame); err != nil {
		return err
	}
	// A legitimate frame is waited for; a spoofed one only as long as a
	// delivered frame would take (much longer than that, in fact).
	wait := deliverWait
	if enforce && !p.legit {
		wait = dropWait
	}
	delivered, detail, bad, err := p.observe(r, wait)
	if err != nil {
		return err
	}
	kind := "legit"
	if !p.legit {
		kind = "spoof"
	}
	outcome := "dropped"
	if delivered {
		outcome = "delivered"
	}
	want := p.legit || !enforce
	var fails []string
	if delivered != want {
		wantS := "dropped"
		if want {
			wantS = "delivered"
		}
		fails = append(fails, fmt.Sprintf("%s, want %s", outcome, wantS))
	}
	if bad != "" {
		fails = append(fails, bad)
	}
	var rules, drops []string
	if enforce {
		after, err := r.snapshot()
		if err != nil {
			return err
		}
		var dropped uint64
		rules, drops, dropped = decided(before, after)
		if !p.legit && dropped == 0 {
			fails = append(fails, "the classifier counted no drop")
		}
	}
	mark := "ok  "
	if len(fails) > 0 {
		mark = "FAIL"
		phase := "without nwbpf"
		if enforce {
			phase = "with nwbpf"
		}
		r.fails = append(r.fails, fmt.Sprintf("%s probe %d (%s): %s", phase, i, p.what, strings.Join(fails, ", ")))
	}
	fmt.Fprintf(r.w, "  %s %d %s %-9s %s\n", mark, i, kind, outcome, p.what)
	if delivered && detail != "" {
		fmt.Fprintf(r.w, "               %s\n", detail)
	}
	for _, l := range rules {
		fmt.Fprintf(r.w, "               nwbpf rule: %s\n", l)
	}
	if len(drops) > 0 {
		fmt.Fprintf(r.w, "               nwbpf drop counter: %s\n", strings.Join(drops, ", "))
	}
	for _, f := range fails {
		fmt.Fprintf(r.w, "               FAILED: %s\n", f)
	}
	return nil
}

// status prints what `nwbpf status` would, restricted to the entries
// that counted frames, and the NAT's counters.
func (r *demoRun) status() error {
	var devs []loader.DeviceStatus
	var drops []loader.DropStatus
	err := r.net.Host.Do(func() error {
		var err error
		devs, drops, err = r.sess.Status()
		return err
	})
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	fmt.Fprintln(r.w, "\nCounters (nwbpf status, entries that counted frames):")
	var b bytes.Buffer
	shown := map[uint32]string{}
	for _, d := range devs {
		if !d.Present || d.Hooks != [2]bool{true, true} || !d.Bound {
			r.fails = append(r.fails, fmt.Sprintf("status: %s present %v, hooks %v, bound %v", d.Name, d.Present, d.Hooks, d.Bound))
		}
		if first, ok := shown[d.Binding.Ruleset]; ok {
			d.Rules = nil
			if err := writeStatus(&b, []loader.DeviceStatus{d}, nil); err != nil {
				return err
			}
			fmt.Fprintf(&b, "  same filter tree as %s: the entries and counters above are this device's too\n", first)
			continue
		}
		shown[d.Binding.Ruleset] = d.Name
		var used []loader.EntryStatus
		for _, e := range d.Rules {
			if e.Packets > 0 {
				used = append(used, e)
			}
		}
		d.Rules = used
		if err := writeStatus(&b, []loader.DeviceStatus{d}, nil); err != nil {
			return err
		}
	}
	var dropLines []string
	for _, d := range drops {
		if d.Packets > 0 || d.ShadowPackets > 0 {
			dropLines = append(dropLines, fmt.Sprintf("  %-10s %-3s %d pkts %d bytes (shadow %d pkts %d bytes)", d.Reason, d.Dir, d.Packets, d.Bytes, d.ShadowPackets, d.ShadowBytes))
		}
	}
	if len(dropLines) > 0 {
		fmt.Fprintf(&b, "drops (all devices):\n%s\n", strings.Join(dropLines, "\n"))
	}
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		fmt.Fprintln(r.w, "  "+line)
	}
	cs, err := r.net.NftCounters()
	if err != nil {
		return err
	}
	if len(cs) == 3 {
		fmt.Fprintf(r.w, "\nNAT (nft table ip %s in %s): masquerade rule matched %d packets (new connections)\n", sandbox.NftTable, r.net.Host.Name, cs[2])
	}
	return nil
}

// ---- Frames ----

// nonce returns a payload unique to one probe.
func nonce(what string) []byte {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Appendf(nil, "nwbpf demo %x %.20s", b, what)
}

// serialize builds a frame, fixing lengths and checksums.
func serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		// Only a programming error in the layers above gets here.
		panic(fmt.Sprintf("serialize frame: %v", err))
	}
	return bytes.Clone(buf.Bytes())
}

// udpFrame is a UDP datagram from (smac, sip) to (dmac, dip).
func udpFrame(smac, dmac net.HardwareAddr, sip, dip net.IP, sport, dport uint16, payload []byte) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: sip.To4(), DstIP: dip.To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	_ = udp.SetNetworkLayerForChecksum(ip)
	return serialize(&layers.Ethernet{SrcMAC: smac, DstMAC: dmac, EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload(payload))
}

// arpFrame is an ARP packet in an Ethernet frame from esrc to edst.
func arpFrame(op uint16, esrc, edst, sha net.HardwareAddr, spa net.IP, tha net.HardwareAddr, tpa net.IP) []byte {
	return serialize(
		&layers.Ethernet{SrcMAC: esrc, DstMAC: edst, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: op, SourceHwAddress: sha, SourceProtAddress: spa.To4(), DstHwAddress: tha, DstProtAddress: tpa.To4(),
		})
}

// awaitTap reads frames delivered to tap until match returns true
// (reported as true) or wait has passed (false).
func awaitTap(ctx context.Context, tap *sandbox.Tap, wait time.Duration, match func([]byte) bool) (bool, error) {
	deadline := time.Now().Add(wait)
	for {
		left := min(time.Until(deadline), 100*time.Millisecond)
		if left <= 0 {
			return false, nil
		}
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("interrupted: %w", err)
		}
		f, err := tap.Recv(left)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return false, err
		}
		if match(f) {
			return true, nil
		}
	}
}

// awaitFrame waits for sent to be delivered to tap, possibly with its
// Ethernet padding trimmed.
func awaitFrame(ctx context.Context, tap *sandbox.Tap, sent []byte, wait time.Duration) (bool, error) {
	return awaitTap(ctx, tap, wait, func(f []byte) bool {
		return bytes.Equal(f, sent) || (len(f) >= 42 && len(f) < len(sent) && bytes.Equal(f, sent[:len(f)]))
	})
}

// awaitARPReply waits for an ARP reply from spa to tpa on tap and returns
// the MAC it announces, or nil.
func awaitARPReply(ctx context.Context, tap *sandbox.Tap, spa, tpa net.IP, wait time.Duration) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	_, err := awaitTap(ctx, tap, wait, func(f []byte) bool {
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.NoCopy)
		a, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
		if !ok || a.Operation != layers.ARPReply || !net.IP(a.SourceProtAddress).Equal(spa) || !net.IP(a.DstProtAddress).Equal(tpa) {
			return false
		}
		mac = bytes.Clone(a.SourceHwAddress)
		return true
	})
	return mac, err
}

// awaitEcho waits for the echo of payload on tap and returns its source
// and destination ("ip:port"), or empty strings.
func awaitEcho(ctx context.Context, tap *sandbox.Tap, payload []byte, wait time.Duration) (src, dst string, err error) {
	_, err = awaitTap(ctx, tap, wait, func(f []byte) bool {
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.NoCopy)
		ip, ok1 := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udp, ok2 := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok1 || !ok2 || !bytes.Equal(udp.Payload, payload) {
			return false
		}
		src = fmt.Sprintf("%s:%d", ip.SrcIP, udp.SrcPort)
		dst = fmt.Sprintf("%s:%d", ip.DstIP, udp.DstPort)
		return true
	})
	return src, dst, err
}

// awaitServer waits for the echo server to receive payload and returns
// the source it saw, or nil.
func awaitServer(ctx context.Context, s *sandbox.EchoServer, payload []byte, wait time.Duration) (*net.UDPAddr, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case d := <-s.Received:
			if bytes.Equal(d.Payload, payload) {
				return d.From, nil
			}
		case <-timer.C:
			return nil, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("interrupted: %w", ctx.Err())
		}
	}
}

// drainServer forgets what the server received so far.
func drainServer(s *sandbox.EchoServer) {
	for {
		select {
		case <-s.Received:
		default:
			return
		}
	}
}
