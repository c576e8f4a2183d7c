// SPDX-License-Identifier: Apache-2.0

// Package conntrack holds the end-to-end test of nwbpf's conntrack-lite: a
// tap whose VM the test plays, bridged to a peer namespace with a real
// kernel TCP/IP stack, filtered by libvirt's documented stateful example.
package conntrack
