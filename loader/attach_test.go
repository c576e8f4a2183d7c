// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// guest is a tap or macvtap in a fresh namespace played by the test, with a
// sink on the other side: a bridge port for the tap, the macvtap's lower
// veth's peer for the macvtap.
type guest struct {
	ns   *netenv.NS
	tap  *netenv.Tap
	sink *netenv.Sink
}

func newGuest(t *testing.T, macvtap bool) *guest {
	t.Helper()
	ns := netenv.NewNS(t)
	g := &guest{ns: ns}
	local, remote := ns.AddVeth(t, ns)
	if macvtap {
		g.tap = ns.AddMacvtap(t, local, netlink.MACVLAN_MODE_BRIDGE)
	} else {
		br := ns.AddBridge(t)
		g.tap = ns.AddTap(t)
		ns.Attach(t, ns.Link(t, g.tap.Name), br)
		ns.Attach(t, local, br)
	}
	g.sink = netenv.NewSink(t, ns, remote)
	return g
}

// broadcastUDP is a UDP frame to the broadcast address, dport 9, which any
// bridge or macvtap floods to the other side.
func broadcastUDP(t *testing.T, src net.HardwareAddr) []byte {
	e := eth(layers.EthernetTypeIPv4)
	e.SrcMAC, e.DstMAC = src, layers.EthernetBroadcast
	return frame(t, e, ip4(layers.IPProtocolUDP), udp(7, 9), payload(32))
}

func attachIn(t *testing.T, ns *netenv.NS, l *Loader, dev string, opts AttachOptions) *Attachment {
	t.Helper()
	var a *Attachment
	err := ns.Do(func() error {
		var err error
		a, err = l.Attach(dev, opts)
		return err
	})
	if err != nil {
		t.Fatalf("attach %s: %v", dev, err)
	}
	return a
}

func detachIn(t *testing.T, ns *netenv.NS, l *Loader, dev string) {
	t.Helper()
	if err := ns.Do(func() error { return l.Detach(dev) }); err != nil {
		t.Fatalf("detach %s: %v", dev, err)
	}
}

// TestAttachDirections proves DESIGN.md's direction table with the real
// classifier on real devices, through both attach methods: the frames a
// tap's or macvtap's guest sends are "out", the frames to it "in", and
// drops in either direction stop delivery.
func TestAttachDirections(t *testing.T) {
	l, store := testLoader(t)
	for _, tc := range []struct {
		name    string
		macvtap bool
		opts    AttachOptions
		hook    maps.Hook
		method  Method
	}{
		{"tap tcx", false, AttachOptions{}, maps.HookIngress, MethodTCX},
		{"tap clsact", false, AttachOptions{ForceClsact: true}, maps.HookIngress, MethodClsact},
		{"macvtap tcx", true, AttachOptions{}, maps.HookEgress, MethodTCX},
		{"macvtap clsact", true, AttachOptions{ForceClsact: true}, maps.HookEgress, MethodClsact},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGuest(t, tc.macvtap)
			a := attachIn(t, g.ns, l, g.tap.Name, tc.opts)
			t.Cleanup(func() { detachIn(t, g.ns, l, g.tap.Name) })
			wantKind := map[bool]string{false: "tuntap", true: "macvtap"}[tc.macvtap]
			if a.OutHook != tc.hook || a.Method != tc.method || a.Kind != wantKind || a.Ifindex != g.tap.Index {
				t.Fatalf("attachment %+v, want out hook %d, method %s, kind %s", a, tc.hook, tc.method, wantKind)
			}
			toVM := broadcastUDP(t, g.sink.MAC)
			fromVM := broadcastUDP(t, macVM)
			isDiscard := eq(maps.FDport, 9)
			bind := func(outAct, inAct maps.Action) {
				t.Helper()
				var s [2][2][]maps.Rule
				s[maps.DirOut][maps.StageL2] = []maps.Rule{match(outAct, isDiscard)}
				s[maps.DirIn][maps.StageL2] = []maps.Rule{match(inAct, isDiscard)}
				if err := store.Bind(uint32(a.Ifindex), maps.BindRequest{OutHook: a.OutHook, Stages: s}); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() { _ = store.Unbind(uint32(a.Ifindex)) })
			counts := func() (out, in uint64) {
				b, _ := store.Binding(uint32(a.Ifindex))
				rs, _ := store.Ruleset(b.Ruleset)
				return ruleCount(t, l, rs.Start[maps.DirOut][maps.StageL2]).Packets,
					ruleCount(t, l, rs.Start[maps.DirIn][maps.StageL2]).Packets
			}
			deliver := func(from, to netenv.Endpoint, f []byte) bool {
				t.Helper()
				if err := netenv.Drain(to); err != nil {
					t.Fatal(err)
				}
				if err := from.Send(f); err != nil {
					t.Fatal(err)
				}
				ok, err := netenv.Await(to, f, 300*time.Millisecond)
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}

			bind(maps.ActContinue, maps.ActContinue)
			if !deliver(g.tap, g.sink, fromVM) {
				t.Errorf("frame from the VM not delivered")
			}
			if out, in := counts(); out != 1 || in != 0 {
				t.Errorf("frame from the VM counted out %d, in %d; want 1, 0", out, in)
			}
			if !deliver(g.sink, g.tap, toVM) {
				t.Errorf("frame to the VM not delivered")
			}
			if out, in := counts(); out != 1 || in != 1 {
				t.Errorf("frame to the VM counted out %d, in %d; want 1, 1", out, in)
			}

			bind(maps.ActDrop, maps.ActAccept)
			if deliver(g.tap, g.sink, fromVM) {
				t.Errorf("out drop: frame from the VM delivered")
			}
			if !deliver(g.sink, g.tap, toVM) {
				t.Errorf("out drop: frame to the VM not delivered")
			}
			bind(maps.ActAccept, maps.ActDrop)
			if !deliver(g.tap, g.sink, fromVM) {
				t.Errorf("in drop: frame from the VM not delivered")
			}
			if deliver(g.sink, g.tap, toVM) {
				t.Errorf("in drop: frame to the VM delivered")
			}
		})
	}
}

// tcxLinks returns the programs attached through TCX at the device's hook,
// queried in the device's namespace.
func tcxCount(t *testing.T, ns *netenv.NS, ifindex int, at ebpf.AttachType) int {
	t.Helper()
	var n int
	err := ns.Do(func() error {
		res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: at})
		if err != nil {
			return err
		}
		n = len(res.Programs)
		return nil
	})
	if err != nil {
		t.Fatalf("query tcx programs: %v", err)
	}
	return n
}

// clsactState returns the number of nwbpf filters and other filters on the
// device's two hooks, and whether it has a clsact qdisc.
func clsactState(t *testing.T, ns *netenv.NS, ifindex int) (ours, others int, qdisc bool) {
	t.Helper()
	lk := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}
	qds, err := ns.Handle.QdiscList(lk)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qds {
		qdisc = qdisc || q.Type() == "clsact"
	}
	if !qdisc {
		return 0, 0, false
	}
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		fs, err := ns.Handle.FilterList(lk, parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if isOurs(f) {
				ours++
			} else {
				others++
			}
		}
	}
	return ours, others, qdisc
}

// TestAttachIdempotent attaches twice with each method, switches methods,
// and detaches, checking the kernel's view after every step.
func TestAttachIdempotent(t *testing.T) {
	l, _ := testLoader(t)
	ns := netenv.NewNS(t)
	tap := ns.AddTap(t)
	pinIn := filepath.Join(l.PinDir(), "links", tap.Name, "ingress")
	state := func(step string, tcx, cls int) {
		t.Helper()
		gotIn := tcxCount(t, ns, tap.Index, ebpf.AttachTCXIngress)
		gotEg := tcxCount(t, ns, tap.Index, ebpf.AttachTCXEgress)
		ours, _, _ := clsactState(t, ns, tap.Index)
		if gotIn != tcx || gotEg != tcx || ours != cls {
			t.Errorf("%s: tcx programs %d/%d, cls_bpf filters %d; want %d/%d, %d", step, gotIn, gotEg, ours, tcx, tcx, cls)
		}
		_, err := os.Stat(pinIn)
		if pinned := err == nil; pinned != (tcx == 1) {
			t.Errorf("%s: link pinned %v, want %v", step, pinned, tcx == 1)
		}
	}
	attachIn(t, ns, l, tap.Name, AttachOptions{})
	state("tcx", 1, 0)
	attachIn(t, ns, l, tap.Name, AttachOptions{})
	state("tcx again", 1, 0)
	attachIn(t, ns, l, tap.Name, AttachOptions{ForceClsact: true})
	state("clsact", 0, 2)
	attachIn(t, ns, l, tap.Name, AttachOptions{ForceClsact: true})
	state("clsact again", 0, 2)
	attachIn(t, ns, l, tap.Name, AttachOptions{})
	state("back to tcx", 1, 0)
	if _, _, qdisc := clsactState(t, ns, tap.Index); qdisc {
		t.Errorf("clsact qdisc left after leaving clsact")
	}
	detachIn(t, ns, l, tap.Name)
	state("detached", 0, 0)
	detachIn(t, ns, l, tap.Name)
	state("detached again", 0, 0)
}

// TestAttachKeepsOthers checks that detach removes only nwbpf's filters and
// leaves another user's filter and the clsact qdisc it needs.
func TestAttachKeepsOthers(t *testing.T) {
	l, _ := testLoader(t)
	ns := netenv.NewNS(t)
	tap := ns.AddTap(t)
	attachIn(t, ns, l, tap.Name, AttachOptions{ForceClsact: true})
	foreign := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: tap.Index, Parent: netlink.HANDLE_MIN_INGRESS,
			Handle: 0x42, Priority: 7, Protocol: unix.ETH_P_ALL},
		Fd: l.EmptyProgram().FD(), Name: "foreign", DirectAction: true,
	}
	if err := ns.Handle.FilterAdd(foreign); err != nil {
		t.Fatal(err)
	}
	detachIn(t, ns, l, tap.Name)
	ours, others, qdisc := clsactState(t, ns, tap.Index)
	if ours != 0 || others != 1 || !qdisc {
		t.Errorf("after detach: ours %d, others %d, clsact %v; want 0, 1, true", ours, others, qdisc)
	}
}

// TestAttachVanishedDevice checks the errors for a device that does not
// exist, or goes away while attached.
func TestAttachVanishedDevice(t *testing.T) {
	l, _ := testLoader(t)
	ns := netenv.NewNS(t)
	err := ns.Do(func() error {
		_, err := l.Attach(netenv.Name("nwgone"), AttachOptions{})
		return err
	})
	if !errors.Is(err, ErrNoDevice) {
		t.Errorf("attach to a missing device: %v, want ErrNoDevice", err)
	}
	local, _ := ns.AddVeth(t, ns)
	err = ns.Do(func() error {
		_, err := l.Attach(local.Attrs().Name, AttachOptions{})
		return err
	})
	if !errors.Is(err, ErrDeviceType) {
		t.Errorf("attach to a veth: %v, want ErrDeviceType", err)
	}
	a := attachIn(t, ns, l, local.Attrs().Name, AttachOptions{AnyDevice: true})
	if a.OutHook != maps.HookIngress || a.Kind != "veth" {
		t.Errorf("veth with AnyDevice: %+v, want a tap-like ingress out hook", a)
	}
	if err := ns.Handle.LinkDel(local); err != nil {
		t.Fatal(err)
	}
	detachIn(t, ns, l, local.Attrs().Name)
	if _, err := os.Stat(filepath.Join(l.PinDir(), "links", local.Attrs().Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pins of the vanished device left: %v", err)
	}
}

// TestLoadAdoptsPins loads twice into one pin directory: the second load
// adopts the pinned maps (same kernel maps) and replaces the programs.
func TestLoadAdoptsPins(t *testing.T) {
	testLoader(t)
	dir := filepath.Join("/sys/fs/bpf", netenv.Name("nwbpfp"))
	t.Cleanup(func() { os.RemoveAll(dir) })
	a, err := Load(Options{PinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Map("nwf_bindings").Put(uint32(77), &maps.Binding{Ruleset: 5}); err != nil {
		t.Fatal(err)
	}
	b, err := Load(Options{PinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var got maps.Binding
	if err := b.Map("nwf_bindings").Lookup(uint32(77), &got); err != nil || got.Ruleset != 5 {
		t.Errorf("second load sees binding %+v, %v; want the first load's", got, err)
	}
	for _, p := range []string{"maps/nwf_rules", "maps/nwf_bindings", "progs/nwf_ingress", "progs/nwf_egress"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("pin %s: %v", p, err)
		}
	}
	prog, err := ebpf.LoadPinnedProgram(filepath.Join(dir, "progs/nwf_ingress"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	pi, _ := prog.Info()
	bi, _ := b.Program(maps.HookIngress).Info()
	pid, _ := pi.ID()
	bid, _ := bi.ID()
	if pid != bid {
		t.Errorf("pinned program %d, want the second load's %d", pid, bid)
	}
}
