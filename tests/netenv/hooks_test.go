// SPDX-License-Identifier: Apache-2.0

package netenv

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/nwbpf/nwbpf/internal/privtest"
)

// counter is a TC program, attached through TCX, that counts the frames
// its hook sees and lets them pass.
type counter struct {
	m *ebpf.Map
}

// attachCounter attaches a counting program to one hook of the device with
// index ifindex in ns, and detaches it in t.Cleanup.
func attachCounter(t *testing.T, ns *NS, ifindex int, hook ebpf.AttachType) counter {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatalf("create counter map: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SchedCLS,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.FnMapLookupElem.Call(),
			// NULL: the key is out of range, which cannot happen for
			// key 0 of a one-entry array; count nothing.
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R0, -1).WithSymbol("out"), // TCX_NEXT
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("load counter program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	var l link.Link
	// The kernel resolves the ifindex in the caller's namespace.
	err = ns.Do(func() error {
		var err error
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: hook})
		return err
	})
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Skipf("TCX not supported by this kernel: %v", err)
	}
	if err != nil {
		t.Fatalf("attach counter to ifindex %d (%v): %v", ifindex, hook, err)
	}
	t.Cleanup(func() { l.Close() })
	return counter{m}
}

func (c counter) get(t *testing.T) uint64 {
	t.Helper()
	var v uint64
	if err := c.m.Lookup(uint32(0), &v); err != nil {
		t.Fatalf("read counter: %v", err)
	}
	return v
}

// TestHookDirections proves DESIGN.md's direction table with real devices:
// on a tap, TC ingress sees the frames the VM sends and TC egress the frames
// delivered to it; on a macvtap it is the other way round.
func TestHookDirections(t *testing.T) {
	privtest.Require(t)
	const n = 5
	for _, tc := range []struct {
		name    string
		macvtap bool
		// outHook sees frames the VM sends, inHook frames sent to it.
		outHook, inHook ebpf.AttachType
	}{
		{"tap", false, ebpf.AttachTCXIngress, ebpf.AttachTCXEgress},
		{"macvtap", true, ebpf.AttachTCXEgress, ebpf.AttachTCXIngress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a *NS
			var vm *Tap
			var sink *Sink
			guest := RandomMAC(0x52)
			if tc.macvtap {
				var b *NS
				a, b = NewNS(t), NewNS(t)
				lower, peer := a.AddVeth(t, b)
				vm = a.AddMacvtap(t, lower, netlink.MACVLAN_MODE_BRIDGE)
				sink = NewSink(t, b, peer)
				guest = vm.MAC
			} else {
				env := newBridged(t)
				vm, sink = env.tap, env.sink
				a = env.ns
			}
			out := attachCounter(t, a, vm.Index, tc.outHook)
			in := attachCounter(t, a, vm.Index, tc.inHook)

			for range n {
				f := udpFrame(t, guest, sink.MAC, 0)
				if err := vm.Send(f); err != nil {
					t.Fatal(err)
				}
				if ok, err := Await(sink, f, wait); err != nil || !ok {
					t.Fatalf("frame from the VM not delivered (%v)", err)
				}
			}
			if o, i := out.get(t), in.get(t); o != n || i != 0 {
				t.Errorf("after %d frames from the VM: %v saw %d, %v saw %d; want %d and 0", n, tc.outHook, o, tc.inHook, i, n)
			}
			for range n {
				f := udpFrame(t, sink.MAC, guest, 0)
				if err := sink.Send(f); err != nil {
					t.Fatal(err)
				}
				if ok, err := Await(vm, f, wait); err != nil || !ok {
					t.Fatalf("frame to the VM not delivered (%v)", err)
				}
			}
			if o, i := out.get(t), in.get(t); o != n || i != n {
				t.Errorf("after %d frames to the VM: %v saw %d, %v saw %d; want %d and %d", n, tc.outHook, o, tc.inHook, i, n, n)
			}
		})
	}
}
