// SPDX-License-Identifier: Apache-2.0

package compiler

// attrDef describes one attribute of a protocol element, as libvirt's
// nwfilter_conf.c tables do: its name, the data types it accepts (tried in
// dtype order) and an optional validator.
type attrDef struct {
	name     string
	types    dtype
	validate func(value) (value, error)
}

// protoDef describes a protocol element (<mac>, <tcp>, ...).
type protoDef struct {
	name  string
	l2    bool // ebtables protocol (L2 stage) rather than iptables (L3/L4)
	ipv6  bool // an -ipv6 L3/L4 protocol (ip6tables)
	l4    uint8
	attrs []attrDef
	// negFrom lists attributes whose negation is copied from a base
	// attribute after parsing (libvirt's virNWFilterRuleDefFixup):
	// {attr, base}. Quirks included: dstport* copy srcportstart's sign.
	negFrom [][2]string
	// ipsetFixup applies libvirt's ipset quirk (every L3/L4 protocol but
	// all/all-ipv6): ipset alone gets ipsetflags=src, both are dropped.
	ipsetFixup bool
}

const (
	u8   = tUint8 | tUint8Hex
	u16  = tUint16 | tUint16Hex
	u32  = tUint32 | tUint32Hex
	mac  = tMAC
	mmsk = tMACMask
)

func commonMAC() []attrDef {
	return []attrDef{
		{name: "srcmacaddr", types: mac},
		{name: "srcmacmask", types: mmsk},
		{name: "dstmacaddr", types: mac},
		{name: "dstmacmask", types: mmsk},
	}
}

var commentAttr = attrDef{name: "comment", types: tComment}

func commonIP(v6 bool) []attrDef {
	addr, mask := tIPv4, tIPv4Mask
	if v6 {
		addr, mask = tIPv6, tIPv6Mask
	}
	return []attrDef{
		{name: "srcmacaddr", types: mac},
		{name: "srcipaddr", types: addr},
		{name: "srcipmask", types: mask},
		{name: "dstipaddr", types: addr},
		{name: "dstipmask", types: mask},
		{name: "srcipfrom", types: addr},
		{name: "srcipto", types: addr},
		{name: "dstipfrom", types: addr},
		// libvirt types dstipto as IPv4 for every protocol (quirk).
		{name: "dstipto", types: tIPv4},
		{name: "dscp", types: u8, validate: validateDSCP},
		{name: "connlimit-above", types: tUint16, validate: validateConnlimit},
		{name: "state", types: tString, validate: validateState},
		{name: "ipset", types: tIPSetName, validate: validateIPSet},
		{name: "ipsetflags", types: tIPSetFlags, validate: validateIPSetFlags},
	}
}

var ports = []attrDef{
	{name: "srcportstart", types: u16},
	{name: "srcportend", types: u16},
	{name: "dstportstart", types: u16},
	{name: "dstportend", types: u16},
}

var ipNeg = [][2]string{
	{"srcipmask", "srcipaddr"}, {"dstipmask", "dstipaddr"},
	{"srcipto", "srcipfrom"}, {"dstipto", "dstipfrom"},
}

var portNeg = [][2]string{
	{"srcportend", "srcportstart"}, {"dstportstart", "srcportstart"}, {"dstportend", "srcportstart"},
}

func cat(parts ...[]attrDef) []attrDef {
	var out []attrDef
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func catNeg(parts ...[][2]string) [][2]string {
	var out [][2]string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var stpAttrs = []attrDef{
	{name: "srcmacaddr", types: mac},
	{name: "srcmacmask", types: mmsk},
	{name: "type", types: u8},
	{name: "flags", types: u8},
	{name: "root-priority", types: u16},
	{name: "root-priority-hi", types: u16},
	{name: "root-address", types: mac},
	{name: "root-address-mask", types: mmsk},
	{name: "root-cost", types: u32},
	{name: "root-cost-hi", types: u32},
	{name: "sender-priority", types: u16},
	{name: "sender-priority-hi", types: u16},
	{name: "sender-address", types: mac},
	{name: "sender-address-mask", types: mmsk},
	{name: "port", types: u16},
	{name: "port-hi", types: u16},
	{name: "age", types: u16},
	{name: "age-hi", types: u16},
	{name: "max-age", types: u16},
	{name: "max-age-hi", types: u16},
	{name: "hello-time", types: u16},
	{name: "hello-time-hi", types: u16},
	{name: "forward-delay", types: u16},
	{name: "forward-delay-hi", types: u16},
	commentAttr,
}

var arpAttrs = cat(commonMAC(), []attrDef{
	{name: "hwtype", types: u16},
	{name: "protocoltype", types: u16},
	{name: "opcode", types: u16 | tString, validate: validateArpOpcode},
	{name: "arpsrcmacaddr", types: mac},
	{name: "arpdstmacaddr", types: mac},
	{name: "arpsrcipaddr", types: tIPv4},
	{name: "arpsrcipmask", types: tIPv4Mask},
	{name: "arpdstipaddr", types: tIPv4},
	{name: "arpdstipmask", types: tIPv4Mask},
	{name: "gratuitous", types: tBool},
	commentAttr,
})

func l34Proto(name string, v6 bool, l4 uint8, extra []attrDef, neg [][2]string, ipsetFixup bool) *protoDef {
	return &protoDef{
		name: name, ipv6: v6, l4: l4,
		attrs:      cat(commonIP(v6), extra, []attrDef{commentAttr}),
		negFrom:    catNeg(ipNeg, neg),
		ipsetFixup: ipsetFixup,
	}
}

var tcpExtra = cat(ports, []attrDef{
	{name: "option", types: u8},
	{name: "flags", types: tString, validate: validateTCPFlags},
})

// tcp-ipv6 has no flags attribute in libvirt (quirk).
var tcp6Extra = cat(ports, []attrDef{{name: "option", types: u8}})

var icmpExtra = []attrDef{{name: "type", types: u8}, {name: "code", types: u8}}

// protocols is the table of protocol elements, keyed by element name.
var protocols = map[string]*protoDef{
	"mac": {name: "mac", l2: true, attrs: cat(commonMAC(), []attrDef{
		{name: "protocolid", types: u16 | tString, validate: validateEthProto(0x600)},
		commentAttr,
	}), negFrom: [][2]string{{"srcmacmask", "srcmacaddr"}, {"dstmacmask", "dstmacaddr"}}},
	"vlan": {name: "vlan", l2: true, attrs: cat(commonMAC(), []attrDef{
		{name: "vlanid", types: u16, validate: validateVlanID},
		{name: "encap-protocol", types: u16 | tString, validate: validateEthProto(0x3c)},
		commentAttr,
	}), negFrom: [][2]string{{"srcmacmask", "srcmacaddr"}, {"dstmacmask", "dstmacaddr"}}},
	"stp": {name: "stp", l2: true, attrs: stpAttrs, negFrom: [][2]string{
		{"srcmacmask", "srcmacaddr"},
		{"root-priority-hi", "root-priority"}, {"root-address-mask", "root-address"},
		{"root-cost-hi", "root-cost"}, {"sender-priority-hi", "sender-priority"},
		{"sender-address-mask", "sender-address"}, {"port-hi", "port"},
		{"age-hi", "age"}, {"max-age-hi", "max-age"},
		{"hello-time-hi", "hello-time"}, {"forward-delay-hi", "forward-delay"},
	}},
	"arp":  {name: "arp", l2: true, attrs: arpAttrs},
	"rarp": {name: "rarp", l2: true, attrs: arpAttrs},
	"ip": {name: "ip", l2: true, attrs: cat(commonMAC(), []attrDef{
		{name: "srcipaddr", types: tIPv4},
		{name: "srcipmask", types: tIPv4Mask},
		{name: "dstipaddr", types: tIPv4},
		{name: "dstipmask", types: tIPv4Mask},
		{name: "protocol", types: tUint8 | tUint8Hex | tString, validate: validateIPProto},
	}, ports, []attrDef{
		{name: "dscp", types: u8, validate: validateDSCP},
		commentAttr,
	}), negFrom: [][2]string{{"srcipmask", "srcipaddr"}, {"dstipmask", "dstipaddr"}}},
	"ipv6": {name: "ipv6", l2: true, attrs: cat(commonMAC(), []attrDef{
		{name: "srcipaddr", types: tIPv6},
		{name: "srcipmask", types: tIPv6Mask},
		{name: "dstipaddr", types: tIPv6},
		{name: "dstipmask", types: tIPv6Mask},
		{name: "protocol", types: tUint8 | tUint8Hex | tString, validate: validateIPProto},
	}, ports, []attrDef{
		{name: "type", types: u8},
		{name: "typeend", types: u8},
		{name: "code", types: u8},
		{name: "codeend", types: u8},
		commentAttr,
	}), negFrom: [][2]string{
		{"srcipmask", "srcipaddr"}, {"dstipmask", "dstipaddr"},
		{"typeend", "type"}, {"code", "type"}, {"codeend", "type"},
	}},
	"tcp":          l34Proto("tcp", false, 6, tcpExtra, portNeg, true),
	"udp":          l34Proto("udp", false, 17, ports, portNeg, true),
	"udplite":      l34Proto("udplite", false, 136, nil, nil, true),
	"esp":          l34Proto("esp", false, 50, nil, nil, true),
	"ah":           l34Proto("ah", false, 51, nil, nil, true),
	"sctp":         l34Proto("sctp", false, 132, ports, portNeg, true),
	"icmp":         l34Proto("icmp", false, 1, icmpExtra, [][2]string{{"code", "type"}}, true),
	"all":          l34Proto("all", false, 0, nil, nil, false),
	"igmp":         l34Proto("igmp", false, 2, nil, nil, true),
	"tcp-ipv6":     l34Proto("tcp-ipv6", true, 6, tcp6Extra, portNeg, true),
	"udp-ipv6":     l34Proto("udp-ipv6", true, 17, ports, portNeg, true),
	"udplite-ipv6": l34Proto("udplite-ipv6", true, 136, nil, nil, true),
	"esp-ipv6":     l34Proto("esp-ipv6", true, 50, nil, nil, true),
	"ah-ipv6":      l34Proto("ah-ipv6", true, 51, nil, nil, true),
	"sctp-ipv6":    l34Proto("sctp-ipv6", true, 132, ports, portNeg, true),
	"icmpv6":       l34Proto("icmpv6", true, 58, icmpExtra, [][2]string{{"code", "type"}}, true),
	"all-ipv6":     l34Proto("all-ipv6", true, 0, nil, nil, false),
}

func (p *protoDef) attr(name string) *attrDef {
	for i := range p.attrs {
		if p.attrs[i].name == name {
			return &p.attrs[i]
		}
	}
	return nil
}
