// SPDX-License-Identifier: Apache-2.0

// Package sandbox builds throw-away network topologies: network
// namespaces, bridges, veth pairs, tap and macvtap devices whose file
// descriptor the caller holds (so the caller plays the VM), AF_PACKET
// sinks that send and receive raw Ethernet frames on a link, nftables
// rulesets and sockets inside a namespace. `nwbpf demo` builds its libvirt
// default network look-alike ([NewNetwork]) from them.
//
// Every constructor returns an error and the object to close, and undoes
// its own partial work on error; [Network.Close] undoes a whole network in
// reverse order, also after a partial setup. tests/netenv is the thin
// testing.TB layer over this package that the end-to-end tests use: the
// same constructors, failing the test on error and closing in t.Cleanup.
//
// Frames are sent and received through the [Endpoint] interface, which
// [Tap] and [Sink] implement; [Await] waits for one exact frame and
// ignores any other traffic.
//
// Rules every helper follows:
//   - every namespace and device gets a unique name (a random suffix), so
//     that a sandbox never touches the machine's own networking or another
//     sandbox;
//   - namespace work runs on a locked OS thread that is moved into the
//     namespace and back ([NS.Do]); the calling goroutine never changes
//     namespace, and a thread that cannot be moved back is discarded;
//   - links are configured through a netlink.Handle bound to their
//     namespace;
//   - IPv6 is disabled in every namespace created here and on every device
//     created here (also in the process's own namespace, [Host]), so the
//     kernel sends no router solicitations or MLD reports of its own.
//
// Nothing here uses `ip netns exec`: it mounts a fresh /sys, hiding
// /sys/fs/bpf, so BPF work and pinning stay in the caller's mount
// namespace.
package sandbox
