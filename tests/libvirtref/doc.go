// SPDX-License-Identifier: Apache-2.0

// Package libvirtref is the libvirt oracle: it asks the real libvirt
// nwfilter driver (ebtables + iptables, Debian's libvirt-daemon-system)
// whether a frame is delivered, so nwbpf's verdicts can be compared with
// libvirt's frame by frame.
//
// Daemon-level helpers talk to libvirtd through virsh ([URI]): [Ensure]
// starts libvirtd when it is not running, [DefineFilter] / [UndefineFilter]
// manage filters, [Bind] / [Unbind] instantiate a filter on a port with a
// filter binding (no VM needed), [FlushConntrack] empties the kernel's
// connection tracking table.
//
// An [Oracle] is a topology in the host's network namespace, where libvirt
// puts its rules and finds ports by name:
//
//	test ══fd══ tap nwvnt… ──┐
//	 (the VM)                 ├── bridge nwbr… (STP off, learning off)
//	            veth nwv… ────┘
//	               │ peer, in a private namespace
//	            AF_PACKET sink
//
// [Oracle.Send] writes a frame on the tap fd (out: sent by the VM) or sends
// it from the sink (in: sent to the VM) and reports whether the very same
// frame arrives on the other side.
//
// Oracles are serialised across test binaries by a file lock (the
// conntrack flush is host-wide); within one binary, do not hold two Oracles
// from the same goroutine.
package libvirtref
