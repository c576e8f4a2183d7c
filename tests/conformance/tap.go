// SPDX-License-Identifier: Apache-2.0

package conformance

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/loader"
	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// groupFwdMask makes the verdicter's bridge forward the link-local
// 01:80:c2:00:00:0X frames the oracle's bridge forwards (tests/libvirtref).
const groupFwdMask = 0xfff8

// TapVerdicter answers with the classifier attached, through loader.Attach,
// to a real tap the harness plays the VM on:
//
//	VM (test) ══fd══ tap ──┐
//	                       ├── bridge (STP, learning and bridge netfilter off)
//	                 veth ─┘         private namespace
//	                   │ peer, in a second namespace, with the Peer MAC
//	                AF_PACKET sink
//
// An out frame is written on the tap fd and is delivered when the very same
// frame (or its Defragmented form) reaches the sink; an in frame is sent by
// the sink and must reach the tap fd. The kernel's own path runs on the
// way: the tap's receive path (eth_type_trans, skb_vlan_untag: the
// classifier sees a tag in skb metadata, not in the frame), the bridge,
// the veth. The bridge mirrors the oracle's: no learning (every unicast
// frame is flooded to the other port, so no earlier frame changes where a
// frame goes), link-local group frames forwarded, and the sink's MAC is
// the oracle sink's, so frames for the peer arrive as they do there.
// Bridge netfilter is off in the namespace: nothing but the classifier
// filters.
//
// A frame the classifier drops is counted in its drop statistics
// (nwf_drop_stats), so it is known dropped at once; any other frame is
// awaited for Timeout. A frame that neither arrives nor was dropped by the
// classifier is lost on the kernel's path: its case is replayed from empty
// connection state and the frame awaited for Confirm before it counts as
// dropped (Lost records it).
type TapVerdicter struct {
	// Timeout bounds the wait for a frame the classifier did not drop.
	Timeout time.Duration
	// Confirm is the longer wait of the re-check of a lost frame.
	Confirm time.Duration
	// Lost describes every frame that the classifier passed and that did
	// not arrive, after confirmation: drops of the kernel's path, which
	// the BPF_PROG_TEST_RUN verdicter cannot see.
	Lost []string

	classifier
	drops   *ebpf.Map
	tap     *netenv.Tap
	sink    *netenv.Sink
	ifindex uint32
	outHook maps.Hook
}

// NewTapVerdicter builds the topology, loads the classifier with its pins
// in a private directory and attaches it to the tap; everything is removed
// in t.Cleanup. peer is the MAC the corpus gives the far end of the bridge
// (Net.Peer). An error wrapping ebpf.ErrNotSupported says the kernel cannot
// load or attach the classifier.
func NewTapVerdicter(t testing.TB, peer net.HardwareAddr) (*TapVerdicter, error) {
	t.Helper()
	a, b := netenv.NewNS(t), netenv.NewNS(t)
	err := a.Do(func() error {
		for _, key := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"} {
			err := os.WriteFile(filepath.Join("/proc/sys/net/bridge", key), []byte("0"), 0o644)
			if err != nil && !errors.Is(err, fs.ErrNotExist) { // no br_netfilter: nothing to turn off
				return fmt.Errorf("set net.bridge.%s=0: %w", key, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("netns %s: %v", a, err)
	}
	br := a.AddBridge(t)
	mask := uint16(groupFwdMask)
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.Index = br.Name, br.Index
	if err := a.Handle.LinkModify(&netlink.Bridge{LinkAttrs: attrs, GroupFwdMask: &mask}); err != nil {
		t.Fatalf("bridge %s: set group_fwd_mask: %v", br.Name, err)
	}
	tap := a.AddTap(t)
	port, remote := a.AddVeth(t, b)
	for _, l := range []netlink.Link{a.Link(t, tap.Name), port} {
		a.Attach(t, l, br)
		if err := a.Handle.LinkSetLearning(l, false); err != nil {
			t.Fatalf("bridge port %s: learning off: %v", l.Attrs().Name, err)
		}
	}
	if err := b.Handle.LinkSetHardwareAddr(remote, peer); err != nil {
		t.Fatalf("veth %s: set MAC %s: %v", remote.Attrs().Name, peer, err)
	}
	sink := netenv.NewSink(t, b, b.Link(t, remote.Attrs().Name))

	dir := filepath.Join(privtest.BPFFS, netenv.Name("nwbpft"))
	l, err := loader.Load(loader.Options{PinDir: dir})
	if err != nil {
		return nil, fmt.Errorf("load classifier: %w", err)
	}
	t.Cleanup(func() {
		if err := closeLoader(l); err != nil {
			t.Error(err)
		}
	})
	var att *loader.Attachment
	err = a.Do(func() (err error) {
		att, err = l.Attach(tap.Name, loader.AttachOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", tap.Name, err)
	}
	t.Cleanup(func() {
		if err := a.Do(func() error { return l.Detach(tap.Name) }); err != nil {
			t.Error(err)
		}
	})
	if att.Method != loader.MethodTCX {
		return nil, fmt.Errorf("attach to %s: through %s, want TCX: %w", tap.Name, att.Method, ebpf.ErrNotSupported)
	}
	store, err := maps.NewStore(l.Maps(), maps.Options{})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &TapVerdicter{
		Timeout:    25 * time.Millisecond,
		Confirm:    300 * time.Millisecond,
		classifier: classifier{l: l, store: store},
		drops:      l.Map("nwf_drop_stats"),
		tap:        tap, sink: sink,
		ifindex: uint32(att.Ifindex), outHook: att.OutHook,
	}, nil
}

// Name implements Verdicter.
func (v *TapVerdicter) Name() string { return "tap" }

// TracksConnections implements Tracker: the attached classifier's
// conntrack-lite follows each case's frames.
func (v *TapVerdicter) TracksConnections() bool { return true }

// Verdicts implements Verdicter: it binds prog and inst to the tap
// (replacing the previous binding) and sends every frame, flushing the
// classifier's connection table before each case.
func (v *TapVerdicter) Verdicts(prog *compiler.Program, inst compiler.Instances, cases [][]Frame) ([][]bool, error) {
	return v.run(v.ifindex, v.outHook, prog, inst, cases, func(frames []Frame, i int) (bool, error) {
		f := frames[i]
		ok, shot, err := v.send(f, v.Timeout)
		if err != nil || ok || shot || v.Confirm <= 0 {
			return ok, err
		}
		if ok, shot, err = v.confirm(frames[:i], f); err != nil {
			return false, fmt.Errorf("confirm: %w", err)
		}
		if !ok && !shot {
			v.Lost = append(v.Lost, fmt.Sprintf("%s: %s", prog.Filter, f.Spec))
		}
		return ok, nil
	})
}

// confirm replays before from empty connection state, then sends f and
// awaits it for Confirm.
func (v *TapVerdicter) confirm(before []Frame, f Frame) (delivered, shot bool, err error) {
	if err := v.l.FlushConntrack(); err != nil {
		return false, false, fmt.Errorf("flush connections: %w", err)
	}
	for _, p := range before {
		if _, _, err := v.send(p, v.Timeout); err != nil {
			return false, false, err
		}
	}
	return v.send(f, v.Confirm)
}

// send sends f in its direction and reports whether it arrived within
// timeout, or else whether the classifier dropped it.
func (v *TapVerdicter) send(f Frame, timeout time.Duration) (delivered, shot bool, err error) {
	var from, to netenv.Endpoint = v.tap, v.sink
	if f.Dir() == maps.DirIn {
		from, to = v.sink, v.tap
	}
	if err := netenv.Drain(to); err != nil {
		return false, false, err
	}
	before, err := v.dropped()
	if err != nil {
		return false, false, err
	}
	if err := from.Send(f.Data); err != nil {
		return false, false, err
	}
	// A tap write runs the tap's receive path, TC ingress included,
	// before it returns, and a sink's send mostly runs the bridge and the
	// tap's TC egress before it returns: a drop is mostly counted by now.
	if n, err := v.dropped(); err != nil || n != before {
		return false, n != before, err
	}
	if ok, err := await(to, f.Data, timeout); err != nil || ok {
		return ok, false, err
	}
	n, err := v.dropped()
	return false, n != before, err
}

// dropped returns the number of frames the classifier has dropped, for any
// reason and in either direction, summed over CPUs.
func (v *TapVerdicter) dropped() (uint64, error) {
	var sum uint64
	for r := range maps.DropReasonMax {
		for _, d := range []maps.Dir{maps.DirIn, maps.DirOut} {
			var cs []maps.DropCount
			if err := v.drops.Lookup(maps.DropStatsKey(r, d), &cs); err != nil {
				return 0, fmt.Errorf("read nwf_drop_stats: %w", err)
			}
			for _, c := range cs {
				sum += c.Packets
			}
		}
	}
	return sum, nil
}

// await reads frames from ep until frame, or the form bridge netfilter's
// defragmentation gives it (Defragmented), arrives and reports true, or
// reports false once timeout has passed. Other frames are discarded.
func await(ep netenv.Endpoint, frame []byte, timeout time.Duration) (bool, error) {
	alt := Defragmented(frame)
	deadline := time.Now().Add(timeout)
	for left := timeout; left > 0; left = time.Until(deadline) {
		got, err := ep.Recv(left)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if netenv.FrameMatches(frame, got) || (alt != nil && netenv.FrameMatches(alt, got)) {
			return true, nil
		}
	}
	return false, nil
}
