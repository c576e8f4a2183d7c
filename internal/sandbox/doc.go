// SPDX-License-Identifier: Apache-2.0

// Package sandbox builds throw-away network topologies outside of tests:
// network namespaces, bridges, veth pairs, tap devices whose file
// descriptor the caller holds (so the caller plays the VM), nftables
// rulesets and sockets inside a namespace. `nwbpf demo` builds its libvirt
// default network look-alike ([NewNetwork]) from them.
//
// It is the non-test counterpart of tests/netenv, which takes a
// testing.TB and cleans up through it; here every constructor returns an
// error and the object to close, and [Network.Close] undoes everything in
// reverse order, also after a partial setup.
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
//   - IPv6 is disabled in every namespace created here, so the kernel sends
//     no router solicitations or MLD reports of its own.
//
// Nothing here uses `ip netns exec`: it mounts a fresh /sys, hiding
// /sys/fs/bpf, so BPF work and pinning stay in the caller's mount
// namespace.
package sandbox
