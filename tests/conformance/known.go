// SPDX-License-Identifier: Apache-2.0

package conformance

// KnownDivergences are the divergences from libvirt the harness expects:
// libvirt (or kernel) bugs nwbpf deliberately does not copy (each pinned by
// a test of nwbpf's verdict), and open nwbpf bugs awaiting their fix (Open).
// (libvirt's decimal --vlan-encap, once listed here, is reproduced since:
// TestVLANEncapAsLibvirt; IPv6 AH, nwbpf's bug once listed here, is fixed
// by the L34PROTO field; tcp-window, the missing TCP window tracking, is
// fixed by conntrack-lite's tcp_in_window: tests/conntrack TestTCPWindow.)
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
}
