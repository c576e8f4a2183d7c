// SPDX-License-Identifier: Apache-2.0

// Package netenv builds throw-away network topologies for end-to-end tests:
// network namespaces, bridges, veth pairs, tap and macvtap devices whose file
// descriptor the test holds (so the test plays the VM), and AF_PACKET sinks
// that send and receive raw Ethernet frames on a link.
//
// It is a thin testing.TB layer over internal/sandbox, which does the work
// (and builds `nwbpf demo`'s network): every constructor here calls the
// sandbox one, fails the test on error and removes what it built in
// t.Cleanup, also when the test fails. The types are sandbox's; see there
// for the rules every helper follows (unique names, namespace work on a
// locked OS thread that is moved into the namespace and back, links
// configured through a netlink.Handle bound to their namespace, IPv6 off so
// the kernel sends no router solicitations or MLD reports of its own).
//
// Frames are sent and received through the [Endpoint] interface, which
// [Tap] (tap and macvtap) and [Sink] implement; [Await] waits for one exact
// frame and ignores any other traffic.
//
// Nothing here uses `ip netns exec`: it mounts a fresh /sys, hiding
// /sys/fs/bpf. BPF work belongs in the host mount namespace.
package netenv
