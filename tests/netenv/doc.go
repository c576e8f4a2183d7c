// SPDX-License-Identifier: Apache-2.0

// Package netenv builds throw-away network topologies for end-to-end tests:
// network namespaces, bridges, veth pairs, tap and macvtap devices whose file
// descriptor the test holds (so the test plays the VM), and AF_PACKET sinks
// that send and receive raw Ethernet frames on a link.
//
// Rules every helper follows:
//   - every namespace and device gets a unique name (a random suffix), so
//     tests and test binaries can share one kernel;
//   - everything is removed in t.Cleanup, also when the test fails;
//   - namespace work runs on a locked OS thread that is moved into the
//     namespace and back ([NS.Do]); the test goroutine is never moved, and a
//     thread that cannot be moved back is discarded;
//   - links are configured through a netlink.Handle bound to their namespace;
//   - IPv6 is disabled on every device created here, so the kernel emits no
//     router solicitations or MLD reports that would mix with test frames.
//
// Frames are sent and received through the [Endpoint] interface, which
// [Tap] (tap and macvtap) and [Sink] implement; [Await] waits for one exact
// frame and ignores any other traffic.
//
// Nothing here uses `ip netns exec`: it mounts a fresh /sys, hiding
// /sys/fs/bpf. BPF work belongs in the host mount namespace.
package netenv
