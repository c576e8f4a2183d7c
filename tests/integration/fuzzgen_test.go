// SPDX-License-Identifier: Apache-2.0

package integration

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// reader draws choices from fuzz input; past its end every choice is 0,
// so any input describes a complete filter tree, binding and frame.
type reader struct {
	b []byte
	i int
}

func (r *reader) u8() byte {
	if r.i >= len(r.b) {
		return 0
	}
	v := r.b[r.i]
	r.i++
	return v
}

// pick returns an index below n.
func (r *reader) pick(n int) int { return int(r.u8()) % n }

// one returns one of the values.
func (r *reader) one(vs ...string) string { return vs[r.pick(len(vs))] }

// chance is true with probability 1/n.
func (r *reader) chance(n int) bool { return r.pick(n) == 0 }

// Value pools: the guest's addresses, the gateway's, special ones and
// variable references, so that rules and frames meet often.
var (
	poolMAC    = []string{"52:54:00:56:44:32", "52:54:00:00:00:01", "ff:ff:ff:ff:ff:ff", "01:80:c2:00:00:00", "$MAC", "$GWMAC", "33:33:00:00:00:01"}
	poolMACMsk = []string{"ff:ff:ff:ff:ff:ff", "ff:ff:ff:00:00:00", "01:00:00:00:00:00", "00:00:00:00:00:00"}
	poolIP4    = []string{"10.0.0.5", "10.0.0.1", "0.0.0.0", "255.255.255.255", "10.0.0.0", "224.0.0.1", "$IP", "$IP[@1]", "$IP[0]", "$DHCPSERVER"}
	poolIP4Msk = []string{"32", "24", "8", "0", "255.255.255.0", "31"}
	poolIP6    = []string{"fd00::5", "fd00::1", "::", "fe80::1", "ff02::1", "$IP6"}
	poolIP6Msk = []string{"128", "64", "0", "127", "ffff:ffff::"}
	poolPort   = []string{"53", "67", "68", "22", "1234", "0", "65535", "$PORT", "$PORT[@1]"}
	poolEthP   = []string{"ipv4", "arp", "ipv6", "rarp", "0x0800", "0x86dd", "0x8100", "1536", "0x88cc", "0x0835"}
	poolIPP    = []string{"tcp", "udp", "icmp", "17", "6", "1", "58", "sctp", "udplite", "igmp", "esp", "ah", "0x11"}
	poolU8     = []string{"0", "1", "3", "8", "128", "135", "255", "0x80", "11"}
	poolU16    = []string{"0", "1", "2", "10", "100", "4095", "32768", "0x8000", "20"}
	poolState  = []string{"NEW", "ESTABLISHED", "NEW,ESTABLISHED", "RELATED", "INVALID", "NONE", "ESTABLISHED,RELATED"}
	poolFlags  = []string{"SYN/SYN", "SYN,ACK/ALL", "NONE/FIN", "ALL/RST", "SYN/SYN,ACK,RST,FIN", "ACK/ACK"}
	poolOpcode = []string{"Request", "Reply", "1", "2", "Request_Reverse", "Reply_Reverse", "8"}
	poolDSCP   = []string{"0", "10", "46", "63"}
)

type attrGen struct {
	name string
	pool []string
}

var (
	macAttrs = []attrGen{{"srcmacaddr", poolMAC}, {"srcmacmask", poolMACMsk}, {"dstmacaddr", poolMAC}, {"dstmacmask", poolMACMsk}}
	ip4Attrs = []attrGen{{"srcipaddr", poolIP4}, {"srcipmask", poolIP4Msk}, {"dstipaddr", poolIP4}, {"dstipmask", poolIP4Msk},
		{"srcipfrom", poolIP4}, {"srcipto", poolIP4}, {"dstipfrom", poolIP4}, {"dstipto", poolIP4}, {"dscp", poolDSCP}, {"state", poolState}, {"srcmacaddr", poolMAC}}
	ip6Attrs = []attrGen{{"srcipaddr", poolIP6}, {"srcipmask", poolIP6Msk}, {"dstipaddr", poolIP6}, {"dstipmask", poolIP6Msk},
		{"srcipfrom", poolIP6}, {"srcipto", poolIP6}, {"dstipfrom", poolIP6}, {"dscp", poolDSCP}, {"state", poolState}, {"srcmacaddr", poolMAC}}
	portAttrs = []attrGen{{"srcportstart", poolPort}, {"srcportend", poolPort}, {"dstportstart", poolPort}, {"dstportend", poolPort}}
	arpAttrs  = append(append([]attrGen{}, macAttrs...), attrGen{"hwtype", []string{"1", "6"}}, attrGen{"protocoltype", []string{"0x800", "0x86dd"}},
		attrGen{"opcode", poolOpcode}, attrGen{"arpsrcmacaddr", poolMAC}, attrGen{"arpdstmacaddr", poolMAC}, attrGen{"arpsrcipaddr", poolIP4},
		attrGen{"arpsrcipmask", poolIP4Msk}, attrGen{"arpdstipaddr", poolIP4}, attrGen{"arpdstipmask", poolIP4Msk}, attrGen{"gratuitous", []string{"true", "false"}})
	icmpAttrs = []attrGen{{"type", poolU8}, {"code", poolU8}}
)

func with(parts ...[]attrGen) []attrGen {
	var out []attrGen
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// protoGens lists the protocol elements the generator writes, with the
// attributes it gives them.
var protoGens = []struct {
	name  string
	attrs []attrGen
}{
	{"", nil},
	{"mac", with(macAttrs, []attrGen{{"protocolid", poolEthP}})},
	{"vlan", with(macAttrs, []attrGen{{"vlanid", poolU16}, {"encap-protocol", poolEthP}})},
	{"stp", []attrGen{{"srcmacaddr", poolMAC}, {"type", poolU8}, {"flags", poolU8}, {"root-priority", poolU16}, {"root-priority-hi", poolU16},
		{"root-address", poolMAC}, {"root-cost", poolU16}, {"sender-priority", poolU16}, {"port", poolU16}, {"port-hi", poolU16},
		{"age", poolU16}, {"max-age", poolU16}, {"hello-time", poolU16}, {"forward-delay", poolU16}}},
	{"arp", arpAttrs},
	{"rarp", arpAttrs},
	{"ip", with(macAttrs, ip4Attrs[:4], []attrGen{{"protocol", poolIPP}}, portAttrs, []attrGen{{"dscp", poolDSCP}})},
	{"ipv6", with(macAttrs, ip6Attrs[:4], []attrGen{{"protocol", poolIPP}}, portAttrs,
		[]attrGen{{"type", poolU8}, {"typeend", poolU8}, {"code", poolU8}, {"codeend", poolU8}})},
	{"tcp", with(ip4Attrs, portAttrs, []attrGen{{"option", []string{"2", "4", "8", "3"}}, {"flags", poolFlags}})},
	{"udp", with(ip4Attrs, portAttrs)},
	{"sctp", with(ip4Attrs, portAttrs)},
	{"icmp", with(ip4Attrs, icmpAttrs)},
	{"igmp", ip4Attrs},
	{"esp", ip4Attrs},
	{"udplite", ip4Attrs},
	{"all", ip4Attrs},
	{"tcp-ipv6", with(ip6Attrs, portAttrs, []attrGen{{"option", []string{"2", "4"}}})},
	{"udp-ipv6", with(ip6Attrs, portAttrs)},
	{"icmpv6", with(ip6Attrs, icmpAttrs)},
	{"all-ipv6", ip6Attrs},
}

// genRule writes one <rule>.
func genRule(r *reader) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<rule action='%s' direction='%s'", r.one("accept", "drop", "reject", "return", "continue", "accept", "drop"), r.one("in", "out", "inout"))
	if !r.chance(4) {
		fmt.Fprintf(&b, " priority='%s'", r.one("-500", "-100", "0", "100", "500", "1000", "-1000", "7"))
	}
	if r.chance(6) {
		b.WriteString(" statematch='false'")
	}
	b.WriteString(">")
	p := protoGens[r.pick(len(protoGens))]
	if p.name != "" {
		fmt.Fprintf(&b, "<%s", p.name)
		if r.chance(4) {
			b.WriteString(" match='no'")
		}
		seen := map[string]bool{}
		for n := r.pick(4); n > 0 && len(p.attrs) > 0; n-- {
			a := p.attrs[r.pick(len(p.attrs))]
			if seen[a.name] {
				continue
			}
			seen[a.name] = true
			fmt.Fprintf(&b, " %s='%s'", a.name, a.pool[r.pick(len(a.pool))])
		}
		b.WriteString("/>")
	}
	b.WriteString("</rule>")
	return b.String()
}

// genFilters writes a root filter "fz" and, maybe, a filter it references
// with a chain of its own. It returns the filter documents.
func genFilters(r *reader) []string {
	var root strings.Builder
	root.WriteString("<filter name='fz' chain='root'>")
	n := 1 + r.pick(6)
	ref := r.chance(2)
	at := r.pick(n + 1)
	for i := range n {
		if ref && i == at {
			root.WriteString("<filterref filter='fzsub'/>")
		}
		root.WriteString(genRule(r))
	}
	if ref && at == n {
		root.WriteString("<filterref filter='fzsub'/>")
	}
	root.WriteString("</filter>")
	docs := []string{root.String()}
	if ref {
		var sub strings.Builder
		fmt.Fprintf(&sub, "<filter name='fzsub' chain='%s' priority='%s'>",
			r.one("mac", "vlan", "stp", "arp", "rarp", "ipv4", "ipv6", "ipv4-x", "arp-y", "root", "mac-z"),
			r.one("-700", "-500", "-300", "-100", "0", "100", "500"))
		for n := r.pick(5); n > 0; n-- {
			sub.WriteString(genRule(r))
		}
		sub.WriteString("</filter>")
		docs = append(docs, sub.String())
	}
	return docs
}

// genVars returns the binding's variables: the guest's MAC and one to
// three IP addresses, ports, and the other variables the pools use.
func genVars(r *reader) map[string][]string {
	v := map[string][]string{
		"MAC":        {r.one("52:54:00:56:44:32", "52:54:00:00:00:01")},
		"GWMAC":      {r.one("52:54:00:00:00:01", "ff:ff:ff:ff:ff:ff")},
		"DHCPSERVER": {r.one("10.0.0.1", "10.0.0.5")},
		"IP6":        {r.one("fd00::5", "fd00::1")},
	}
	ips := []string{"10.0.0.5", "10.0.0.1", "10.0.0.66", "0.0.0.0"}
	for n := 1 + r.pick(3); n > 0; n-- {
		v["IP"] = append(v["IP"], ips[r.pick(len(ips))])
	}
	for n := 1 + r.pick(2); n > 0; n-- {
		v["PORT"] = append(v["PORT"], r.one("53", "67", "22", "1234"))
	}
	return v
}

// Frame building blocks.
var (
	frameMACs = [][]byte{
		{0x52, 0x54, 0x00, 0x56, 0x44, 0x32}, {0x52, 0x54, 0x00, 0x00, 0x00, 0x01},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}, {0x33, 0x33, 0, 0, 0, 1},
	}
	frameIP4s  = [][]byte{{10, 0, 0, 5}, {10, 0, 0, 1}, {10, 0, 0, 66}, {0, 0, 0, 0}, {255, 255, 255, 255}, {224, 0, 0, 1}}
	frameIP6s  = [][]byte{ip6b(0xfd, 5), ip6b(0xfd, 1), ip6b(0xfe, 1), ip6b(0xff, 1), make([]byte, 16)}
	framePorts = []uint16{53, 67, 68, 22, 1234, 0, 65535}
)

func ip6b(first, last byte) []byte {
	b := make([]byte, 16)
	b[0], b[15] = first, last
	if first == 0xfe {
		b[1] = 0x80
	}
	if first == 0xff {
		b[1] = 0x02
	}
	return b
}

func (r *reader) mac() []byte { return frameMACs[r.pick(len(frameMACs))] }
func (r *reader) ip4() []byte { return frameIP4s[r.pick(len(frameIP4s))] }
func (r *reader) ip6() []byte { return frameIP6s[r.pick(len(frameIP6s))] }
func (r *reader) port() uint16 {
	return framePorts[r.pick(len(framePorts))]
}

// l4 builds an L4 header for IP protocol proto.
func (r *reader) l4(proto byte) []byte {
	switch proto {
	case 6:
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h, r.port())
		binary.BigEndian.PutUint16(h[2:], r.port())
		h[12] = 5 << 4
		h[13] = []byte{0x02, 0x12, 0x10, 0x04, 0x01, 0x18, 0x00, 0xff}[r.pick(8)]
		if r.chance(2) { // an MSS and a window scale option
			h = append(h, 2, 4, 5, 0xb4, 1, 3, 3, 7)
			h[12] = 7 << 4
		}
		return h
	case 17, 132, 136:
		h := make([]byte, 8)
		binary.BigEndian.PutUint16(h, r.port())
		binary.BigEndian.PutUint16(h[2:], r.port())
		return h
	case 1, 58:
		return []byte{[]byte{0, 3, 8, 11, 128, 135, 136, 129}[r.pick(8)], byte(r.pick(4)), 0, 0, 0, 0, 0, 0}
	}
	return []byte{1, 2, 3, 4, 5, 6, 7, 8}
}

// genFrame builds a frame: an Ethernet frame of a common kind with
// addresses and ports from the pools, or the raw bytes as they are; raw
// then mutates the structured kinds (byte flips, truncation).
func genFrame(r *reader, raw []byte) []byte {
	eth := func(dst, src []byte, typ uint16) []byte {
		b := append(append(append([]byte{}, dst...), src...), 0, 0)
		binary.BigEndian.PutUint16(b[12:], typ)
		return b
	}
	ip4 := func(proto byte, frag uint16) []byte {
		h := []byte{0x45, byte(r.pick(4)) << 2, 0, 0, 0x12, 0x34, byte(frag >> 8), byte(frag), 64, proto, 0, 0}
		h = append(append(h, r.ip4()...), r.ip4()...)
		return h
	}
	ip6 := func(nh byte) []byte {
		h := []byte{0x60, 0, 0, 0, 0, 0, nh, 64}
		return append(append(h, r.ip6()...), r.ip6()...)
	}
	arp := func(op byte) []byte {
		b := []byte{0, 1, 8, 0, 6, 4, 0, op}
		b = append(append(b, r.mac()...), r.ip4()...)
		return append(append(b, r.mac()...), r.ip4()...)
	}
	var f []byte
	dst, src := r.mac(), r.mac()
	switch k := r.pick(14); k {
	case 0, 1, 2, 3: // IPv4 with a common protocol
		proto := []byte{17, 6, 1, 132}[k]
		f = append(append(eth(dst, src, 0x0800), ip4(proto, 0)...), r.l4(proto)...)
	case 4: // IPv4 first or later fragment
		frag := []uint16{0x2000, 0x0003, 0x2003}[r.pick(3)]
		f = append(append(eth(dst, src, 0x0800), ip4(17, frag)...), r.l4(17)...)
	case 5:
		f = append(eth(dst, src, 0x0806), arp(byte(1+r.pick(2)))...)
	case 6:
		f = append(eth(dst, src, 0x8035), arp(byte(3+r.pick(2)))...)
	case 7, 8, 9: // IPv6 with UDP, ICMPv6, TCP
		nh := []byte{17, 58, 6}[k-7]
		f = append(append(eth(dst, src, 0x86dd), ip6(nh)...), r.l4(nh)...)
	case 10: // tagged
		f = eth(dst, src, 0x8100)
		f = append(f, byte(r.pick(2)), byte(r.pick(4)*5), 0x08, 0x00)
		f = append(append(f, ip4(17, 0)...), r.l4(17)...)
	case 11: // STP configuration BPDU (802.3 length field)
		f = append(eth([]byte{0x01, 0x80, 0xc2, 0, 0, 0}, src, 38), 0x42, 0x42, 0x03, 0, 0, 0, 0, byte(r.pick(2)))
		f = append(f, make([]byte, 32)...)
	case 12: // IPv6 with a hop-by-hop header
		f = append(eth(dst, src, 0x86dd), ip6(0)...)
		f = append(append(f, 17, 0, 1, 4, 0, 0, 0, 0), r.l4(17)...)
	default: // raw bytes
		return append([]byte{}, raw...)
	}
	if r.chance(3) {
		for j := 0; j+1 < len(raw) && j < 16; j += 2 {
			f[int(raw[j])%len(f)] ^= raw[j+1]
		}
	}
	if r.chance(4) {
		f = f[:14+r.pick(len(f)-13)]
	}
	return f
}
