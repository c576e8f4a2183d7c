// SPDX-License-Identifier: Apache-2.0

package eval

import (
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/maps"
)

type F = map[maps.Field]maps.U128

func stpConfig() *layers.STP {
	return &layers.STP{
		Type: 0x00, TC: true,
		RouteID:  layers.STPSwitchID{Priority: 0x8000, SysID: 1, HwAddr: macGW},
		Cost:     0x01020304,
		BridgeID: layers.STPSwitchID{Priority: 0x9000, SysID: 2, HwAddr: macVM},
		PortID:   0x8001, MessageAge: 0x0100, MaxAge: 0x1400, HelloTime: 0x0200, FDelay: 0x0f00,
	}
}

func stpFrame(tb testing.TB, s *layers.STP) []byte {
	return frame(tb,
		&layers.Ethernet{SrcMAC: macVM, DstMAC: macSTP, EthernetType: layers.EthernetTypeLLC},
		&layers.LLC{DSAP: 0x42, SSAP: 0x42, Control: 0x03}, s)
}

func arpLayer(op uint16, spa, tpa []byte) *layers.ARP {
	return &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
		SourceHwAddress: macVM, SourceProtAddress: spa,
		DstHwAddress: macGW, DstProtAddress: tpa}
}

func TestParse(t *testing.T) {
	stpFull := stpFrame(t, stpConfig())
	tcn := stpConfig()
	tcn.Type = 0x80
	rstp := stpConfig()
	rstp.Version = 2
	ipv4Frag := ip4(layers.IPProtocolTCP)
	ipv4Frag.FragOffset = 185
	ipv4First := ip4(layers.IPProtocolUDP)
	ipv4First.Flags = layers.IPv4MoreFragments
	ipv4Opts := ip4(layers.IPProtocolUDP)
	ipv4Opts.Options = []layers.IPv4Option{{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}}
	ipv4Tos := ip4(layers.IPProtocolTCP)
	ipv4Tos.TOS = 0xb9
	ipv6TC := ip6(layers.IPProtocolTCP)
	ipv6TC.TrafficClass = 0xb8
	udp := &layers.UDP{SrcPort: 68, DstPort: 67}
	ipHdr := []byte{0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 5, 10, 0, 0, 1}
	ihl4 := append([]byte{0x44}, ipHdr[1:]...)
	ipv6Hdr := func(nh uint8, payload []byte) []byte {
		return frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocol(nh)), gopacket.Payload(payload))
	}
	dstopts := func(n int, last []byte) []byte {
		var b []byte
		for i := range n {
			next := uint8(ip6DstOpts)
			if i == n-1 {
				next = protoUDP
			}
			b = append(b, ext6(next, 0)...)
		}
		return append(b, last...)
	}
	arpBad := func(htype uint16, ptype uint16, hlen, plen uint8, tail int) []byte {
		b := []byte{byte(htype >> 8), byte(htype), byte(ptype >> 8), byte(ptype), hlen, plen, 0, 1}
		for i := range tail {
			b = append(b, byte(i+1))
		}
		return rawEth(ethTypeARP, b...)
	}

	tests := []struct {
		name   string
		frame  []byte
		md     Meta
		want   F
		absent []maps.Field
	}{
		{
			name:  "ipv4 tcp",
			frame: frame(t, eth(layers.EthernetTypeIPv4), ipv4Tos, &layers.TCP{SrcPort: 40000, DstPort: 22, SYN: true, ACK: true, ECE: true, DataOffset: 5}),
			want: F{maps.FSrcMAC: u(0x525400564432), maps.FDstMAC: u(0x525400000001), maps.FEthProto: u(0x0800),
				maps.FL3: u(4), maps.FIP4Src: u(0x0a000005), maps.FIP4Dst: u(0x0a000001), maps.FL4Proto: u(6),
				maps.FIPTos: u(0xb9), maps.FDSCP: u(0x2e), maps.FSport: u(40000), maps.FDport: u(22),
				maps.FTCPFlags: u(0x52), maps.FFrag: u(0)},
			absent: []maps.Field{maps.FVlanID, maps.FVlanEncap, maps.FStpType, maps.FArpHType, maps.FIP6Src,
				maps.FICMPType, maps.FICMPCode, maps.FCTState, maps.FCTDir, maps.FNone},
		},
		{
			name:   "802.1Q tag in data",
			frame:  frame(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{Priority: 5, VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolUDP), udp),
			want:   F{maps.FEthProto: u(0x8100), maps.FVlanID: u(42), maps.FVlanEncap: u(0x0800)},
			absent: []maps.Field{maps.FL3, maps.FIP4Src, maps.FL4Proto, maps.FSport, maps.FFrag},
		},
		{
			name:   "802.1ad tag in data",
			frame:  frame(t, eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 0xfff, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeARP}, arpLayer(1, ipVM, ipGW)),
			want:   F{maps.FEthProto: u(0x8100), maps.FVlanID: u(0xfff), maps.FVlanEncap: u(0x8100)},
			absent: []maps.Field{maps.FArpHType, maps.FArpSPA},
		},
		{
			name:   "tag in metadata",
			frame:  frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), udp),
			md:     Meta{VlanPresent: true, VlanTCI: 0xa007, VlanProto: 0x88a8},
			want:   F{maps.FEthProto: u(0x8100), maps.FVlanID: u(7), maps.FVlanEncap: u(0x0800), maps.FSrcMAC: u(0x525400564432)},
			absent: []maps.Field{maps.FL3, maps.FSport},
		},
		{
			name:   "tag cut off",
			frame:  rawEth(0x8100, 0x00, 0x2a),
			want:   F{maps.FEthProto: u(0x8100)},
			absent: []maps.Field{maps.FVlanID, maps.FVlanEncap},
		},
		{
			name:   "802.3 length frame",
			frame:  rawEth(0x002e, 0xaa, 0xaa, 0x03),
			want:   F{maps.FEthProto: u(0x002e)},
			absent: []maps.Field{maps.FStpType, maps.FVlanID},
		},
		{
			name:   "short frame",
			frame:  make([]byte, 13),
			absent: []maps.Field{maps.FSrcMAC, maps.FDstMAC, maps.FEthProto, maps.FL3},
		},
		{
			name:  "arp request",
			frame: frame(t, eth(layers.EthernetTypeARP), arpLayer(1, ipVM, ipGW)),
			want: F{maps.FEthProto: u(0x0806), maps.FArpHType: u(1), maps.FArpPType: u(0x0800), maps.FArpOpcode: u(1),
				maps.FArpSHA: u(0x525400564432), maps.FArpTHA: u(0x525400000001),
				maps.FArpSPA: u(0x0a000005), maps.FArpTPA: u(0x0a000001), maps.FArpGrat: u(0)},
			absent: []maps.Field{maps.FL3, maps.FStpType},
		},
		{
			name:  "gratuitous rarp",
			frame: frame(t, eth(layers.EthernetType(ethTypeRARP)), arpLayer(3, ipVM, ipVM)),
			want:  F{maps.FEthProto: u(0x8035), maps.FArpOpcode: u(3), maps.FArpGrat: u(1), maps.FArpSPA: u(0x0a000005)},
		},
		{
			name:   "arp tagged in metadata",
			frame:  frame(t, eth(layers.EthernetTypeARP), arpLayer(1, ipVM, ipGW)),
			md:     Meta{VlanPresent: true, VlanTCI: 3},
			absent: []maps.Field{maps.FArpHType, maps.FArpSHA, maps.FArpSPA},
		},
		{
			name:   "arp hardware type 6",
			frame:  arpBad(6, 0x0800, 6, 4, 20),
			want:   F{maps.FArpHType: u(6), maps.FArpSPA: u(0x0708090a), maps.FArpTPA: u(0x11121314)},
			absent: []maps.Field{maps.FArpSHA, maps.FArpTHA},
		},
		{
			name:   "arp hlen 8 moves spa and tpa",
			frame:  arpBad(1, 0x0800, 8, 4, 24),
			want:   F{maps.FArpSPA: u(0x090a0b0c), maps.FArpTPA: u(0x15161718), maps.FArpGrat: u(0)},
			absent: []maps.Field{maps.FArpSHA, maps.FArpTHA},
		},
		{
			name:   "arp ipv6 protocol, tha after plen 16",
			frame:  arpBad(1, 0x86dd, 6, 16, 44),
			want:   F{maps.FArpSHA: u(0x010203040506), maps.FArpTHA: u(0x1718191a1b1c)},
			absent: []maps.Field{maps.FArpSPA, maps.FArpTPA, maps.FArpGrat},
		},
		{
			name:   "arp plen 4 ptype 0x0801",
			frame:  arpBad(1, 0x0801, 6, 4, 20),
			want:   F{maps.FArpPType: u(0x0801), maps.FArpSHA: u(0x010203040506)},
			absent: []maps.Field{maps.FArpSPA, maps.FArpTPA, maps.FArpGrat},
		},
		{
			name:   "arp header only",
			frame:  arpBad(1, 0x0800, 6, 4, 0),
			want:   F{maps.FArpHType: u(1), maps.FArpOpcode: u(1)},
			absent: []maps.Field{maps.FArpSHA, maps.FArpTHA, maps.FArpSPA, maps.FArpTPA, maps.FArpGrat},
		},
		{
			name:   "arp tpa cut off",
			frame:  arpBad(1, 0x0800, 6, 4, 19),
			want:   F{maps.FArpSHA: u(0x010203040506), maps.FArpTHA: u(0x0b0c0d0e0f10)},
			absent: []maps.Field{maps.FArpSPA, maps.FArpTPA, maps.FArpGrat},
		},
		{
			name:   "arp truncated header",
			frame:  rawEth(ethTypeARP, 0, 1, 8, 0, 6, 4, 0),
			want:   F{maps.FEthProto: u(0x0806)},
			absent: []maps.Field{maps.FArpHType, maps.FArpPType, maps.FArpOpcode},
		},
		{
			name:  "stp config bpdu",
			frame: stpFull,
			// ebt_stp reads every config field one byte early (nwbpf.h).
			want: F{maps.FDstMAC: u(0x0180c2000000), maps.FStpType: u(0), maps.FStpFlags: u(0x00),
				maps.FStpRootPrio: u(0x0180), maps.FStpRootAddr: u(0x015254000000), maps.FStpRootCost: u(0x01010203),
				maps.FStpSenderPrio: u(0x0490), maps.FStpSenderAddr: u(0x025254005644), maps.FStpPort: u(0x3280),
				maps.FStpMsgAge: u(0x0101), maps.FStpMaxAge: u(0x0014), maps.FStpHelloTime: u(0x0002),
				maps.FStpForwardDelay: u(0x000f)},
			absent: []maps.Field{maps.FArpHType, maps.FL3},
		},
		{
			name:  "stp tcn bpdu",
			frame: stpFrame(t, tcn),
			want:  F{maps.FStpType: u(0), maps.FStpFlags: u(0x80)},
		},
		{
			name:   "stp config body cut off",
			frame:  stpFull[:ethHdrLen+stpConfigEnd-1],
			want:   F{maps.FStpType: u(0)},
			absent: []maps.Field{maps.FStpFlags, maps.FStpRootAddr, maps.FStpForwardDelay},
		},
		{
			name:  "stp config body exactly there",
			frame: stpFull[:ethHdrLen+stpConfigEnd],
			want:  F{maps.FStpType: u(0), maps.FStpForwardDelay: u(0x000f)},
		},
		{
			name:   "stp header without type",
			frame:  stpFull[:ethHdrLen+stpHdrLen-1],
			absent: []maps.Field{maps.FStpType},
		},
		{
			name:   "rstp version is no ebt_stp bpdu",
			frame:  stpFrame(t, rstp),
			absent: []maps.Field{maps.FStpType, maps.FStpFlags},
		},
		{
			name:  "stp tagged in metadata",
			frame: stpFull,
			md:    Meta{VlanPresent: true, VlanTCI: 9},
			want:  F{maps.FVlanID: u(9), maps.FStpType: u(0), maps.FStpPort: u(0x3280)},
		},
		{
			name:  "stp tagged in data",
			frame: cat(rawEth(0x8100, 0, 9, 0, 0x26), stpFull[ethHdrLen:]),
			want:  F{maps.FVlanID: u(9), maps.FVlanEncap: u(0x26), maps.FStpType: u(0), maps.FStpPort: u(0x3280)},
		},
		{
			name:   "ipv4 non-first fragment",
			frame:  frame(t, eth(layers.EthernetTypeIPv4), ipv4Frag, &layers.TCP{SrcPort: 1, DstPort: 2, SYN: true}),
			want:   F{maps.FL3: u(4), maps.FL4Proto: u(6), maps.FFrag: u(1)},
			absent: []maps.Field{maps.FSport, maps.FDport, maps.FTCPFlags},
		},
		{
			name:  "ipv4 first fragment",
			frame: frame(t, eth(layers.EthernetTypeIPv4), ipv4First, udp),
			want:  F{maps.FFrag: u(0), maps.FSport: u(68), maps.FDport: u(67)},
		},
		{
			name:  "ipv4 options",
			frame: frame(t, eth(layers.EthernetTypeIPv4), ipv4Opts, udp),
			want:  F{maps.FL4Proto: u(17), maps.FSport: u(68), maps.FDport: u(67)},
		},
		{
			name:   "ipv4 truncated",
			frame:  rawEth(ethTypeIPv4, ipHdr[:19]...),
			want:   F{maps.FEthProto: u(0x0800)},
			absent: []maps.Field{maps.FL3, maps.FIP4Src, maps.FFrag, maps.FDSCP},
		},
		{
			name:   "ipv4 ihl 4",
			frame:  rawEth(ethTypeIPv4, cat(ihl4, ports4(1, 2), make([]byte, 16))...),
			want:   F{maps.FL3: u(4), maps.FL4Proto: u(6), maps.FFrag: u(0)},
			absent: []maps.Field{maps.FSport, maps.FTCPFlags},
		},
		{
			name:   "ipv4 ihl beyond frame",
			frame:  rawEth(ethTypeIPv4, cat([]byte{0x4f}, ipHdr[1:], make([]byte, 30))...),
			want:   F{maps.FL3: u(4)},
			absent: []maps.Field{maps.FSport},
		},
		{
			name:   "ipv4 tcp ports only",
			frame:  rawEth(ethTypeIPv4, cat(ipHdr, ports4(1000, 80), make([]byte, 6))...),
			want:   F{maps.FSport: u(1000), maps.FDport: u(80)},
			absent: []maps.Field{maps.FTCPFlags},
		},
		{
			name:   "ipv4 tcp 3 bytes",
			frame:  rawEth(ethTypeIPv4, cat(ipHdr, []byte{1, 2, 3})...),
			want:   F{maps.FL4Proto: u(6)},
			absent: []maps.Field{maps.FSport, maps.FDport, maps.FTCPFlags},
		},
		{
			name:  "ipv4 udplite",
			frame: frame(t, eth(layers.EthernetTypeIPv4), ip4(protoUDPLite), gopacket.Payload(ports4(5, 6))),
			want:  F{maps.FL4Proto: u(136), maps.FSport: u(5), maps.FDport: u(6)},
		},
		{
			name:  "ipv4 dccp",
			frame: frame(t, eth(layers.EthernetTypeIPv4), ip4(protoDCCP), gopacket.Payload(ports4(7, 8))),
			want:  F{maps.FL4Proto: u(33), maps.FSport: u(7), maps.FDport: u(8)},
		},
		{
			name:  "ipv4 sctp",
			frame: frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolSCTP), gopacket.Payload(ports4(9, 10))),
			want:  F{maps.FL4Proto: u(132), maps.FSport: u(9), maps.FDport: u(10)},
		},
		{
			name:   "ipv4 gre has no ports",
			frame:  frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolGRE), gopacket.Payload(ports4(9, 10))),
			want:   F{maps.FL4Proto: u(47)},
			absent: []maps.Field{maps.FSport, maps.FDport, maps.FICMPType},
		},
		{
			name:   "ipv4 icmp",
			frame:  frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 13)}),
			want:   F{maps.FL4Proto: u(1), maps.FICMPType: u(3), maps.FICMPCode: u(13)},
			absent: []maps.Field{maps.FSport, maps.FTCPFlags},
		},
		{
			name:   "ipv4 icmp 3 bytes",
			frame:  rawEth(ethTypeIPv4, cat(ipHdr[:9], []byte{1}, ipHdr[10:], []byte{8, 0, 0})...),
			want:   F{maps.FL4Proto: u(1)},
			absent: []maps.Field{maps.FICMPType, maps.FICMPCode},
		},
		{
			name:   "ipv4 icmpv6 protocol is not icmp",
			frame:  frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv6), gopacket.Payload{128, 0, 0, 0}),
			want:   F{maps.FL4Proto: u(58)},
			absent: []maps.Field{maps.FICMPType},
		},
		{
			name:  "ipv6 tcp",
			frame: frame(t, eth(layers.EthernetTypeIPv6), ipv6TC, &layers.TCP{SrcPort: 1234, DstPort: 443, FIN: true, DataOffset: 5}),
			want: F{maps.FEthProto: u(0x86dd), maps.FL3: u(6), maps.FIP6Src: {0xfd00000000000000, 5},
				maps.FIP6Dst: {0xfd00000000000000, 1}, maps.FDSCP: u(0x2e), maps.FL4Proto: u(6),
				maps.FSport: u(1234), maps.FDport: u(443), maps.FTCPFlags: u(1), maps.FFrag: u(0)},
			absent: []maps.Field{maps.FIPTos, maps.FIP4Src, maps.FIP4Dst},
		},
		{
			name:  "ipv6 hop-by-hop routing ah dstopts",
			frame: ipv6Hdr(ip6HopByHop, cat(ext6(ip6Routing, 1), ext6(ip6AH, 0), ah6(ip6DstOpts, 4), ext6(protoUDP, 0), ports4(546, 547))),
			// ebtables skips AH (L4PROTO); iptables-nft stops at it.
			want: F{maps.FL4Proto: u(17), maps.FL34Proto: u(51), maps.FSport: u(546), maps.FDport: u(547), maps.FFrag: u(0)},
		},
		{
			name:  "ipv6 first fragment",
			frame: ipv6Hdr(ip6Fragment, cat(frag6(protoUDP, 0, true), ports4(1, 2))),
			want:  F{maps.FL4Proto: u(17), maps.FFrag: u(0), maps.FSport: u(1), maps.FDport: u(2)},
		},
		{
			name:   "ipv6 non-first fragment",
			frame:  ipv6Hdr(ip6HopByHop, cat(ext6(ip6Fragment, 0), frag6(protoTCP, 100, false), ports4(1, 2), make([]byte, 16))),
			want:   F{maps.FL4Proto: u(6), maps.FL34Proto: u(6), maps.FFrag: u(1), maps.FL3: u(6)},
			absent: []maps.Field{maps.FSport, maps.FDport, maps.FTCPFlags},
		},
		{
			name:  "ipv6 eight extension headers",
			frame: ipv6Hdr(ip6DstOpts, dstopts(8, ports4(3, 4))),
			want:  F{maps.FL4Proto: u(17), maps.FL34Proto: u(17), maps.FSport: u(3)},
		},
		{
			name:   "ipv6 nine extension headers",
			frame:  ipv6Hdr(ip6DstOpts, dstopts(9, ports4(3, 4))),
			want:   F{maps.FL3: u(6), maps.FFrag: u(0)},
			absent: []maps.Field{maps.FL4Proto, maps.FL34Proto, maps.FSport},
		},
		{
			name:   "ipv6 extension header cut off",
			frame:  rawEth(ethTypeIPv6, (ipv6Hdr(ip6HopByHop, ext6(protoUDP, 1))[ethHdrLen : ethHdrLen+ip6HdrLen+15])...),
			want:   F{maps.FL3: u(6)},
			absent: []maps.Field{maps.FL4Proto, maps.FSport},
		},
		{
			name:   "ipv6 truncated",
			frame:  rawEth(ethTypeIPv6, make([]byte, 39)...),
			absent: []maps.Field{maps.FL3, maps.FIP6Src, maps.FFrag, maps.FDSCP},
		},
		{
			name:   "ipv6 no next header",
			frame:  ipv6Hdr(59, ports4(1, 2)),
			want:   F{maps.FL4Proto: u(59)},
			absent: []maps.Field{maps.FSport},
		},
		{
			name:  "ipv6 icmpv6",
			frame: ipv6Hdr(protoICMPv6, []byte{135, 0, 0, 0}),
			want:  F{maps.FL4Proto: u(58), maps.FICMPType: u(135), maps.FICMPCode: u(0)},
		},
		{
			name:   "ipv6 icmp protocol 1 is not icmpv6",
			frame:  ipv6Hdr(protoICMP, []byte{8, 0, 0, 0}),
			want:   F{maps.FL4Proto: u(1)},
			absent: []maps.Field{maps.FICMPType, maps.FICMPCode},
		},
		{
			name:   "ipv6 tagged in metadata",
			frame:  ipv6Hdr(protoUDP, ports4(1, 2)),
			md:     Meta{VlanPresent: true},
			want:   F{maps.FVlanID: u(0), maps.FVlanEncap: u(0x86dd)},
			absent: []maps.Field{maps.FL3, maps.FIP6Src},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Parse(tt.frame, tt.md)
			checkInvariants(t, p)
			for f, want := range tt.want {
				got, ok := FieldValue(p, f)
				if !ok {
					t.Errorf("%s absent, want %#x", f, want)
				} else if got != want {
					t.Errorf("%s = %#x, want %#x", f, got, want)
				}
			}
			for _, f := range tt.absent {
				if got, ok := FieldValue(p, f); ok {
					t.Errorf("%s = %#x, want absent", f, got)
				}
			}
		})
	}
}

func TestParseTCPOptions(t *testing.T) {
	ipHdr := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 5, 10, 0, 0, 1}
	tcp := func(doff uint8, opts ...byte) []byte {
		h := make([]byte, 20)
		h[12] = doff << 4
		h[13] = 0x02
		return rawEth(ethTypeIPv4, cat(ipHdr, h, opts)...)
	}
	gp := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 2, SYN: true,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)},
		}})
	tests := []struct {
		name   string
		frame  []byte
		ok     bool
		found  []uint8
		absent []uint8
	}{
		{"gopacket syn", gp, true, []uint8{2, 1, 3, 4, 8}, []uint8{0, 5, 28, 255}},
		{"no options", tcp(5), true, nil, []uint8{0, 1, 2}},
		{"end stops the walk", tcp(6, 1, 0, 2, 4), true, []uint8{1, 0}, []uint8{2}},
		{"length below 2 stops the walk", tcp(6, 8, 1, 2, 4), true, []uint8{8}, []uint8{1, 2}},
		{"length byte missing", tcp(6, 1, 1, 1, 30), true, []uint8{1, 30}, []uint8{0}},
		{"length past the area", tcp(6, 2, 9, 3, 3), true, []uint8{2}, []uint8{3}},
		{"options cut off", tcp(7, 2, 4, 5, 0xb4), false, nil, []uint8{2}},
		{"data offset below 5", tcp(4), false, nil, []uint8{0}},
		{"header cut off", rawEth(ethTypeIPv4, cat(ipHdr, make([]byte, 19))...), false, nil, []uint8{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Parse(tt.frame, Meta{})
			checkInvariants(t, p)
			for _, k := range tt.found {
				if found, ok := TCPOption(p, k); !found || ok != tt.ok {
					t.Errorf("kind %d: found %v ok %v, want true %v", k, found, ok, tt.ok)
				}
			}
			for _, k := range tt.absent {
				if found, ok := TCPOption(p, k); found || ok != tt.ok {
					t.Errorf("kind %d: found %v ok %v, want false %v", k, found, ok, tt.ok)
				}
			}
		})
	}
}

// checkInvariants fails when a parsed packet breaks a presence rule of
// bpf/nwbpf.h, whatever the frame.
func checkInvariants(tb testing.TB, p *Packet) {
	tb.Helper()
	has := func(f maps.Field) bool { _, ok := FieldValue(p, f); return ok }
	val := func(f maps.Field) uint64 { v, _ := FieldValue(p, f); return v[1] }
	implies := func(what string, a, b bool) {
		if a && !b {
			tb.Errorf("presence rule broken: %s", what)
		}
	}
	for f := maps.Field(0); f < maps.FieldMax; f++ {
		v, ok := FieldValue(p, f)
		if !ok {
			continue
		}
		if w := f.Width(); w < 16 && (v[0] != 0 || w < 8 && v[1]>>(8*w) != 0) {
			tb.Errorf("%s = %#x does not fit %d bytes", f, v, w)
		}
	}
	eth := has(maps.FEthProto)
	implies("ethernet fields together", has(maps.FSrcMAC) || has(maps.FDstMAC), eth && has(maps.FSrcMAC) && has(maps.FDstMAC))
	implies("vlan needs ethproto 0x8100", has(maps.FVlanID), val(maps.FEthProto) == ethType8021Q)
	implies("vlan id with encap", has(maps.FVlanID) != has(maps.FVlanEncap), false)
	tagged := has(maps.FVlanID)
	arp := eth && !tagged && (val(maps.FEthProto) == ethTypeARP || val(maps.FEthProto) == ethTypeRARP)
	for _, f := range []maps.Field{maps.FArpHType, maps.FArpPType, maps.FArpOpcode} {
		implies(f.String()+" needs untagged arp", has(f), arp)
		implies("arp header fields together", has(f), has(maps.FArpHType) && has(maps.FArpPType) && has(maps.FArpOpcode))
	}
	for _, f := range []maps.Field{maps.FArpSHA, maps.FArpTHA} {
		implies(f.String()+" needs htype 1", has(f), has(maps.FArpHType) && val(maps.FArpHType) == 1)
	}
	for _, f := range []maps.Field{maps.FArpSPA, maps.FArpTPA, maps.FArpGrat} {
		implies(f.String()+" needs ptype 0x0800", has(f), has(maps.FArpPType) && val(maps.FArpPType) == ethTypeIPv4)
		implies("spa, tpa, grat together", has(f), has(maps.FArpSPA) && has(maps.FArpTPA) && has(maps.FArpGrat))
	}
	implies("grat is spa == tpa", has(maps.FArpGrat), (val(maps.FArpGrat) == 1) == (val(maps.FArpSPA) == val(maps.FArpTPA)))
	for f := maps.FStpFlags; f <= maps.FStpForwardDelay; f++ {
		implies(f.String()+" needs a config bpdu", has(f), has(maps.FStpType) && val(maps.FStpType) == 0)
		implies("stp config fields together", has(f) != has(maps.FStpFlags), false)
	}
	ip := eth && !tagged && (val(maps.FEthProto) == ethTypeIPv4 || val(maps.FEthProto) == ethTypeIPv6)
	implies("l3 needs untagged ip", has(maps.FL3), ip)
	v4, v6 := has(maps.FL3) && val(maps.FL3) == 4, has(maps.FL3) && val(maps.FL3) == 6
	implies("l3 is 4 or 6", has(maps.FL3), v4 || v6)
	implies("ethertype decides l3", v4, val(maps.FEthProto) == ethTypeIPv4)
	implies("ethertype decides l3", v6, val(maps.FEthProto) == ethTypeIPv6)
	for _, f := range []maps.Field{maps.FIP4Src, maps.FIP4Dst, maps.FIPTos} {
		implies(f.String()+" with ipv4", has(f) != v4, false)
	}
	for _, f := range []maps.Field{maps.FIP6Src, maps.FIP6Dst} {
		implies(f.String()+" with ipv6", has(f) != v6, false)
	}
	implies("dscp and frag with l3", has(maps.FDSCP) != has(maps.FL3) || has(maps.FFrag) != has(maps.FL3), false)
	implies("dscp is tos >> 2", v4, val(maps.FDSCP) == val(maps.FIPTos)>>2)
	implies("l4proto needs l3", has(maps.FL4Proto), has(maps.FL3))
	implies("ipv4 always has l4proto", v4, has(maps.FL4Proto))
	first := has(maps.FL4Proto) && val(maps.FFrag) == 0
	l4 := val(maps.FL4Proto)
	ports := l4 == protoTCP || l4 == protoUDP || l4 == protoUDPLite || l4 == protoDCCP || l4 == protoSCTP
	implies("ports need a port protocol, first fragment", has(maps.FSport), first && ports)
	implies("sport with dport", has(maps.FSport) != has(maps.FDport), false)
	implies("tcp flags need tcp ports", has(maps.FTCPFlags), has(maps.FSport) && l4 == protoTCP)
	_, opts := TCPOption(p, 0)
	implies("tcp options need tcp flags", opts, has(maps.FTCPFlags))
	icmp := v4 && l4 == protoICMP || v6 && l4 == protoICMPv6
	implies("icmp type needs icmp, first fragment", has(maps.FICMPType), first && icmp)
	implies("icmp type with code", has(maps.FICMPType) != has(maps.FICMPCode), false)
	implies("no conntrack fields in a packet", has(maps.FCTState) || has(maps.FCTDir) || has(maps.FNone), false)
	if ports && first && has(maps.FICMPType) {
		tb.Errorf("ports and icmp together")
	}
}
