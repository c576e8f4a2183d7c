// SPDX-License-Identifier: Apache-2.0

package conformance

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/maps"
)

// Addresses the corpus uses. The checklist filters are written against the
// same values, so that frames land on both sides of every edge.
var (
	GuestIP   = net.IPv4(10, 77, 0, 5).To4()
	PeerIP    = net.IPv4(10, 77, 0, 1).To4()
	SpoofIP   = net.IPv4(10, 77, 0, 99).To4()
	DHCPIP    = net.IPv4(10, 77, 0, 2).To4()
	GuestIPv6 = net.ParseIP("fd77::5")
	PeerIPv6  = net.ParseIP("fd77::1")
	SpoofIPv6 = net.ParseIP("fd77::99")
	LinkLocal = net.ParseIP("fe80::5054:ff:fe77:5")

	SpoofMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0xee, 0xee, 0xee}
	OtherMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0xdd, 0xdd, 0xdd}
)

// MAC is a role a frame's MAC address plays; Net resolves it.
type MAC uint8

// MAC roles.
const (
	MACGuest  MAC = iota // the VM (the binding's MAC)
	MACPeer              // the host at the far end of the bridge
	MACSpoof             // a unicast MAC that is nobody's: spoofed source
	MACOther             // another unicast MAC: flooded, as to another guest
	MACBcast             // ff:ff:ff:ff:ff:ff
	MACMcast4            // 01:00:5e:00:00:01
	MACMcast6            // 33:33:00:00:00:01
	MACSTP               // 01:80:c2:00:00:00, the bridge group address
	MACLLDP              // 01:80:c2:00:00:0e
	MACZero              // 00:00:00:00:00:00 (ARP target, never a source)
)

var macNames = [...]string{"guest", "peer", "spoof", "other", "bcast", "mcast4", "mcast6", "stp", "lldp", "zero"}

// String names the role.
func (m MAC) String() string {
	if int(m) < len(macNames) {
		return macNames[m]
	}
	return fmt.Sprintf("mac%d", m)
}

// Net is the addressing of one topology: the guest's MAC (the binding's) and
// the peer's (the far end of the bridge).
type Net struct {
	Guest, Peer net.HardwareAddr
}

// MAC resolves a role.
func (n Net) MAC(m MAC) net.HardwareAddr {
	switch m {
	case MACGuest:
		return n.Guest
	case MACPeer:
		return n.Peer
	case MACSpoof:
		return SpoofMAC
	case MACOther:
		return OtherMAC
	case MACBcast:
		return net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	case MACMcast4:
		return net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}
	case MACMcast6:
		return net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}
	case MACSTP:
		return net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}
	case MACLLDP:
		return net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}
	}
	return make(net.HardwareAddr, 6)
}

// Kind is what a Spec carries after the Ethernet (and VLAN) header.
type Kind uint8

// Frame kinds.
const (
	KindRaw  Kind = iota // EtherType Spec.EtherType, then the tag
	KindARP              // ARP (0x0806)
	KindRARP             // RARP (0x8035), same body as ARP
	KindIPv4             // IPv4 with Spec.Proto
	KindIPv6             // IPv6 with Spec.Ext headers and Spec.Proto
	KindSTP              // 802.3 + LLC 42/42/03 + Spec.BPDU
)

// IP protocol numbers the corpus uses.
const (
	ProtoICMP    = 1
	ProtoIGMP    = 2
	ProtoTCP     = 6
	ProtoUDP     = 17
	ProtoGRE     = 47
	ProtoESP     = 50
	ProtoAH      = 51
	ProtoICMPv6  = 58
	ProtoSCTP    = 132
	ProtoUDPLite = 136
)

// TCP flag bits.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	PSH = 0x08
	ACK = 0x10
	URG = 0x20
	ECE = 0x40
	CWR = 0x80
)

// Spec describes a frame by its fields, independent of the topology's MACs;
// Build turns it into bytes. Zero values are valid: an IPv4 Spec with no
// addresses is sent from 0.0.0.0 to 0.0.0.0.
type Spec struct {
	Dir      maps.Dir
	Src, Dst MAC
	VLAN     uint16 // 802.1Q tag with this TCI when HasVLAN
	HasVLAN  bool
	Kind     Kind

	// KindRaw: the EtherType (or 802.3 length).
	EtherType uint16

	// KindARP, KindRARP.
	HType, PType uint16 // 0 means 1 and 0x0800
	Op           uint16
	SHA, THA     MAC
	SPA, TPA     net.IP

	// KindIPv4, KindIPv6.
	SrcIP, DstIP net.IP
	TOS          uint8 // IPv4 TOS, IPv6 traffic class
	Proto        uint8
	Ext          []uint8 // IPv6 extension headers, in order (0, 43, 44, 60)
	SPort, DPort uint16  // TCP, UDP, UDP-Lite, SCTP
	Flags        uint8   // TCP
	TCPOpts      []byte  // TCP option bytes, padded to 4 with no-ops
	Type, Code   uint8   // ICMP, ICMPv6, IGMP type
	Seq          uint32  // TCP sequence / ack base, ICMP echo id+seq
	// TCPSeq and TCPAck, with TCPNumbered, are the TCP sequence and
	// acknowledgement numbers; without, they are 1000+Seq and 5000+Seq
	// (the ack only with ACK). Reply numbers its TCP answers so that
	// they acknowledge what they answer: conntrack's window tracking
	// calls an answer acknowledging unsent data INVALID.
	TCPSeq, TCPAck uint32
	TCPNumbered    bool

	// KindSTP: the BPDU from its protocol identifier on.
	BPDU []byte
}

// Build returns the frame's bytes for topology n, with tag (unique per
// frame, so a late copy is never taken for another frame) in its payload.
// Frames are padded to the Ethernet minimum of 60 bytes.
func (s Spec) Build(n Net, tag string) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: n.MAC(s.Src), DstMAC: n.MAC(s.Dst)}
	var inner layers.EthernetType
	var body []gopacket.SerializableLayer
	payload := gopacket.Payload(tag)
	switch s.Kind {
	case KindRaw:
		inner = layers.EthernetType(s.EtherType)
		body = []gopacket.SerializableLayer{payload}
	case KindARP, KindRARP:
		inner = layers.EthernetTypeARP
		if s.Kind == KindRARP {
			inner = layers.EthernetType(0x8035)
		}
		ht, pt := s.HType, s.PType
		if ht == 0 {
			ht = 1
		}
		if pt == 0 {
			pt = 0x0800
		}
		a := make([]byte, 28)
		binary.BigEndian.PutUint16(a[0:], ht)
		binary.BigEndian.PutUint16(a[2:], pt)
		a[4], a[5] = 6, 4
		binary.BigEndian.PutUint16(a[6:], s.Op)
		copy(a[8:], n.MAC(s.SHA))
		copy(a[14:], v4(s.SPA))
		copy(a[18:], n.MAC(s.THA))
		copy(a[24:], v4(s.TPA))
		body = []gopacket.SerializableLayer{gopacket.Payload(a), payload}
	case KindIPv4:
		inner = layers.EthernetTypeIPv4
		l4, err := s.l4(v4(s.SrcIP), v4(s.DstIP), tag)
		if err != nil {
			return nil, err
		}
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, TOS: s.TOS, Protocol: layers.IPProtocol(s.Proto),
			Flags: layers.IPv4DontFragment, SrcIP: v4(s.SrcIP), DstIP: v4(s.DstIP)}
		body = []gopacket.SerializableLayer{ip, gopacket.Payload(l4)}
	case KindIPv6:
		inner = layers.EthernetTypeIPv6
		l4, err := s.l4(v6(s.SrcIP), v6(s.DstIP), tag)
		if err != nil {
			return nil, err
		}
		next := s.Proto
		ext := []byte{}
		for i := len(s.Ext) - 1; i >= 0; i-- {
			ext = append(extHeader(s.Ext[i], next), ext...)
			next = s.Ext[i]
		}
		ip := &layers.IPv6{Version: 6, HopLimit: 64, TrafficClass: s.TOS, NextHeader: layers.IPProtocol(next),
			SrcIP: v6(s.SrcIP), DstIP: v6(s.DstIP)}
		body = []gopacket.SerializableLayer{ip, gopacket.Payload(append(ext, l4...))}
	case KindSTP:
		llc := append([]byte{0x42, 0x42, 0x03}, s.BPDU...)
		llc = append(llc, tag...)
		b := make([]byte, 14, 14+len(llc))
		copy(b, n.MAC(s.Dst))
		copy(b[6:], n.MAC(s.Src))
		binary.BigEndian.PutUint16(b[12:], uint16(len(llc)))
		b = append(b, llc...)
		if s.HasVLAN {
			return nil, fmt.Errorf("build %s: a tagged STP frame is not supported", s)
		}
		return pad(b), nil
	default:
		return nil, fmt.Errorf("build: unknown kind %d", s.Kind)
	}
	ls := []gopacket.SerializableLayer{eth}
	if s.HasVLAN {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{Priority: uint8(s.VLAN >> 13), VLANIdentifier: s.VLAN & 0x0fff, Type: inner})
	} else {
		eth.EthernetType = inner
	}
	ls = append(ls, body...)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		return nil, fmt.Errorf("build %s: %w", s, err)
	}
	return pad(buf.Bytes()), nil
}

// pad copies b, padded with zeros to 60 bytes.
func pad(b []byte) []byte {
	out := append([]byte(nil), b...)
	if len(out) < 60 {
		out = append(out, make([]byte, 60-len(out))...)
	}
	return out
}

func v4(ip net.IP) net.IP {
	if ip == nil {
		return net.IPv4zero.To4()
	}
	return ip.To4()
}

func v6(ip net.IP) net.IP {
	if ip == nil {
		return net.IPv6zero
	}
	return ip.To16()
}

// extHeader returns an IPv6 extension header of type typ followed by
// next: hop-by-hop and destination options hold a PadN option, a routing
// header is type 0 with no segments left (so no node acts on it), a fragment
// header is an atomic fragment (offset 0, no more fragments), an
// authentication header has a 4-byte ICV (16 bytes in all).
func extHeader(typ, next uint8) []byte {
	h := make([]byte, 8)
	h[0] = next
	switch typ {
	case ProtoAH:
		h = make([]byte, 16)
		h[0], h[1] = next, 2                      // length in 4-byte units, minus 2
		binary.BigEndian.PutUint32(h[4:], 0x3000) // SPI
		binary.BigEndian.PutUint32(h[8:], 1)      // sequence
	case 0, 60:
		h[2], h[3] = 1, 4 // PadN, 4 bytes
	case 43:
		h[2] = 0 // routing type 0, segments left 0
	case 44:
		binary.BigEndian.PutUint32(h[4:], 0x6e776266) // identification
	}
	return h
}

// l4 builds the L4 header and payload with a correct checksum for the
// pseudo-header of src and dst (4 or 16 bytes).
func (s Spec) l4(src, dst net.IP, tag string) ([]byte, error) {
	data := []byte(tag)
	var b []byte
	csum := -1 // offset of a pseudo-header checksum
	switch s.Proto {
	case ProtoTCP:
		opts := append([]byte(nil), s.TCPOpts...)
		for len(opts)%4 != 0 {
			opts = append(opts, 1)
		}
		b = make([]byte, 20+len(opts))
		binary.BigEndian.PutUint16(b[0:], s.SPort)
		binary.BigEndian.PutUint16(b[2:], s.DPort)
		seq, ack := 1000+s.Seq, 5000+s.Seq
		if s.TCPNumbered {
			seq, ack = s.TCPSeq, s.TCPAck
		}
		binary.BigEndian.PutUint32(b[4:], seq)
		if s.Flags&ACK != 0 {
			binary.BigEndian.PutUint32(b[8:], ack)
		}
		b[12] = byte((20 + len(opts)) / 4 << 4)
		b[13] = s.Flags
		binary.BigEndian.PutUint16(b[14:], 64240)
		copy(b[20:], opts)
		b = append(b, data...)
		csum = 16
	case ProtoUDP, ProtoUDPLite:
		b = make([]byte, 8, 8+len(data))
		binary.BigEndian.PutUint16(b[0:], s.SPort)
		binary.BigEndian.PutUint16(b[2:], s.DPort)
		b = append(b, data...)
		if s.Proto == ProtoUDP {
			binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
		} else {
			binary.BigEndian.PutUint16(b[4:], 0) // checksum coverage: all
		}
		csum = 6
	case ProtoSCTP:
		// Common header and one INIT chunk (RFC 9260) whose optional
		// parameter 0xbf77 (top bits 10: skip it, go on, no report)
		// carries the tag; CRC32c checksum. INIT must be the packet's
		// only chunk, or conntrack calls the packet invalid.
		param := make([]byte, 4, 4+len(data)+3)
		binary.BigEndian.PutUint16(param[0:], 0xbf77)
		param = append(param, data...)
		binary.BigEndian.PutUint16(param[2:], uint16(len(param)))
		for len(param)%4 != 0 {
			param = append(param, 0)
		}
		b = make([]byte, 12+20, 12+20+len(param))
		binary.BigEndian.PutUint16(b[0:], s.SPort)
		binary.BigEndian.PutUint16(b[2:], s.DPort)
		b[12] = 1                                            // INIT
		binary.BigEndian.PutUint32(b[16:], 0x6e770000+s.Seq) // initiate tag
		binary.BigEndian.PutUint32(b[20:], 65536)            // a_rwnd
		binary.BigEndian.PutUint16(b[24:], 1)                // outbound streams
		binary.BigEndian.PutUint16(b[26:], 1)                // inbound streams
		binary.BigEndian.PutUint32(b[28:], 1)                // initial TSN
		b = append(b, param...)
		binary.BigEndian.PutUint16(b[14:], uint16(len(b)-12))
		binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	case ProtoICMP, ProtoICMPv6:
		b = make([]byte, 8, 8+len(data))
		b[0], b[1] = s.Type, s.Code
		binary.BigEndian.PutUint32(b[4:], 0x6e770000|s.Seq&0xffff)
		b = append(b, data...)
		if s.Proto == ProtoICMP {
			binary.BigEndian.PutUint16(b[2:], checksum(0, b))
		} else {
			csum = 2
		}
	case ProtoIGMP:
		b = make([]byte, 8)
		b[0] = s.Type
		copy(b[4:], v4(s.DstIP))
		b = append(b, data...)
		binary.BigEndian.PutUint16(b[2:], checksum(0, b))
	case ProtoESP:
		b = make([]byte, 8, 8+len(data))
		binary.BigEndian.PutUint32(b[0:], 0x1000+s.Seq) // SPI
		binary.BigEndian.PutUint32(b[4:], 1)            // sequence
		b = append(b, data...)
	case ProtoAH:
		// Next header 59 (none), 12-byte ICV: payload length (24/4)-2.
		b = make([]byte, 24)
		b[0], b[1] = 59, 4
		binary.BigEndian.PutUint32(b[4:], 0x2000+s.Seq)
		binary.BigEndian.PutUint32(b[8:], 1)
		b = append(b, data...)
	default:
		b = data
	}
	if csum >= 0 {
		var ph []byte
		ph = append(ph, src...)
		ph = append(ph, dst...)
		if len(src) == 4 {
			ph = append(ph, 0, s.Proto, byte(len(b)>>8), byte(len(b)))
		} else {
			ph = append(ph, 0, 0, byte(len(b)>>8), byte(len(b)), 0, 0, 0, s.Proto)
		}
		c := checksum(checksumSum(0, ph), b)
		if c == 0 && s.Proto == ProtoUDP {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(b[csum:], c)
	}
	return b, nil
}

// checksumSum adds b to the running one's-complement sum.
func checksumSum(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

// checksum is the Internet checksum of b on top of the partial sum.
func checksum(sum uint32, b []byte) uint16 {
	sum = checksumSum(sum, b)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// String describes the frame in terms of roles, never of concrete MACs, so
// the report is the same for every topology.
func (s Spec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s>%s", s.Dir, s.Src, s.Dst)
	if s.HasVLAN {
		fmt.Fprintf(&b, " vlan %d", s.VLAN&0xfff)
		if s.VLAN>>13 != 0 {
			fmt.Fprintf(&b, " pcp %d", s.VLAN>>13)
		}
	}
	switch s.Kind {
	case KindRaw:
		fmt.Fprintf(&b, " type %#04x", s.EtherType)
	case KindARP, KindRARP:
		name := "arp"
		if s.Kind == KindRARP {
			name = "rarp"
		}
		fmt.Fprintf(&b, " %s op %d sha %s spa %s tha %s tpa %s", name, s.Op, s.SHA, v4(s.SPA), s.THA, v4(s.TPA))
		if s.HType != 0 && s.HType != 1 {
			fmt.Fprintf(&b, " htype %d", s.HType)
		}
		if s.PType != 0 && s.PType != 0x0800 {
			fmt.Fprintf(&b, " ptype %#04x", s.PType)
		}
	case KindIPv4, KindIPv6:
		ipn := "ipv4"
		src, dst := v4(s.SrcIP), v4(s.DstIP)
		if s.Kind == KindIPv6 {
			ipn, src, dst = "ipv6", v6(s.SrcIP), v6(s.DstIP)
		}
		fmt.Fprintf(&b, " %s %s>%s", ipn, src, dst)
		if s.TOS != 0 {
			fmt.Fprintf(&b, " tos %#02x", s.TOS)
		}
		for _, e := range s.Ext {
			fmt.Fprintf(&b, " ext %d", e)
		}
		switch s.Proto {
		case ProtoTCP:
			fmt.Fprintf(&b, " tcp %d>%d %s", s.SPort, s.DPort, flagString(s.Flags))
			if s.TCPNumbered {
				fmt.Fprintf(&b, " seq %d", s.TCPSeq)
				if s.Flags&ACK != 0 {
					fmt.Fprintf(&b, " ack %d", s.TCPAck)
				}
			}
			if len(s.TCPOpts) > 0 {
				fmt.Fprintf(&b, " opts %x", s.TCPOpts)
			}
		case ProtoUDP, ProtoUDPLite, ProtoSCTP:
			fmt.Fprintf(&b, " %s %d>%d", protoName(s.Proto), s.SPort, s.DPort)
		case ProtoICMP, ProtoICMPv6, ProtoIGMP:
			fmt.Fprintf(&b, " %s %d/%d", protoName(s.Proto), s.Type, s.Code)
		default:
			fmt.Fprintf(&b, " %s", protoName(s.Proto))
		}
	case KindSTP:
		fmt.Fprintf(&b, " stp % x", s.BPDU[:min(len(s.BPDU), 8)])
		if len(s.BPDU) > 8 {
			b.WriteString(" …")
		}
	}
	return b.String()
}

func protoName(p uint8) string {
	switch p {
	case ProtoICMP:
		return "icmp"
	case ProtoIGMP:
		return "igmp"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoGRE:
		return "gre"
	case ProtoESP:
		return "esp"
	case ProtoAH:
		return "ah"
	case ProtoICMPv6:
		return "icmpv6"
	case ProtoSCTP:
		return "sctp"
	case ProtoUDPLite:
		return "udplite"
	}
	return fmt.Sprintf("proto %d", p)
}

func flagString(f uint8) string {
	if f == 0 {
		return "[none]"
	}
	names := []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}
	var parts []string
	for i, n := range names {
		if f&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Reply returns the frame that answers s: directions, MACs, addresses and
// ports swapped; TCP SYN answered with SYN,ACK and anything else with ACK,
// numbered as a TCP peer would (the answer's sequence is what s
// acknowledged, or a fresh 7000+Seq, and it acknowledges s's sequence,
// plus one for a SYN or FIN); ICMP echo request (8, 128) answered with
// echo reply (0, 129).
func (s Spec) Reply() Spec {
	r := s
	r.Ext = append([]uint8(nil), s.Ext...)
	r.Dir = maps.DirIn
	if s.Dir == maps.DirIn {
		r.Dir = maps.DirOut
	}
	r.Src, r.Dst = s.Dst, s.Src
	if r.Src == MACBcast || r.Src == MACMcast4 || r.Src == MACMcast6 {
		r.Src = MACPeer
		if s.Dir == maps.DirIn {
			r.Src = MACGuest
		}
	}
	r.SrcIP, r.DstIP = s.DstIP, s.SrcIP
	r.SPort, r.DPort = s.DPort, s.SPort
	if s.Proto == ProtoTCP {
		seq, ack := 1000+s.Seq, 5000+s.Seq
		if s.TCPNumbered {
			seq, ack = s.TCPSeq, s.TCPAck
		}
		r.TCPNumbered, r.TCPSeq, r.TCPAck = true, 7000+s.Seq, seq
		if s.Flags&ACK != 0 {
			r.TCPSeq = ack
		}
		if s.Flags&(SYN|FIN) != 0 {
			r.TCPAck++
		}
	}
	switch {
	case s.Proto == ProtoTCP && s.Flags&SYN != 0 && s.Flags&ACK == 0:
		r.Flags = SYN | ACK
	case s.Proto == ProtoTCP:
		r.Flags = ACK
	case s.Proto == ProtoICMP && s.Type == 8:
		r.Type = 0
	case s.Proto == ProtoICMPv6 && s.Type == 128:
		r.Type = 129
	}
	return r
}

// Defragmented returns the frame the kernel passes on for an untagged IPv6
// frame carrying an atomic fragment header (offset 0, no more fragments),
// and nil for any other frame. Once connection tracking is in use, bridge
// netfilter defragments IPv6 before conntrack (nf_ct_frag6_gather): it
// "reassembles" a lone atomic fragment and forwards the packet without its
// fragment header (the previous header names the fragment's next header,
// the payload length drops by 8). The packet is delivered all the same.
func Defragmented(frame []byte) []byte {
	const eth, ipv6 = 14, 40
	if len(frame) < eth+ipv6 || binary.BigEndian.Uint16(frame[12:]) != 0x86dd {
		return nil
	}
	nhOff, off := eth+6, eth+ipv6 // where the next header is named; the header
	for range 8 {
		nh := frame[nhOff]
		var hlen int
		switch nh {
		case 0, 43, 60:
			if len(frame) < off+2 {
				return nil
			}
			hlen = (int(frame[off+1]) + 1) * 8
		case ProtoAH:
			if len(frame) < off+2 {
				return nil
			}
			hlen = (int(frame[off+1]) + 2) * 4
		case 44:
			if len(frame) < off+8 || binary.BigEndian.Uint16(frame[off+2:])&0xfff9 != 0 {
				return nil // a real fragment, not an atomic one
			}
			out := make([]byte, 0, len(frame)-8)
			out = append(out, frame[:off]...)
			out = append(out, frame[off+8:]...)
			out[nhOff] = frame[off]
			binary.BigEndian.PutUint16(out[eth+4:], binary.BigEndian.Uint16(frame[eth+4:])-8)
			return out
		default:
			return nil
		}
		nhOff, off = off, off+hlen
	}
	return nil
}
