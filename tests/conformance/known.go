// SPDX-License-Identifier: Apache-2.0

package conformance

// KnownDivergences are the divergences from libvirt the harness expects:
// libvirt (or kernel) bugs nwbpf deliberately does not copy (each pinned by
// a test of nwbpf's verdict), and open nwbpf bugs awaiting their fix (Open).
// (libvirt's decimal --vlan-encap, once listed here, is reproduced since:
// TestVLANEncapAsLibvirt; IPv6 AH, nwbpf's bug once listed here, is fixed
// by the L34PROTO field.)
var KnownDivergences = []Known{
	{
		ID:       "udplite-checksum",
		Stateful: true,
		Match:    func(s Spec) bool { return s.Proto == ProtoUDPLite },
		Reason: "Kernel bug, not copied. With `net.netfilter.nf_conntrack_checksum=1` (the default) " +
			"nf_conntrack verifies a UDP-Lite checksum at PREROUTING (bridge netfilter included) with " +
			"`nf_checksum_partial(..., IPPROTO_UDP, ...)`: the pseudo-header it sums names protocol 17, while " +
			"RFC 3828 and Linux's own UDP-Lite stack use 136. A correctly checksummed UDP-Lite packet is " +
			"INVALID to conntrack (no entry, so `--ctstate NEW,ESTABLISHED` never matches it) and one " +
			"checksummed as if it were UDP is tracked (measured on this kernel with `conntrack -L`). Under " +
			"libvirt a stateful `<udplite>` or `<all>` accept therefore never passes real UDP-Lite. nwbpf " +
			"verifies no checksum and tracks UDP-Lite like other protocols: the request is NEW, its answer " +
			"ESTABLISHED. Minimal case: `<rule action='accept' direction='out'><all-ipv6/></rule>` then " +
			"`<rule action='drop' direction='inout'><all-ipv6/></rule>`; a UDP-Lite frame from the guest: " +
			"libvirt drops, nwbpf delivers.",
		Test: "TestKnownUDPLiteTracked",
	},
	{
		ID:       "tcp-window",
		Stateful: true,
		Match: func(s Spec) bool {
			return s.Proto == ProtoTCP && s.TCPNumbered && (s.SPort == WindowPort || s.DPort == WindowPort)
		},
		Reason: "nwbpf is less strict (bpf/conntrack.h, not fixed here): conntrack-lite follows " +
			"nf_conntrack's TCP state table but has no sequence-window tracking (docs/dataplane.md). " +
			"nf_conntrack's tcp_in_window calls a segment INVALID when its acknowledgement is above the " +
			"other side's highest sequence sent (or its sequence outside the receiver's window), so a " +
			"SYN,ACK acknowledging data the guest never sent matches no `ESTABLISHED` reply rule in " +
			"libvirt, and the connection stays in SYN_SENT, where the guest's ACK is INVALID too. " +
			"conntrack-lite takes the SYN,ACK as the answer (ESTABLISHED) and passes both. Minimal case: " +
			"`<rule action='accept' direction='out'><tcp dstportstart='80'/></rule>` then " +
			"`<rule action='drop' direction='inout'><all/></rule>`; the guest's SYN (seq 1000), then a " +
			"SYN,ACK to it with ack 5001: libvirt drops, nwbpf delivers.",
		Test: "TestConformance (fails once fixed)",
		Open: true,
	},
}
