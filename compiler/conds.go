// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/nwbpf/nwbpf/maps"
)

// condT is a condition template: the field, operator and flags are fixed
// by the filter; the values come from the attributes it reads, literal or
// (per binding instance) variable.
type condT struct {
	field maps.Field
	op    maps.Op
	neg   bool
	attrs []string // attributes read, in order; none for constant guards
	// build computes A and B from the attribute values (indexed like
	// attrs; a missing optional attribute is the zero value with typ 0).
	build func(v []value) (maps.U128, maps.U128)
	// sym is the operator shown in listings.
	sym string
	// check rejects values the kernel refuses to instantiate (a port range
	// whose start is above its end); run at compile time for literal
	// values and at bind time for variables.
	check func(a, b maps.U128) error
}

// orderedRange is the check of ebtables' and iptables' port and ICMPv6
// ranges: the kernel (ebt_ip, ebt_ip6) or iptables refuses min > max.
func orderedRange(a, b maps.U128) error {
	if a[1] > b[1] {
		return fmt.Errorf("range %d-%d has its start above its end", a[1], b[1])
	}
	return nil
}

// group is one conjunct of a rule: a plain condition, or (alts > 0) a
// negated conjunction !(c1 && c2 ...), compiled as alternatives.
type group struct {
	c      condT
	negAll []condT
}

func ones(bytes int) maps.U128 {
	switch {
	case bytes >= 16:
		return maps.U128{^uint64(0), ^uint64(0)}
	case bytes > 8:
		return maps.U128{(uint64(1) << (uint(bytes-8) * 8)) - 1, ^uint64(0)}
	case bytes == 8:
		return maps.U128{0, ^uint64(0)}
	default:
		return maps.U128{0, (uint64(1) << (uint(bytes) * 8)) - 1}
	}
}

func u(n uint64) maps.U128 { return maps.U128{0, n} }

func macU(m [6]byte) maps.U128 {
	var x uint64
	for _, b := range m {
		x = x<<8 | uint64(b)
	}
	return maps.U128{0, x}
}

func addrU(a netip.Addr) maps.U128 {
	b := a.AsSlice()
	var hi, lo uint64
	if len(b) == 4 {
		for _, x := range b {
			lo = lo<<8 | uint64(x)
		}
		return maps.U128{0, lo}
	}
	for i := 0; i < 8 && i < len(b); i++ {
		hi = hi<<8 | uint64(b[i])
	}
	for i := 8; i < 16 && i < len(b); i++ {
		lo = lo<<8 | uint64(b[i])
	}
	return maps.U128{hi, lo}
}

// prefixMask returns a mask of n leading one bits in a field of bits bits.
func prefixMask(n, bits int) maps.U128 {
	var m maps.U128
	for i := 0; i < n && i < bits; i++ {
		bit := bits - 1 - i // bit index from the right
		if bit >= 64 {
			m[0] |= 1 << uint(bit-64)
		} else {
			m[1] |= 1 << uint(bit)
		}
	}
	return m
}

func and(a, b maps.U128) maps.U128 { return maps.U128{a[0] & b[0], a[1] & b[1]} }

// Builders.

// eqConst is a guard: field == k, never negated.
func eqConst(f maps.Field, k uint64) condT {
	return condT{field: f, op: maps.OpEq, sym: "==", build: func([]value) (maps.U128, maps.U128) {
		return u(k), ones(f.Width())
	}}
}

// eqNum: field == attr.
func eqNum(f maps.Field, attr string, neg bool) condT {
	return condT{field: f, op: maps.OpEq, neg: neg, attrs: []string{attr}, sym: "==",
		build: func(v []value) (maps.U128, maps.U128) { return u(v[0].num), ones(f.Width()) }}
}

// eqMAC: field & mask == addr & mask (mask attribute optional).
func eqMAC(f maps.Field, addr, mask string, neg bool) condT {
	attrs := []string{addr}
	if mask != "" {
		attrs = append(attrs, mask)
	}
	return condT{field: f, op: maps.OpEq, neg: neg, attrs: attrs, sym: "==",
		build: func(v []value) (maps.U128, maps.U128) {
			m := ones(6)
			if len(v) > 1 && v[1].typ != 0 {
				m = macU(v[1].mac)
			}
			return and(macU(v[0].mac), m), m
		}}
}

// eqAddr: field & prefix == addr & prefix; the mask attribute (optional)
// is a prefix length.
func eqAddr(f maps.Field, addr, mask string, neg bool) condT {
	bits := f.Width() * 8
	attrs := []string{addr}
	if mask != "" {
		attrs = append(attrs, mask)
	}
	return condT{field: f, op: maps.OpEq, neg: neg, attrs: attrs, sym: "==",
		build: func(v []value) (maps.U128, maps.U128) {
			n := bits
			if len(v) > 1 && v[1].typ != 0 {
				n = int(v[1].num)
			}
			m := prefixMask(n, bits)
			return and(addrU(v[0].addr), m), m
		}}
}

// rangeNum: lo <= field <= hi, hi defaulting to lo.
func rangeNum(f maps.Field, lo, hi string, neg bool) condT {
	attrs := []string{lo}
	if hi != "" {
		attrs = append(attrs, hi)
	}
	return condT{field: f, op: maps.OpRange, neg: neg, attrs: attrs, sym: "in",
		build: func(v []value) (maps.U128, maps.U128) {
			a := u(v[0].num)
			if len(v) > 1 && v[1].typ != 0 {
				return a, u(v[1].num)
			}
			return a, a
		}}
}

// rangeAddr: from <= field <= to, to defaulting to from.
func rangeAddr(f maps.Field, from, to string, neg bool) condT {
	attrs := []string{from}
	if to != "" {
		attrs = append(attrs, to)
	}
	return condT{field: f, op: maps.OpRange, neg: neg, attrs: attrs, sym: "in",
		build: func(v []value) (maps.U128, maps.U128) {
			a := addrU(v[0].addr)
			if len(v) > 1 && v[1].typ != 0 {
				return a, addrU(v[1].addr)
			}
			return a, a
		}}
}

// rangeDefault: a range whose missing ends default (ebtables' ip6 ICMP
// type/code ranges): lo attr or 0, hi attr or lo (when lo given) or 255.
func rangeDefault(f maps.Field, lo, hi string, neg bool) condT {
	return condT{field: f, op: maps.OpRange, neg: neg, attrs: []string{lo, hi}, sym: "in",
		build: func(v []value) (maps.U128, maps.U128) {
			l, h := uint64(0), uint64(255)
			if v[0].typ != 0 {
				l, h = v[0].num, v[0].num
			}
			if v[1].typ != 0 {
				h = v[1].num
			}
			return u(l), u(h)
		}}
}

// ctState: the connection state is one of mask's bits.
func ctState(mask uint64) condT {
	var bits uint64
	if mask&stNew != 0 {
		bits |= maps.CTNew
	}
	if mask&stEstablished != 0 {
		bits |= maps.CTEstablished
	}
	if mask&stRelated != 0 {
		bits |= maps.CTRelated
	}
	if mask&stInvalid != 0 {
		bits |= maps.CTInvalid
	}
	return condT{field: maps.FCTState, op: maps.OpAnyBit, sym: "any-of",
		build: func([]value) (maps.U128, maps.U128) { return u(bits), maps.U128{} }}
}

func stateString(mask uint64) string {
	var s []string
	for _, n := range stateNames {
		if mask&n.bit != 0 {
			s = append(s, n.name)
		}
	}
	return strings.Join(s, ",")
}

// describe renders a condition for listings: literal values formatted,
// variables as $NAME.
func (c condT) describe(r *Rule) string {
	var vals []string
	for _, an := range c.attrs {
		a, ok := r.Attrs[an]
		if !ok {
			continue
		}
		if a.Var != nil {
			vals = append(vals, "$"+a.Var.String())
		} else {
			vals = append(vals, a.Raw)
		}
	}
	var val string
	switch {
	case len(c.attrs) == 0:
		a, b := c.build(nil)
		switch c.op {
		case maps.OpAnyBit:
			val = ctString(a[1])
		default:
			_ = b
			val = fmt.Sprintf("0x%x", a[1])
			if c.field == maps.FDstMAC {
				val = formatMACU(a)
			}
			if c.field == maps.FL3 || c.field == maps.FL4Proto || c.field == maps.FL34Proto || c.field == maps.FArpGrat || c.field == maps.FCTDir {
				val = fmt.Sprintf("%d", a[1])
			}
		}
	case c.op == maps.OpRange && c.field.Width() <= 4 && c.field != maps.FIP4Src && c.field != maps.FIP4Dst && !c.anyVar(r):
		a, b := c.build(literalValues(c, r))
		val = fmt.Sprintf("%d", a[1])
		if b[1] != a[1] {
			val = fmt.Sprintf("%d-%d", a[1], b[1])
		}
	case c.op == maps.OpRange && len(vals) == 2:
		val = vals[0] + "-" + vals[1]
	case len(vals) == 2:
		val = vals[0] + "/" + vals[1]
	default:
		val = strings.Join(vals, ",")
	}
	s := c.field.String() + " " + c.sym + " " + val
	if c.op == maps.OpTCPOpt {
		s = "tcp-option " + val
	}
	if c.neg {
		s = "!(" + s + ")"
	}
	return s
}

func (c condT) anyVar(r *Rule) bool {
	if r == nil {
		return false
	}
	return condHasVar(c, r)
}

func ctString(bits uint64) string {
	var s []string
	for _, n := range []struct {
		b    uint64
		name string
	}{{maps.CTNew, "NEW"}, {maps.CTEstablished, "ESTABLISHED"}, {maps.CTRelated, "RELATED"}, {maps.CTInvalid, "INVALID"}} {
		if bits&n.b != 0 {
			s = append(s, n.name)
		}
	}
	return strings.Join(s, ",")
}

func formatMACU(a maps.U128) string {
	var m [6]byte
	x := a[1]
	for i := 5; i >= 0; i-- {
		m[i] = byte(x)
		x >>= 8
	}
	return FormatMAC(m)
}
