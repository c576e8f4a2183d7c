// SPDX-License-Identifier: Apache-2.0

package eval

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/maps"
)

var (
	macVM  = net.HardwareAddr{0x52, 0x54, 0x00, 0x56, 0x44, 0x32}
	macGW  = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x01}
	macSTP = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}
	ipVM   = net.IPv4(10, 0, 0, 5).To4()
	ipGW   = net.IPv4(10, 0, 0, 1).To4()
	ip6VM  = net.ParseIP("fd00::5")
	ip6GW  = net.ParseIP("fd00::1")
)

// frame serializes layers into a frame, fixing lengths.
func frame(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return buf.Bytes()
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: macVM, DstMAC: macGW, EthernetType: t}
}

func ip4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: ipVM, DstIP: ipGW}
}

func ip6(nh layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: nh, SrcIP: ip6VM, DstIP: ip6GW}
}

// rawEth builds an Ethernet header with no padding, for truncated frames.
func rawEth(typ uint16, payload ...byte) []byte {
	b := append([]byte{}, macGW...)
	b = append(b, macVM...)
	b = binary.BigEndian.AppendUint16(b, typ)
	return append(b, payload...)
}

// ext6 builds an IPv6 extension header of kind 0, 43 or 60 with n 8-byte
// units after the first (hdr ext len n).
func ext6(next uint8, n uint8) []byte {
	b := make([]byte, (int(n)+1)*8)
	b[0], b[1] = next, n
	if len(b) > 2 {
		b[2] = 1 // PadN, so the options are well formed
		b[3] = byte(len(b) - 4)
	}
	return b
}

// ah6 builds an AH header with payload length n ((n+2)*4 bytes).
func ah6(next uint8, n uint8) []byte {
	b := make([]byte, (int(n)+2)*4)
	b[0], b[1] = next, n
	return b
}

// frag6 builds a fragment header with offset off (8-byte units) and M.
func frag6(next uint8, off uint16, more bool) []byte {
	b := make([]byte, 8)
	b[0] = next
	v := off << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:], v)
	binary.BigEndian.PutUint32(b[4:], 0x1234)
	return b
}

// ports4 is a 4-byte L4 header with the given ports (UDP-Lite, DCCP, SCTP
// and friends all start with them).
func ports4(sport, dport uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, sport), dport)
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// u is a U128 of a small value.
func u(v uint64) maps.U128 { return maps.U128{0, v} }

var all = maps.U128{^uint64(0), ^uint64(0)}

// cond builds a condition.
func cond(f maps.Field, op maps.Op, a, b maps.U128) maps.Cond {
	return maps.Cond{Field: f, Op: op, A: a, B: b}
}

func eq(f maps.Field, v uint64) maps.Cond { return cond(f, maps.OpEq, u(v), all) }

func neg(c maps.Cond) maps.Cond { c.Flags |= maps.CFNeg; return c }

// match builds a MATCH entry.
func match(id uint32, act maps.Action, cs ...maps.Cond) maps.Rule {
	r := maps.Rule{Kind: maps.RKMatch, Action: act, ID: id, NCond: uint8(len(cs))}
	copy(r.Cond[:], cs)
	for _, c := range cs {
		if c.Flags&maps.CFVar != 0 {
			r.NVar++
		}
	}
	return r
}

// jump builds a JUMP entry.
func jump(id, target uint32, cs ...maps.Cond) maps.Rule {
	r := match(id, maps.ActAccept, cs...)
	r.Kind, r.Target = maps.RKJump, target
	return r
}

// end builds a CHAIN_END entry.
func end(id uint32, act maps.Action) maps.Rule {
	return maps.Rule{Kind: maps.RKChainEnd, Action: act, ID: id}
}
