// SPDX-License-Identifier: Apache-2.0

package eval

import (
	"encoding/binary"

	"github.com/nwbpf/nwbpf/maps"
)

// Ethertypes, IP protocol numbers and IPv6 extension headers the parser
// knows.
const (
	ethHdrLen = 14

	ethTypeIPv4   = 0x0800
	ethTypeARP    = 0x0806
	ethTypeRARP   = 0x8035
	ethTypeIPv6   = 0x86dd
	ethType8021Q  = 0x8100
	ethType8021AD = 0x88a8

	protoICMP    = 1
	protoTCP     = 6
	protoUDP     = 17
	protoDCCP    = 33
	protoICMPv6  = 58
	protoSCTP    = 132
	protoUDPLite = 136

	ip6HopByHop = 0
	ip6Routing  = 43
	ip6Fragment = 44
	ip6AH       = 51
	ip6DstOpts  = 60

	// maxIP6ExtHeaders bounds the IPv6 extension header walk: a chain
	// with more headers than this leaves L4PROTO absent.
	maxIP6ExtHeaders = 8

	// l4MinLen is how many bytes of the L4 header must be in the frame
	// for ports (TCP, UDP, UDP-Lite, DCCP, SCTP) and for ICMP type and
	// code, as ebt_ip/ebt_ip6 read them.
	l4MinLen = 4
	// tcpHdrLen is the fixed TCP header, needed for TCP_FLAGS.
	tcpHdrLen = 20
	// ip4HdrLen and ip6HdrLen are the fixed IP headers.
	ip4HdrLen = 20
	ip6HdrLen = 40
	// arpHdrLen is the fixed ARP header (htype, ptype, hlen, plen, op).
	arpHdrLen = 8
	// stpHdrLen is ebt_stp's BPDU header: LLC 42 42 03, protocol id
	// 00 00 and the version byte, which ebt_stp calls the type.
	stpHdrLen = 6
	// stpConfigEnd is where ebt_stp's configuration body ends, counted
	// from the LLC header: its 6-byte header plus a 31-byte body read one
	// byte early (see bpf/nwbpf.h).
	stpConfigEnd = stpHdrLen + 31
)

var stpHeader = [stpHdrLen]byte{0x42, 0x42, 0x03, 0x00, 0x00, 0x00}

// Meta is the skb metadata the classifier sees next to the frame's bytes.
type Meta struct {
	// VlanPresent says an outer VLAN tag was moved out of the data into
	// the skb (skb_vlan_tag_present), as the receive path always does
	// before TC ingress. The frame passed to Parse then has no such tag.
	VlanPresent bool
	// VlanTCI is the tag's TCI (PCP, DEI, VID), valid with VlanPresent.
	VlanTCI uint16
	// VlanProto is the tag's protocol (0x8100 or 0x88a8), valid with
	// VlanPresent. No field depends on it: ebtables sees 0x8100 either way.
	VlanProto uint16
}

// Packet is a parsed frame: the value and presence of every field of enum
// nwf_field except the conntrack ones, which Eval takes from its CT argument.
type Packet struct {
	val [maps.FieldMax]maps.U128
	has [maps.FieldMax]bool
	// tcpOpts has bit k set when an option of kind k is in the TCP
	// option list; hasTCPOpts says the list could be read (see Parse).
	tcpOpts    [4]uint64
	hasTCPOpts bool
}

func (p *Packet) set(f maps.Field, v uint64) {
	p.val[f] = maps.U128{0, v}
	p.has[f] = true
}

// setBytes stores a big-endian byte string of up to 16 bytes.
func (p *Packet) setBytes(f maps.Field, b []byte) {
	var v maps.U128
	for _, c := range b {
		v[0] = v[0]<<8 | v[1]>>56
		v[1] = v[1]<<8 | uint64(c)
	}
	p.val[f] = v
	p.has[f] = true
}

// FieldValue returns a field's value and whether the frame carries it. The
// conntrack fields (maps.FCTState, maps.FCTDir) are never in a Packet: they
// come from Eval's CT argument, so FieldValue reports them absent, as it
// does maps.FNone and unknown fields.
func FieldValue(pkt *Packet, field maps.Field) (maps.U128, bool) {
	if pkt == nil || field >= maps.FieldMax || !pkt.has[field] {
		return maps.U128{}, false
	}
	return pkt.val[field], true
}

// TCPOption reports whether the TCP option list holds an option of the
// given kind (found) and whether the list could be read at all (ok); it is
// what NWF_OP_TCPOPT tests.
func TCPOption(pkt *Packet, kind uint8) (found, ok bool) {
	if pkt == nil || !pkt.hasTCPOpts {
		return false, false
	}
	return pkt.tcpOpts[kind/64]&(1<<(kind%64)) != 0, true
}

func be16(b []byte) uint64 { return uint64(binary.BigEndian.Uint16(b)) }
func be32(b []byte) uint64 { return uint64(binary.BigEndian.Uint32(b)) }

// Parse extracts the fields of a raw Ethernet frame (starting with the
// destination MAC) as bpf/nwbpf.h defines them. It never fails: a field the
// frame does not carry is absent. A frame shorter than an Ethernet header
// carries no field at all.
//
// Choices where the header leaves room (the BPF parser must agree):
//   - Tagged means md.VlanPresent, or an 802.1Q/802.1ad type field followed
//     by a complete 4-byte tag in the data. A type field of 0x8100/0x88a8
//     with the tag cut off is not tagged: ETHPROTO is that type field and
//     the VLAN fields are absent.
//   - The "Ethernet payload" STP looks at starts after the outer tag: after
//     the 14-byte header when the tag is in md, after 18 bytes when it is in
//     the data (the kernel's view once the tag is in skb metadata). STP is
//     parsed tagged or not and whatever the type/length field, as ebt_stp
//     does; TYPE is the byte after the 6-byte header, and the configuration
//     fields need the BPDU's 35 bytes after the LLC header.
//   - ARP: SHA and THA each need their own 6 bytes in the frame; THA sits
//     at 8 + 6 + PLEN (the frame's PLEN, as ebt_arp reads it). SPA, TPA and
//     GRAT need both SPA and TPA in the frame (ebt_arp reads both before
//     testing either).
//   - IPv4: only the ethertype says IPv4 (the version nibble is not checked,
//     as ebt_ip does not). An IHL below 5 leaves every L4 field absent.
//     Lengths are those of the frame, not the IP total length.
//   - IP_TOS is present for IPv4 only; DSCP for both.
//   - IPv6 extension headers (0, 43, 44, 51, 60) are skipped while each is
//     wholly in the frame, at most 8 of them; a ninth, or one cut off by the
//     end of the frame, leaves L4PROTO and every L4 field absent. Next header
//     59 (no next header) and 50 (ESP) are L4 protocols like any other. A
//     fragment header with a non-zero offset stops the walk: FRAG is 1,
//     L4PROTO is that header's next header field, no L4 field is present.
//   - Ports, ICMP type/code: 4 bytes of L4 header in the frame. ICMP means
//     protocol 1 under IPv4 and 58 under IPv6 only.
//   - TCP_FLAGS is byte 13 of the TCP header, all 8 bits (CWR, ECE too).
//   - TCP options (NWF_OP_TCPOPT) are readable when the 20-byte header is
//     there, its data offset is at least 5 and the whole option area
//     (doff*4 - 20 bytes) is in the frame; otherwise they are absent. The
//     list is walked from its start: every kind reached is present; kind 0
//     (end of list) ends the walk, kind 1 (no-op) is one byte, any other
//     kind is followed by a length byte, and a missing length byte or a
//     length below 2 ends the walk.
func Parse(frame []byte, md Meta) *Packet {
	p := &Packet{}
	if len(frame) < ethHdrLen {
		return p
	}
	p.setBytes(maps.FDstMAC, frame[0:6])
	p.setBytes(maps.FSrcMAC, frame[6:12])
	typ := be16(frame[12:14])
	payload := frame[ethHdrLen:]

	switch {
	case md.VlanPresent:
		p.set(maps.FEthProto, ethType8021Q)
		p.set(maps.FVlanID, uint64(md.VlanTCI&0x0fff))
		p.set(maps.FVlanEncap, typ)
	case (typ == ethType8021Q || typ == ethType8021AD) && len(payload) >= 4:
		p.set(maps.FEthProto, ethType8021Q)
		p.set(maps.FVlanID, be16(payload[0:2])&0x0fff)
		p.set(maps.FVlanEncap, be16(payload[2:4]))
		payload = payload[4:]
	default:
		p.set(maps.FEthProto, typ)
		switch typ {
		case ethTypeARP, ethTypeRARP:
			p.parseARP(payload)
		case ethTypeIPv4:
			p.parseIPv4(payload)
		case ethTypeIPv6:
			p.parseIPv6(payload)
		}
	}
	p.parseSTP(payload)
	return p
}

func (p *Packet) parseSTP(b []byte) {
	// ebt_stp compares its whole 6-byte header, "type" included, so
	// TYPE is always 0 when present and the body always follows.
	if len(b) < stpHdrLen || [stpHdrLen]byte(b[:stpHdrLen]) != stpHeader {
		return
	}
	p.set(maps.FStpType, uint64(b[stpHdrLen-1]))
	if len(b) < stpConfigEnd {
		return
	}
	c := b[stpHdrLen:stpConfigEnd] // ebt_stp's 31-byte body
	p.set(maps.FStpFlags, uint64(c[0]))
	p.set(maps.FStpRootPrio, be16(c[1:3]))
	p.setBytes(maps.FStpRootAddr, c[3:9])
	p.set(maps.FStpRootCost, be32(c[9:13]))
	p.set(maps.FStpSenderPrio, be16(c[13:15]))
	p.setBytes(maps.FStpSenderAddr, c[15:21])
	p.set(maps.FStpPort, be16(c[21:23]))
	p.set(maps.FStpMsgAge, be16(c[23:25]))
	p.set(maps.FStpMaxAge, be16(c[25:27]))
	p.set(maps.FStpHelloTime, be16(c[27:29]))
	p.set(maps.FStpForwardDelay, be16(c[29:31]))
}

func (p *Packet) parseARP(b []byte) {
	if len(b) < arpHdrLen {
		return
	}
	htype, ptype := be16(b[0:2]), be16(b[2:4])
	hlen, plen := int(b[4]), int(b[5])
	p.set(maps.FArpHType, htype)
	p.set(maps.FArpPType, ptype)
	p.set(maps.FArpOpcode, be16(b[6:8]))
	if hlen == 6 && htype == 1 {
		if len(b) >= arpHdrLen+6 {
			p.setBytes(maps.FArpSHA, b[arpHdrLen:arpHdrLen+6])
		}
		if tha := arpHdrLen + 6 + plen; len(b) >= tha+6 {
			p.setBytes(maps.FArpTHA, b[tha:tha+6])
		}
	}
	if plen == 4 && ptype == ethTypeIPv4 {
		spa := arpHdrLen + hlen
		tpa := arpHdrLen + 2*hlen + 4
		if len(b) >= tpa+4 {
			p.setBytes(maps.FArpSPA, b[spa:spa+4])
			p.setBytes(maps.FArpTPA, b[tpa:tpa+4])
			grat := uint64(0)
			if [4]byte(b[spa:spa+4]) == [4]byte(b[tpa:tpa+4]) {
				grat = 1
			}
			p.set(maps.FArpGrat, grat)
		}
	}
}

func (p *Packet) parseIPv4(b []byte) {
	if len(b) < ip4HdrLen {
		return
	}
	p.set(maps.FL3, 4)
	p.set(maps.FIPTos, uint64(b[1]))
	p.set(maps.FDSCP, uint64(b[1]>>2))
	p.setBytes(maps.FIP4Src, b[12:16])
	p.setBytes(maps.FIP4Dst, b[16:20])
	proto := b[9]
	p.set(maps.FL4Proto, uint64(proto))
	p.set(maps.FL34Proto, uint64(proto))
	nonFirst := be16(b[6:8])&0x1fff != 0
	if nonFirst {
		p.set(maps.FFrag, 1)
		return
	}
	p.set(maps.FFrag, 0)
	ihl := int(b[0]&0x0f) * 4
	if ihl < ip4HdrLen || ihl > len(b) {
		return
	}
	p.parseL4(proto, protoICMP, b[ihl:])
}

func isIP6ExtHeader(nh uint8) bool {
	switch nh {
	case ip6HopByHop, ip6Routing, ip6Fragment, ip6AH, ip6DstOpts:
		return true
	}
	return false
}

func (p *Packet) parseIPv6(b []byte) {
	if len(b) < ip6HdrLen {
		return
	}
	p.set(maps.FL3, 6)
	tclass := (be16(b[0:2]) >> 4) & 0xff
	p.set(maps.FDSCP, tclass>>2)
	p.setBytes(maps.FIP6Src, b[8:24])
	p.setBytes(maps.FIP6Dst, b[24:40])
	p.set(maps.FFrag, 0)

	nh, off := b[6], ip6HdrLen
	for n := 0; isIP6ExtHeader(nh); n++ {
		// iptables-nft's -p stops at an authentication header.
		if nh == ip6AH && !p.has[maps.FL34Proto] {
			p.set(maps.FL34Proto, ip6AH)
		}
		if n == maxIP6ExtHeaders || len(b) < off+2 {
			return
		}
		var hlen int
		switch nh {
		case ip6Fragment:
			hlen = 8
		case ip6AH:
			hlen = (int(b[off+1]) + 2) * 4
		default:
			hlen = (int(b[off+1]) + 1) * 8
		}
		if len(b) < off+hlen {
			return
		}
		if nh == ip6Fragment && be16(b[off+2:off+4])&0xfff8 != 0 {
			p.set(maps.FFrag, 1)
			p.set(maps.FL4Proto, uint64(b[off]))
			if !p.has[maps.FL34Proto] {
				p.set(maps.FL34Proto, uint64(b[off]))
			}
			return
		}
		nh = b[off]
		off += hlen
	}
	p.set(maps.FL4Proto, uint64(nh))
	if !p.has[maps.FL34Proto] {
		p.set(maps.FL34Proto, uint64(nh))
	}
	p.parseL4(nh, protoICMPv6, b[off:])
}

// parseL4 reads the L4 fields of a first (or only) fragment; icmp is the
// ICMP protocol number of the IP version.
func (p *Packet) parseL4(proto, icmp uint8, b []byte) {
	if len(b) < l4MinLen {
		return
	}
	switch proto {
	case protoTCP, protoUDP, protoUDPLite, protoDCCP, protoSCTP:
		p.set(maps.FSport, be16(b[0:2]))
		p.set(maps.FDport, be16(b[2:4]))
	case icmp:
		p.set(maps.FICMPType, uint64(b[0]))
		p.set(maps.FICMPCode, uint64(b[1]))
	}
	if proto != protoTCP || len(b) < tcpHdrLen {
		return
	}
	p.set(maps.FTCPFlags, uint64(b[13]))
	doff := int(b[12]>>4) * 4
	if doff < tcpHdrLen || doff > len(b) {
		return
	}
	p.hasTCPOpts = true
	opts := b[tcpHdrLen:doff]
	for i := 0; i < len(opts); {
		kind := opts[i]
		p.tcpOpts[kind/64] |= 1 << (kind % 64)
		if kind == 0 {
			return
		}
		if kind == 1 {
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 {
			return
		}
		i += int(opts[i+1])
	}
}
