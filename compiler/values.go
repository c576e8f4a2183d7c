// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// dtype is an attribute data type, in libvirt's parse order: when an
// attribute accepts several types, they are tried in this order and the
// first that parses wins.
type dtype uint32

const (
	tUint16 dtype = 1 << iota
	tUint8
	tUint16Hex
	tUint8Hex
	tMAC
	tMACMask
	tIPv4
	tIPv4Mask
	tString
	tIPv6
	tIPv6Mask
	tComment
	tBool
	tUint32
	tUint32Hex
	tIPSetName
	tIPSetFlags
	tLast
)

// value is a parsed attribute value.
type value struct {
	typ  dtype
	num  uint64     // integers, booleans, masks (prefix length), state flags
	num2 uint64     // tcp flags: the SET part (num is the MASK)
	addr netip.Addr // IP addresses
	mac  [6]byte    // MAC addresses and masks
	str  string     // strings (comment, ipset)
	// raw is the text a variable substituted; "" for literal values.
	// libvirt prints a variable's text unchanged into the firewall rule,
	// which matters where the tool reads it differently (--vlan-encap).
	raw string
}

// parseUint parses like libvirt's virStrToLong_ui: the whole string, in the
// given base; base 16 accepts an optional 0x prefix.
func parseUint(s string, base int) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	t := s
	if base == 16 && (strings.HasPrefix(t, "0x") || strings.HasPrefix(t, "0X")) {
		t = t[2:]
	}
	if t == "" || t[0] == '+' || t[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseUint(t, base, 64)
	if err != nil || v > 0xffffffff {
		return 0, false
	}
	return v, true
}

// parseMAC parses a:b:c:d:e:f with one or two hex digits per octet.
func parseMAC(s string) ([6]byte, bool) {
	var m [6]byte
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return m, false
	}
	for i, p := range parts {
		if len(p) < 1 || len(p) > 2 {
			return m, false
		}
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return m, false
		}
		m[i] = byte(v)
	}
	return m, true
}

// contiguous reports whether b is a run of 1 bits followed by 0 bits, and
// returns the number of 1 bits.
func contiguous(b []byte) (int, bool) {
	n := 0
	zero := false
	for _, x := range b {
		for bit := 7; bit >= 0; bit-- {
			if x&(1<<bit) != 0 {
				if zero {
					return 0, false
				}
				n++
			} else {
				zero = true
			}
		}
	}
	return n, true
}

func parseIPv4(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

func parseIPv6(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// parseOne tries one data type. ok reports that the type parsed; bad
// reports a value that was recognised as this type but is invalid and
// must not fall through to the next type (libvirt's "found" with rc != 0).
func parseOne(t dtype, s string) (v value, ok bool) {
	v.typ = t
	switch t {
	case tUint8, tUint8Hex, tUint16, tUint16Hex, tUint32, tUint32Hex:
		base := 10
		if t == tUint8Hex || t == tUint16Hex || t == tUint32Hex {
			base = 16
		}
		n, good := parseUint(s, base)
		if !good {
			return v, false
		}
		limit := uint64(0xffffffff)
		switch t {
		case tUint8, tUint8Hex:
			limit = 0xff
		case tUint16, tUint16Hex:
			limit = 0xffff
		}
		if n > limit {
			return v, false
		}
		v.num = n
		return v, true
	case tMAC, tMACMask:
		m, good := parseMAC(s)
		if !good {
			return v, false
		}
		if t == tMACMask {
			if _, c := contiguous(m[:]); !c {
				return v, false
			}
		}
		v.mac = m
		return v, true
	case tIPv4:
		a, good := parseIPv4(s)
		v.addr = a
		return v, good
	case tIPv6:
		a, good := parseIPv6(s)
		v.addr = a
		return v, good
	case tIPv4Mask, tIPv6Mask:
		max := uint64(32)
		if t == tIPv6Mask {
			max = 128
		}
		if n, good := parseUint(s, 10); good {
			v.num = n
			return v, n <= max
		}
		var a netip.Addr
		var good bool
		if t == tIPv4Mask {
			a, good = parseIPv4(s)
		} else {
			a, good = parseIPv6(s)
		}
		if !good {
			return v, false
		}
		n, c := contiguous(a.AsSlice())
		v.num = uint64(n)
		return v, c
	case tBool:
		v.num = 0
		if s == "true" || s == "1" || s == "yes" {
			v.num = 1
		}
		return v, true
	case tComment:
		if len(s) > maxComment {
			s = s[:maxComment]
		}
		v.str = s
		return v, true
	case tString, tIPSetName, tIPSetFlags:
		v.str = s
		return v, true
	}
	return v, false
}

const maxComment = 256

// parseTyped parses s against the attribute's accepted types in libvirt's
// order, then runs the attribute's validator on the first type that parsed.
func parseTyped(a *attrDef, s string) (value, error) {
	for t := dtype(1); t < tLast; t <<= 1 {
		if a.types&t == 0 {
			continue
		}
		v, ok := parseOne(t, s)
		if !ok {
			continue
		}
		if a.validate != nil {
			nv, err := a.validate(v)
			if err != nil {
				return value{}, fmt.Errorf("%s has illegal value %q: %v", a.name, s, err)
			}
			v = nv
		}
		return v, nil
	}
	return value{}, fmt.Errorf("%s has illegal value %q", a.name, s)
}

// Name maps shared by several attributes.
var (
	ethProtoNames = map[string]uint64{"arp": 0x0806, "rarp": 0x8035, "ipv4": 0x0800, "ipv6": 0x86dd, "vlan": 0x8100}
	ipProtoNames  = map[string]uint64{"tcp": 6, "udp": 17, "udplite": 136, "esp": 50, "ah": 51, "icmp": 1, "igmp": 2, "sctp": 132, "icmpv6": 58}
	arpOpNames    = map[string]uint64{"request": 1, "reply": 2, "request_reverse": 3, "reply_reverse": 4, "drarp_request": 5, "drarp_reply": 6, "drarp_error": 7, "inarp_request": 8, "arp_nak": 9}
	stateNames    = []struct {
		name string
		bit  uint64
	}{{"NEW", stNew}, {"ESTABLISHED", stEstablished}, {"RELATED", stRelated}, {"INVALID", stInvalid}, {"NONE", stNone}}
	tcpFlagNames = []struct {
		name string
		bits uint64
	}{{"FIN", 0x01}, {"SYN", 0x02}, {"RST", 0x04}, {"PSH", 0x08}, {"ACK", 0x10}, {"URG", 0x20}, {"ALL", 0x3f}, {"NONE", 0}}
)

// State flags as libvirt keeps them on a rule.
const (
	stNew         = 1 << 0
	stEstablished = 1 << 1
	stRelated     = 1 << 2
	stInvalid     = 1 << 3
	stNone        = 1 << 4
)

// parseItems parses a separator list of case-insensitive prefix tokens the
// way libvirt's parseStringItems does (tokens may also be glued together).
func parseItems(s string, sep byte, items []struct {
	name string
	bit  uint64
}) (uint64, bool) {
	var flags uint64
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == sep || s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\v' || s[i] == '\f') {
			i++
		}
		if i >= len(s) {
			break
		}
		found := false
		for _, it := range items {
			if len(s)-i >= len(it.name) && strings.EqualFold(s[i:i+len(it.name)], it.name) {
				flags |= it.bit
				i += len(it.name)
				found = true
				break
			}
		}
		if !found {
			return 0, false
		}
	}
	return flags, true
}

func parseState(s string) (uint64, bool) {
	f, ok := parseItems(s, ',', stateNames)
	if !ok {
		return 0, false
	}
	if f&stNone != 0 {
		f = stNone
	}
	return f, true
}

func parseTCPFlags(s string) (mask, set uint64, ok bool) {
	i := strings.IndexByte(s, '/')
	if i < 0 {
		return 0, 0, false
	}
	items := make([]struct {
		name string
		bit  uint64
	}, len(tcpFlagNames))
	for k, f := range tcpFlagNames {
		items[k].name, items[k].bit = f.name, f.bits
	}
	m, ok1 := parseItems(s[:i], ',', items)
	f, ok2 := parseItems(s[i+1:], ',', items)
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	return m & 0x3f, f & 0x3f, true
}

// Validators, mirroring libvirt's per-attribute checks.

func validateEthProto(min uint64) func(value) (value, error) {
	return func(v value) (value, error) {
		if v.typ == tString {
			n, ok := ethProtoNames[strings.ToLower(v.str)]
			if !ok {
				return v, fmt.Errorf("unknown protocol name")
			}
			v.num, v.typ = n, tUint16
			return v, nil
		}
		if v.num < min {
			return v, fmt.Errorf("must be at least 0x%x", min)
		}
		return v, nil
	}
}

// validateName maps a name (case-insensitive) to its number, the value
// then printing like a number of type typ; numbers pass unchanged.
func validateName(names map[string]uint64, what string, typ dtype) func(value) (value, error) {
	return func(v value) (value, error) {
		if v.typ == tString {
			n, ok := names[strings.ToLower(v.str)]
			if !ok {
				return v, fmt.Errorf("unknown %s name", what)
			}
			v.num, v.typ = n, typ
		}
		return v, nil
	}
}

var (
	validateIPProto   = validateName(ipProtoNames, "protocol", tUint8Hex)
	validateArpOpcode = validateName(arpOpNames, "opcode", tUint16)
)

func validateVlanID(v value) (value, error) {
	if v.num > 4095 {
		return v, fmt.Errorf("VLAN id must be 0-4095")
	}
	return v, nil
}

func validateDSCP(v value) (value, error) {
	if v.num > 63 {
		return v, fmt.Errorf("DSCP must be 0-63")
	}
	return v, nil
}

func validateState(v value) (value, error) {
	f, ok := parseState(v.str)
	if !ok {
		return v, fmt.Errorf("state must be a comma list of NEW, ESTABLISHED, RELATED, INVALID, NONE")
	}
	v.num = f
	return v, nil
}

func validateTCPFlags(v value) (value, error) {
	m, s, ok := parseTCPFlags(v.str)
	if !ok {
		return v, fmt.Errorf("flags must be MASK/SET, each a comma list of SYN ACK URG PSH FIN RST ALL NONE")
	}
	v.num, v.num2 = m, s
	return v, nil
}

const ipsetChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:+ -"

func validateIPSet(v value) (value, error) {
	if len(v.str) >= 32 {
		return v, fmt.Errorf("ipset name is too long")
	}
	for _, c := range v.str {
		if !strings.ContainsRune(ipsetChars, c) {
			return v, fmt.Errorf("ipset name contains invalid characters")
		}
	}
	return v, nil
}

func validateIPSetFlags(v value) (value, error) {
	parts := strings.Split(v.str, ",")
	if len(parts) > 6 || v.str == "" {
		return v, fmt.Errorf("malformed ipset flags")
	}
	var norm []string
	for _, p := range parts {
		switch strings.ToLower(p) {
		case "src", "dst":
			norm = append(norm, strings.ToLower(p))
		default:
			return v, fmt.Errorf("malformed ipset flags")
		}
	}
	v.str = strings.Join(norm, ",")
	return v, nil
}

func validateConnlimit(v value) (value, error) { return v, nil }
