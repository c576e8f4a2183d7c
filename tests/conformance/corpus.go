// SPDX-License-Identifier: Apache-2.0

package conformance

import (
	"fmt"
	"math/rand/v2"
	"net"

	"github.com/nwbpf/nwbpf/maps"
)

// Case is one comparison unit: a frame, or a request/reply sequence, sent
// in order after connection tracking was flushed.
type Case struct {
	// Group is the corpus class ("mac", "arp", "l4", "random", ...).
	Group string
	// Name says what the case is about.
	Name  string
	Specs []Spec
}

// Corpus is the list of cases every filter sees.
type Corpus []Case

// Frames builds the frames of every case for topology n. Every frame gets a
// unique tag in its payload.
func (c Corpus) Frames(n Net) ([][]Frame, error) {
	out := make([][]Frame, len(c))
	seq := 0
	for i, cs := range c {
		for _, s := range cs.Specs {
			seq++
			data, err := s.Build(n, fmt.Sprintf("nwbpf-conf-%06d", seq))
			if err != nil {
				return nil, fmt.Errorf("case %d %q: %w", i, cs.Name, err)
			}
			out[i] = append(out[i], Frame{Spec: s, Data: data})
		}
	}
	return out, nil
}

// Edges of the checklist filters' port and address ranges: the corpus sends
// frames on both sides of each (see Checklist).
var (
	PortEdges = []uint16{0, 1, 21, 22, 23, 52, 53, 54, 67, 68, 79, 80, 81, 1023, 1024, 1025, 2047, 2048, 2049, 8080, 65534, 65535}
	// AddrEdges: 10.77.0.16-10.77.0.31 (a from/to range and a /28),
	// 10.77.0.64/26, 10.77.0.0/24, multicast and broadcast.
	AddrEdges = []net.IP{ip4(10, 77, 0, 15), ip4(10, 77, 0, 16), ip4(10, 77, 0, 17), ip4(10, 77, 0, 30), ip4(10, 77, 0, 31),
		ip4(10, 77, 0, 32), ip4(10, 77, 0, 63), ip4(10, 77, 0, 64), ip4(10, 77, 0, 127), ip4(10, 77, 0, 128),
		ip4(10, 77, 0, 255), ip4(10, 77, 1, 0), ip4(192, 168, 7, 7), ip4(224, 0, 0, 1), ip4(239, 255, 255, 250),
		ip4(255, 255, 255, 255)}
	// TOSValues: DSCP 0, 1, 10, 46, 63 with and without ECN bits.
	TOSValues = []uint8{0x00, 0x01, 0x04, 0x0a, 0x28, 0x2a, 0xb8, 0xfc, 0xff}
)

func ip4(a, b, c, d byte) net.IP { return net.IPv4(a, b, c, d).To4() }

// base returns an IP frame in dir between the guest and the peer.
func base(dir maps.Dir, kind Kind, proto uint8) Spec {
	s := Spec{Dir: dir, Kind: kind, Proto: proto, Src: MACGuest, Dst: MACPeer}
	if kind == KindIPv6 {
		s.SrcIP, s.DstIP = GuestIPv6, PeerIPv6
	} else {
		s.SrcIP, s.DstIP = GuestIP, PeerIP
	}
	if dir == maps.DirIn {
		s.Src, s.Dst = s.Dst, s.Src
		s.SrcIP, s.DstIP = s.DstIP, s.SrcIP
	}
	switch proto {
	case ProtoTCP:
		s.SPort, s.DPort, s.Flags = 40000, 80, SYN
	case ProtoUDP, ProtoUDPLite, ProtoSCTP:
		s.SPort, s.DPort = 40000, 53
	case ProtoICMP:
		s.Type = 8
	case ProtoICMPv6:
		s.Type = 128
	case ProtoIGMP:
		s.Type = 0x16
	}
	if dir == maps.DirIn && (proto == ProtoTCP || proto == ProtoUDP || proto == ProtoUDPLite || proto == ProtoSCTP) {
		s.SPort, s.DPort = s.DPort, s.SPort
	}
	return s
}

func arpSpec(dir maps.Dir, op uint16) Spec {
	s := Spec{Dir: dir, Kind: KindARP, Op: op, Src: MACGuest, Dst: MACBcast, SHA: MACGuest, SPA: GuestIP, THA: MACZero, TPA: PeerIP}
	if dir == maps.DirIn {
		s.Src, s.SHA, s.SPA, s.TPA = MACPeer, MACPeer, PeerIP, GuestIP
	}
	return s
}

func rarpSpec(dir maps.Dir, who MAC) Spec {
	s := Spec{Dir: dir, Kind: KindRARP, Op: 3, Src: MACGuest, Dst: MACBcast, SHA: who, THA: who}
	if dir == maps.DirIn {
		s.Src = MACPeer
	}
	return s
}

func rawSpec(dir maps.Dir, typ uint16) Spec {
	s := Spec{Dir: dir, Kind: KindRaw, EtherType: typ, Src: MACGuest, Dst: MACPeer}
	if dir == maps.DirIn {
		s.Src, s.Dst = MACPeer, MACGuest
	}
	return s
}

// BPDU bodies (from the protocol identifier on).
var (
	// bpduConfig: STP configuration BPDU, root 8000.02:00:00:00:00:01,
	// cost 4, sender 8000.02:00:00:00:00:02 port 0x8001, ages 1/20/2/15 s.
	bpduConfig = []byte{0, 0, 0, 0, 0x00,
		0x80, 0x00, 2, 0, 0, 0, 0, 1, 0, 0, 0, 4,
		0x80, 0x00, 2, 0, 0, 0, 0, 2, 0x80, 0x01,
		0x01, 0x00, 0x14, 0x00, 0x02, 0x00, 0x0f, 0x00}
	// bpduTCN: topology change notification.
	bpduTCN = []byte{0, 0, 0, 0x80}
	// bpduRST: RSTP BPDU (version 2, type 2, flags 0x3c, v1 length 0).
	bpduRST = append(append([]byte{0, 0, 2, 2, 0x3c}, bpduConfig[5:]...), 0)
	// bpduTC: configuration BPDU with the TC and TCA flags, another root.
	bpduTC = []byte{0, 0, 0, 0, 0x81,
		0x10, 0x00, 2, 0, 0, 0, 0, 9, 0, 0, 0x10, 0,
		0x70, 0x00, 2, 0, 0, 0, 0, 2, 0x80, 0x02,
		0x00, 0x00, 0x14, 0x00, 0x02, 0x00, 0x0f, 0x00}
)

func stpSpec(dir maps.Dir, bpdu []byte) Spec {
	s := Spec{Dir: dir, Kind: KindSTP, Src: MACGuest, Dst: MACSTP, BPDU: bpdu}
	if dir == maps.DirIn {
		s.Src = MACPeer
	}
	return s
}

// Fixed is the deterministic corpus: every class of frame the issue lists,
// correct and spoofed, in both directions.
func Fixed() Corpus {
	out, in := maps.DirOut, maps.DirIn
	var c Corpus
	add := func(group, name string, specs ...Spec) {
		c = append(c, Case{Group: group, Name: name, Specs: specs})
	}
	with := func(s Spec, f func(*Spec)) Spec { f(&s); return s }

	// MAC addressing: correct, spoofed, broadcast, multicast, unknown.
	u4o, u4i := base(out, KindIPv4, ProtoUDP), base(in, KindIPv4, ProtoUDP)
	add("mac", "guest to peer", u4o)
	add("mac", "spoofed source MAC", with(u4o, func(s *Spec) { s.Src = MACSpoof }))
	add("mac", "peer MAC as source", with(u4o, func(s *Spec) { s.Src = MACPeer }))
	add("mac", "to broadcast", with(u4o, func(s *Spec) { s.Dst, s.DstIP = MACBcast, ip4(10, 77, 0, 255) }))
	add("mac", "to IPv4 multicast", with(u4o, func(s *Spec) { s.Dst, s.DstIP = MACMcast4, ip4(224, 0, 0, 1) }))
	add("mac", "to another unicast MAC", with(u4o, func(s *Spec) { s.Dst = MACOther }))
	add("mac", "to the LLDP group", with(u4o, func(s *Spec) { s.Dst = MACLLDP }))
	add("mac", "peer to guest", u4i)
	add("mac", "peer to broadcast", with(u4i, func(s *Spec) { s.Dst, s.DstIP = MACBcast, ip4(10, 77, 0, 255) }))
	add("mac", "peer to multicast", with(u4i, func(s *Spec) { s.Dst, s.DstIP = MACMcast4, ip4(224, 0, 0, 1) }))
	add("mac", "peer to another guest (flooded)", with(u4i, func(s *Spec) { s.Dst = MACOther }))
	add("mac", "spoofed MAC to guest", with(u4i, func(s *Spec) { s.Src = MACSpoof }))

	// IP spoofing and DHCP.
	add("ip", "spoofed source IP", with(u4o, func(s *Spec) { s.SrcIP = SpoofIP }))
	add("ip", "spoofed IP and MAC", with(u4o, func(s *Spec) { s.SrcIP, s.Src = SpoofIP, MACSpoof }))
	add("ip", "UDP from 0.0.0.0 to any port", with(u4o, func(s *Spec) { s.SrcIP, s.DPort = net.IPv4zero, 4444 }))
	add("ip", "TCP from 0.0.0.0", with(base(out, KindIPv4, ProtoTCP), func(s *Spec) { s.SrcIP = net.IPv4zero }))
	add("ip", "IPv4 to the guest from a spoofed address", with(u4i, func(s *Spec) { s.SrcIP = SpoofIP }))
	add("ip", "IPv4 to another guest's IP", with(u4i, func(s *Spec) { s.DstIP = SpoofIP }))
	dhcp := with(u4o, func(s *Spec) {
		s.Dst, s.SrcIP, s.DstIP, s.SPort, s.DPort = MACBcast, net.IPv4zero, net.IPv4bcast, 68, 67
	})
	add("dhcp", "DHCP discover from 0.0.0.0", dhcp)
	add("dhcp", "DHCP request to the server", with(dhcp, func(s *Spec) { s.Dst, s.DstIP = MACPeer, DHCPIP }))
	add("dhcp", "DHCP from the guest's IP", with(dhcp, func(s *Spec) { s.SrcIP = GuestIP }))
	offer := with(u4i, func(s *Spec) { s.SrcIP, s.DstIP, s.SPort, s.DPort = DHCPIP, GuestIP, 67, 68 })
	add("dhcp", "DHCP offer from the server", offer)
	add("dhcp", "DHCP offer broadcast", with(offer, func(s *Spec) { s.Dst, s.DstIP = MACBcast, net.IPv4bcast }))
	add("dhcp", "DHCP offer from a rogue server", with(offer, func(s *Spec) { s.SrcIP = SpoofIP }))
	add("dhcp", "DHCP discover then offer", dhcp, with(offer, func(s *Spec) { s.Dst, s.DstIP = MACBcast, net.IPv4bcast }))

	// ARP and RARP.
	ao, ai := arpSpec(out, 1), arpSpec(in, 1)
	add("arp", "request", ao)
	add("arp", "reply", with(arpSpec(out, 2), func(s *Spec) { s.Dst, s.THA = MACPeer, MACPeer }))
	add("arp", "spoofed sender IP", with(ao, func(s *Spec) { s.SPA = SpoofIP }))
	add("arp", "spoofed sender MAC", with(ao, func(s *Spec) { s.SHA = MACSpoof }))
	add("arp", "spoofed Ethernet source", with(ao, func(s *Spec) { s.Src = MACSpoof }))
	add("arp", "probe from 0.0.0.0", with(ao, func(s *Spec) { s.SPA, s.TPA = net.IPv4zero, GuestIP }))
	add("arp", "gratuitous", with(ao, func(s *Spec) { s.TPA = GuestIP }))
	add("arp", "gratuitous reply", with(arpSpec(out, 2), func(s *Spec) { s.TPA, s.THA = GuestIP, MACBcast }))
	add("arp", "opcode 8 (InARP)", with(ao, func(s *Spec) { s.Op = 8 }))
	add("arp", "hardware type 6", with(ao, func(s *Spec) { s.HType = 6 }))
	add("arp", "protocol type 0x86dd", with(ao, func(s *Spec) { s.PType = 0x86dd }))
	add("arp", "sender in 10.77.0.16/28", with(ao, func(s *Spec) { s.SPA = ip4(10, 77, 0, 17) }))
	add("arp", "to the guest", ai)
	add("arp", "reply to the guest", with(arpSpec(in, 2), func(s *Spec) { s.Dst, s.THA = MACGuest, MACGuest }))
	add("arp", "for another guest (flooded)", with(ai, func(s *Spec) { s.TPA = SpoofIP }))
	add("arp", "claims the guest's IP", with(ai, func(s *Spec) { s.SPA = GuestIP }))
	add("rarp", "announce own MAC", rarpSpec(out, MACGuest))
	add("rarp", "announce another MAC", rarpSpec(out, MACOther))
	add("rarp", "request (opcode 3) unicast", with(rarpSpec(out, MACGuest), func(s *Spec) { s.Dst = MACPeer }))
	add("rarp", "reply (opcode 4)", with(rarpSpec(out, MACGuest), func(s *Spec) { s.Op = 4 }))
	add("rarp", "guest's MAC to the guest", rarpSpec(in, MACGuest))
	add("rarp", "another MAC to the guest", rarpSpec(in, MACOther))

	// VLAN tags.
	for _, v := range []uint16{42, 10, 0, 4095, 0x6000 | 42} {
		add("vlan", fmt.Sprintf("tagged IPv4 tci %#x", v), with(u4o, func(s *Spec) { s.HasVLAN, s.VLAN = true, v }))
	}
	add("vlan", "tagged spoofed IPv4", with(u4o, func(s *Spec) { s.HasVLAN, s.VLAN, s.SrcIP = true, 42, SpoofIP }))
	add("vlan", "tagged ARP", with(ao, func(s *Spec) { s.HasVLAN, s.VLAN = true, 42 }))
	add("vlan", "tagged IPv6", with(base(out, KindIPv6, ProtoUDP), func(s *Spec) { s.HasVLAN, s.VLAN = true, 42 }))
	add("vlan", "tagged unknown type", with(rawSpec(out, 0x88b5), func(s *Spec) { s.HasVLAN, s.VLAN = true, 42 }))
	// ebtables reads --vlan-encap as hex: libvirt's decimal 2054 (ARP)
	// and 2048 (IPv4) match these types (see KnownDivergences).
	add("vlan", "tagged type 0x2054", with(rawSpec(out, 0x2054), func(s *Spec) { s.HasVLAN, s.VLAN = true, 42 }))
	add("vlan", "tagged type 0x2048 to the guest", with(rawSpec(in, 0x2048), func(s *Spec) { s.HasVLAN, s.VLAN = true, 10 }))
	add("vlan", "tagged IPv4 to the guest", with(u4i, func(s *Spec) { s.HasVLAN, s.VLAN = true, 42 }))
	add("vlan", "tagged IPv4 vlan 10 to the guest", with(u4i, func(s *Spec) { s.HasVLAN, s.VLAN = true, 10 }))

	// STP BPDUs.
	add("stp", "configuration BPDU", stpSpec(out, bpduConfig))
	add("stp", "configuration BPDU, TC flags", stpSpec(out, bpduTC))
	add("stp", "TCN BPDU", stpSpec(out, bpduTCN))
	add("stp", "RSTP BPDU", stpSpec(out, bpduRST))
	add("stp", "BPDU from a spoofed MAC", with(stpSpec(out, bpduConfig), func(s *Spec) { s.Src = MACSpoof }))
	add("stp", "configuration BPDU to the guest", stpSpec(in, bpduConfig))
	add("stp", "TC BPDU to the guest", stpSpec(in, bpduTC))

	// EtherTypes and 802.3 lengths.
	for _, t := range []uint16{0x0835, 0x88b5, 0x8863, 0x88cc, 0x0600, 0x05ff, 0x0040, 0x86dd} {
		name := fmt.Sprintf("type %#04x", t)
		if t == 0x86dd {
			name = "type 0x86dd, truncated"
		}
		add("ethertype", name, rawSpec(out, t))
	}
	add("ethertype", "0x88b5 to broadcast", with(rawSpec(out, 0x88b5), func(s *Spec) { s.Dst = MACBcast }))
	add("ethertype", "0x0835 to the guest", rawSpec(in, 0x0835))
	add("ethertype", "0x88b5 to the guest", rawSpec(in, 0x88b5))

	// Every L4 protocol, IPv4 and IPv6, both directions.
	for _, k := range []Kind{KindIPv4, KindIPv6} {
		protos := []uint8{ProtoTCP, ProtoUDP, ProtoUDPLite, ProtoSCTP, ProtoESP, ProtoAH, ProtoICMP, ProtoIGMP, ProtoGRE}
		fam := "ipv4"
		if k == KindIPv6 {
			protos, fam = []uint8{ProtoTCP, ProtoUDP, ProtoUDPLite, ProtoSCTP, ProtoESP, ProtoAH, ProtoICMPv6, ProtoGRE}, "ipv6"
		}
		for _, p := range protos {
			for _, d := range []maps.Dir{out, in} {
				s := base(d, k, p)
				if p == ProtoIGMP {
					s.DstIP = ip4(224, 0, 0, 22)
					s.Dst = MACMcast4
				}
				add("l4", fmt.Sprintf("%s %s %s", fam, protoName(p), d), s)
			}
		}
	}

	// IPv6: addressing, extension headers, neighbour discovery, DHCPv6.
	u6o, u6i := base(out, KindIPv6, ProtoUDP), base(in, KindIPv6, ProtoUDP)
	add("ipv6", "spoofed source", with(u6o, func(s *Spec) { s.SrcIP = SpoofIPv6 }))
	add("ipv6", "link-local source", with(u6o, func(s *Spec) { s.SrcIP = LinkLocal }))
	add("ipv6", "to ff02::1", with(u6o, func(s *Spec) { s.Dst, s.DstIP = MACMcast6, net.ParseIP("ff02::1") }))
	add("ipv6", "DHCPv6 solicit", with(u6o, func(s *Spec) {
		s.Dst, s.SrcIP, s.DstIP, s.SPort, s.DPort = MACMcast6, LinkLocal, net.ParseIP("ff02::1:2"), 546, 547
	}))
	add("ipv6", "DHCPv6 advertise", with(u6i, func(s *Spec) {
		s.SrcIP, s.DstIP, s.SPort, s.DPort = net.ParseIP("fd77::2"), LinkLocal, 547, 546
	}))
	add("ipv6", "DHCPv6 advertise from a rogue server", with(u6i, func(s *Spec) {
		s.SrcIP, s.DstIP, s.SPort, s.DPort = SpoofIPv6, LinkLocal, 547, 546
	}))
	for _, ext := range [][]uint8{{0}, {60}, {43}, {44}, {51}, {0, 60}, {0, 43, 44, 60}, {0, 51}} {
		for _, p := range []uint8{ProtoUDP, ProtoTCP, ProtoICMPv6} {
			add("ipv6-ext", fmt.Sprintf("ext %v %s out", ext, protoName(p)), with(base(out, KindIPv6, p), func(s *Spec) { s.Ext = ext }))
		}
		add("ipv6-ext", fmt.Sprintf("ext %v udp in", ext), with(u6i, func(s *Spec) { s.Ext = ext }))
	}
	icmp6 := func(d maps.Dir, t uint8) Spec {
		return with(base(d, KindIPv6, ProtoICMPv6), func(s *Spec) { s.Type = t })
	}
	for _, t := range []uint8{1, 128, 129, 133, 135, 136, 143} {
		add("icmp", fmt.Sprintf("icmpv6 type %d out", t), icmp6(out, t))
	}
	for _, t := range []uint8{1, 2, 128, 129, 134, 135, 136} {
		add("icmp", fmt.Sprintf("icmpv6 type %d in", t), icmp6(in, t))
	}
	add("icmp", "icmpv6 1/4 out", with(icmp6(out, 1), func(s *Spec) { s.Code = 4 }))
	icmp4 := func(d maps.Dir, t, code uint8) Spec {
		return with(base(d, KindIPv4, ProtoICMP), func(s *Spec) { s.Type, s.Code = t, code })
	}
	for _, tc := range [][2]uint8{{0, 0}, {3, 0}, {3, 3}, {3, 4}, {8, 0}, {8, 1}, {11, 0}, {13, 0}} {
		add("icmp", fmt.Sprintf("icmp %d/%d out", tc[0], tc[1]), icmp4(out, tc[0], tc[1]))
		add("icmp", fmt.Sprintf("icmp %d/%d in", tc[0], tc[1]), icmp4(in, tc[0], tc[1]))
	}

	// Port edges, TCP and UDP, both directions and both ends.
	for _, p := range PortEdges {
		add("ports", fmt.Sprintf("tcp dport %d out", p), with(base(out, KindIPv4, ProtoTCP), func(s *Spec) { s.DPort = p }))
		add("ports", fmt.Sprintf("udp dport %d out", p), with(u4o, func(s *Spec) { s.DPort = p }))
		add("ports", fmt.Sprintf("tcp dport %d in", p), with(base(in, KindIPv4, ProtoTCP), func(s *Spec) { s.DPort = p }))
		add("ports", fmt.Sprintf("udp sport %d in", p), with(u4i, func(s *Spec) { s.SPort = p }))
		add("ports", fmt.Sprintf("tcp-ipv6 dport %d out", p), with(base(out, KindIPv6, ProtoTCP), func(s *Spec) { s.DPort = p }))
	}
	for _, p := range []uint16{21, 22, 23, 1023, 1024, 2048, 2049} {
		add("ports", fmt.Sprintf("sctp dport %d out", p), with(base(out, KindIPv4, ProtoSCTP), func(s *Spec) { s.DPort = p }))
		add("ports", fmt.Sprintf("udp sport %d out", p), with(u4o, func(s *Spec) { s.SPort = p }))
	}

	// Address edges, as destination of the guest's frames and as source
	// of the frames to it.
	for _, a := range AddrEdges {
		d := MACPeer
		switch {
		case a.Equal(net.IPv4bcast):
			d = MACBcast
		case a.IsMulticast():
			d = MACMcast4
		}
		add("addr", fmt.Sprintf("to %s", a), with(u4o, func(s *Spec) { s.DstIP, s.Dst = a, d }))
		if !a.IsMulticast() && !a.Equal(net.IPv4bcast) {
			add("addr", fmt.Sprintf("from %s", a), with(u4i, func(s *Spec) { s.SrcIP = a }))
		}
	}
	for _, a := range []string{"fd77::f", "fd77::10", "fd77::1f", "fd77::20", "fd78::1", "fe80::1"} {
		add("addr", fmt.Sprintf("to %s", a), with(u6o, func(s *Spec) { s.DstIP = net.ParseIP(a) }))
	}

	// TOS / traffic class.
	for _, t := range TOSValues {
		add("tos", fmt.Sprintf("ipv4 tos %#02x out", t), with(u4o, func(s *Spec) { s.TOS = t }))
		add("tos", fmt.Sprintf("ipv6 tclass %#02x out", t), with(u6o, func(s *Spec) { s.TOS = t }))
	}
	add("tos", "ipv4 tos 0x28 in", with(u4i, func(s *Spec) { s.TOS = 0x28 }))

	// TCP flag combinations and options.
	t4o, t4i := base(out, KindIPv4, ProtoTCP), base(in, KindIPv4, ProtoTCP)
	for _, f := range []uint8{SYN, SYN | ACK, ACK, FIN | ACK, RST, RST | ACK, PSH | ACK, URG | ACK, 0,
		FIN | SYN | RST | PSH | ACK | URG, FIN | PSH | URG, SYN | ECE | CWR, SYN | FIN, FIN} {
		add("tcpflags", fmt.Sprintf("%s out", flagString(f)), with(t4o, func(s *Spec) { s.Flags = f }))
		add("tcpflags", fmt.Sprintf("%s in", flagString(f)), with(t4i, func(s *Spec) { s.Flags = f }))
	}
	for _, o := range [][]byte{{2, 4, 5, 0xb4}, {4, 2}, {3, 3, 7}, {8, 10, 0, 0, 0, 1, 0, 0, 0, 0}, {1, 1, 0x1e, 2}} {
		add("tcpopts", fmt.Sprintf("options %x out", o), with(t4o, func(s *Spec) { s.TCPOpts = o }))
	}

	// Request/reply sequences for stateful rules.
	seq := func(name string, first Spec, more ...func(Spec) Spec) {
		specs := []Spec{first}
		for _, m := range more {
			specs = append(specs, m(specs[len(specs)-1]))
		}
		add("sequence", name, specs...)
	}
	reply := func(s Spec) Spec { return s.Reply() }
	ack := func(s Spec) Spec { r := s.Reply(); r.Flags = ACK; return r }
	seq("udp 53 request, reply", u4o, reply)
	seq("udp 53 request, reply, second request", u4o, reply, reply)
	seq("tcp 80 handshake from the guest", t4o, reply, ack)
	seq("tcp 22 handshake to the guest", with(t4i, func(s *Spec) { s.DPort = 22 }), reply, ack)
	seq("tcp 23 handshake to the guest", with(t4i, func(s *Spec) { s.DPort = 23 }), reply)
	seq("tcp 8080 handshake from the guest", with(t4o, func(s *Spec) { s.DPort = 8080 }), reply, ack)
	seq("icmp echo from the guest", icmp4(out, 8, 0), reply)
	seq("icmp echo to the guest", icmp4(in, 8, 0), reply)
	seq("icmpv6 echo from the guest", icmp6(out, 128), reply)
	seq("udp-ipv6 53 request, reply", u6o, reply)
	seq("tcp-ipv6 80 handshake", base(out, KindIPv6, ProtoTCP), reply, ack)
	seq("udp 53 request to the guest, reply", with(u4i, func(s *Spec) { s.SPort, s.DPort = 40000, 53 }), reply)
	seq("sctp init from the guest, answer", base(out, KindIPv4, ProtoSCTP), reply)
	seq("esp both ways", base(out, KindIPv4, ProtoESP), reply)
	// A SYN,ACK acknowledging data the guest never sent: nf_conntrack's
	// window tracking calls it INVALID, and the guest's ACK after it too
	// (KnownDivergences: tcp-window). Its own source port marks it.
	unsent := func(s Spec) Spec { r := s.Reply(); r.TCPAck += 4000; return r }
	seq("tcp 80 SYN,ACK acknowledging unsent data", with(t4o, func(s *Spec) { s.SPort = WindowPort }), unsent, ack)
	add("sequence", "SYN,ACK with no SYN before", with(t4i, func(s *Spec) { s.Flags = SYN | ACK }))
	add("sequence", "udp reply with no request", u4i)
	return c
}

// WindowPort is the guest's TCP port in the case whose SYN,ACK
// acknowledges unsent data (KnownDivergences: tcp-window).
const WindowPort = 40999

// Random returns n seeded random cases: frames whose fields are drawn from
// the same pools as Fixed (roles, edges, protocols), in random combinations.
// The same seed gives the same cases.
func Random(seed uint64, n int) Corpus {
	r := rand.New(rand.NewPCG(seed, 0x6e77627066))
	pick := func(n int) int { return r.IntN(n) }
	var c Corpus
	for i := range n {
		dir := maps.Dir(pick(2))
		var s Spec
		switch k := pick(100); {
		case k < 40:
			protos := []uint8{ProtoTCP, ProtoTCP, ProtoUDP, ProtoUDP, ProtoUDPLite, ProtoSCTP, ProtoESP, ProtoAH, ProtoICMP, ProtoIGMP, ProtoGRE}
			s = base(dir, KindIPv4, protos[pick(len(protos))])
			if pick(3) == 0 {
				a := AddrEdges[pick(len(AddrEdges))]
				if dir == maps.DirOut {
					s.DstIP = a
				} else if !a.IsMulticast() && !a.Equal(net.IPv4bcast) {
					s.SrcIP = a
				}
			}
			if pick(6) == 0 {
				if dir == maps.DirOut {
					s.SrcIP = []net.IP{SpoofIP, net.IPv4zero, ip4(10, 77, 0, 17)}[pick(3)]
				} else {
					s.DstIP = SpoofIP
				}
			}
			if s.DstIP.IsMulticast() || s.Proto == ProtoIGMP {
				if !s.DstIP.IsMulticast() {
					s.DstIP = ip4(224, 0, 0, 22)
				}
				s.Dst = MACMcast4
			} else if s.DstIP.Equal(net.IPv4bcast) {
				s.Dst = MACBcast
			}
		case k < 60:
			protos := []uint8{ProtoTCP, ProtoUDP, ProtoUDP, ProtoUDPLite, ProtoSCTP, ProtoESP, ProtoAH, ProtoICMPv6, ProtoICMPv6, ProtoGRE}
			s = base(dir, KindIPv6, protos[pick(len(protos))])
			if pick(4) == 0 {
				s.Ext = [][]uint8{{0}, {60}, {43}, {44}, {0, 60}}[pick(5)]
			}
			if pick(5) == 0 {
				a := []net.IP{SpoofIPv6, LinkLocal, net.ParseIP("fd77::1f"), net.ParseIP("fd77::20")}[pick(4)]
				if dir == maps.DirOut {
					s.SrcIP = a
				} else {
					s.DstIP = a
				}
			}
			if s.Proto == ProtoICMPv6 {
				s.Type = []uint8{1, 2, 128, 129, 133, 134, 135, 136, 143}[pick(9)]
				s.Code = uint8(pick(3))
			}
		case k < 75:
			s = arpSpec(dir, uint16(1+pick(2)))
			if pick(3) == 0 {
				s.Op = uint16([]int{3, 4, 8, 9}[pick(4)])
			}
			if pick(3) == 0 {
				s.SPA = []net.IP{SpoofIP, net.IPv4zero, ip4(10, 77, 0, 17), GuestIP, PeerIP}[pick(5)]
			}
			if pick(4) == 0 {
				s.SHA = []MAC{MACSpoof, MACOther, MACGuest, MACPeer}[pick(4)]
			}
			if pick(4) == 0 {
				s.TPA = []net.IP{GuestIP, SpoofIP, ip4(10, 77, 0, 31)}[pick(3)]
			}
			if pick(8) == 0 {
				s.HType = 6
			}
			if pick(3) == 0 {
				s.Dst = []MAC{MACPeer, MACGuest, MACOther}[pick(3)]
			}
		case k < 80:
			s = rarpSpec(dir, []MAC{MACGuest, MACOther, MACPeer}[pick(3)])
			s.Op = uint16(3 + pick(2))
		case k < 86:
			s = stpSpec(dir, [][]byte{bpduConfig, bpduTC, bpduTCN, bpduRST}[pick(4)])
		default:
			s = rawSpec(dir, []uint16{0x0835, 0x88b5, 0x8863, 0x88cc, 0x0600, 0x05dc, 0x0800, 0x8100, 0x9000}[pick(9)])
		}
		if s.Kind == KindIPv4 || s.Kind == KindIPv6 {
			switch s.Proto {
			case ProtoTCP, ProtoUDP, ProtoUDPLite, ProtoSCTP:
				port := func() uint16 {
					if pick(4) == 0 {
						return uint16(r.Uint32())
					}
					return PortEdges[pick(len(PortEdges))]
				}
				s.SPort, s.DPort = port(), port()
				if s.Proto == ProtoTCP {
					s.Flags = uint8(r.Uint32())
					if pick(2) == 0 {
						s.Flags = []uint8{SYN, SYN | ACK, ACK, PSH | ACK, FIN | ACK, RST}[pick(6)]
					}
					if pick(5) == 0 {
						s.TCPOpts = [][]byte{{2, 4, 5, 0xb4}, {4, 2}, {3, 3, 7}}[pick(3)]
					}
				}
			case ProtoICMP:
				s.Type, s.Code = []uint8{0, 3, 8, 11, 13}[pick(5)], uint8(pick(5))
			}
			if pick(4) == 0 {
				s.TOS = TOSValues[pick(len(TOSValues))]
			}
		}
		// Source and destination roles: the source never a group address.
		if pick(8) == 0 && s.Kind != KindSTP {
			if dir == maps.DirOut {
				s.Src = []MAC{MACSpoof, MACPeer}[pick(2)]
			} else {
				s.Src = MACSpoof
			}
		}
		if pick(8) == 0 && s.Kind != KindSTP {
			s.Dst = []MAC{MACBcast, MACMcast4, MACMcast6, MACOther, MACLLDP}[pick(5)]
		}
		if pick(10) == 0 && s.Kind != KindSTP {
			s.HasVLAN, s.VLAN = true, []uint16{42, 10, 0, 4095}[pick(4)]
		}
		s.Seq = uint32(i)
		c = append(c, Case{Group: "random", Name: fmt.Sprintf("random %d", i), Specs: []Spec{s}})
	}
	return c
}
