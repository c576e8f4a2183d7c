// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"fmt"
	"sort"
	"strings"
)

// Format prints a filter the way libvirt's `virsh nwfilter-dumpxml` does
// (virNWFilterDefFormat): attributes in libvirt's table order, values
// normalised (masks as prefix lengths, MACs as two hex digits per octet,
// numbers in the base they were given, protocol names where libvirt has
// one), and a protocol element split wherever the negation changes.
func (f *Filter) Format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<filter name='%s' chain='%s'", f.Name, f.Chain)
	if f.Priority != 0 {
		fmt.Fprintf(&b, " priority='%d'", f.Priority)
	}
	b.WriteString(">\n")
	fmt.Fprintf(&b, "  <uuid>%s</uuid>\n", FormatUUID(f.UUID))
	for _, e := range f.Entries {
		if e.Rule != nil {
			formatRule(&b, e.Rule)
		} else {
			formatRef(&b, "  ", e.Ref.Filter, &e.Ref.Params)
		}
	}
	b.WriteString("</filter>\n")
	return b.String()
}

func formatRef(b *strings.Builder, indent, filter string, p *Params) {
	fmt.Fprintf(b, "%s<filterref filter='%s'", indent, xmlAttrEscape(filter))
	names := p.Names()
	if len(names) == 0 {
		b.WriteString("/>\n")
		return
	}
	b.WriteString(">\n")
	sort.Strings(names)
	for _, n := range names {
		vals, _ := p.Get(n)
		for _, v := range vals {
			fmt.Fprintf(b, "%s  <parameter name='%s' value='%s'/>\n", indent, n, v)
		}
	}
	fmt.Fprintf(b, "%s</filterref>\n", indent)
}

func formatRule(b *strings.Builder, r *Rule) {
	fmt.Fprintf(b, "  <rule action='%s' direction='%s' priority='%d'", r.Action, r.Direction, r.Priority)
	if r.NoStateMatch {
		b.WriteString(" statematch='false'")
	}
	if r.Proto == "" {
		b.WriteString("/>\n")
		return
	}
	b.WriteString(">\n")
	formatDetails(b, r, protocols[r.Proto])
	b.WriteString("  </rule>\n")
}

// formatDetails mirrors virNWFilterRuleDefDetailsFormat: a new element
// starts whenever an attribute's negation differs from the element's.
func formatDetails(b *strings.Builder, r *Rule, p *protoDef) {
	const (
		none = iota
		yes
		no
	)
	open, shown, match := false, false, none
	for i := 0; i < len(p.attrs); {
		ad := &p.attrs[i]
		a, ok := r.Attrs[ad.name]
		if !ok {
			i++
			continue
		}
		if !open {
			fmt.Fprintf(b, "    <%s", p.name)
			open, shown = true, true
		}
		if a.Neg {
			if match == none {
				b.WriteString(" match='no'")
				match = no
			} else if match == yes {
				b.WriteString("/>\n")
				open, match = false, none
				continue
			}
		} else {
			if match == no {
				b.WriteString("/>\n")
				open, match = false, none
				continue
			}
			match = yes
		}
		fmt.Fprintf(b, " %s='%s'", ad.name, formatAttr(ad, a))
		i++
	}
	if open {
		b.WriteString("/>\n")
	}
	if !shown {
		fmt.Fprintf(b, "    <%s/>\n", p.name)
	}
}

func formatAttr(ad *attrDef, a *Attr) string {
	if a.Var != nil {
		return "$" + a.Var.String()
	}
	v := a.Val
	switch ad.name {
	case "protocolid", "encap-protocol":
		for n, k := range ethProtoNames {
			if k == v.num {
				return n
			}
		}
		if v.typ == tUint16 {
			return fmt.Sprintf("%d", v.num)
		}
		return fmt.Sprintf("0x%x", v.num)
	case "opcode":
		for _, n := range []string{"Request", "Reply", "Request_Reverse", "Reply_Reverse", "DRARP_Request", "DRARP_Reply", "DRARP_Error", "InARP_Request", "ARP_NAK"} {
			if arpOpNames[strings.ToLower(n)] == v.num {
				return n
			}
		}
		return fmt.Sprintf("%d", v.num)
	case "protocol":
		for n, k := range ipProtoNames {
			if k == v.num {
				return n
			}
		}
		if v.typ == tUint8 {
			return fmt.Sprintf("%d", v.num)
		}
		return fmt.Sprintf("0x%x", v.num)
	case "state":
		return stateString(v.num)
	case "flags":
		if v.typ == tString {
			return tcpFlagString(v.num) + "/" + tcpFlagString(v.num2)
		}
	}
	switch v.typ {
	case tUint8Hex, tUint16Hex, tUint32Hex:
		return fmt.Sprintf("0x%x", v.num)
	case tUint8, tUint16, tUint32, tIPv4Mask, tIPv6Mask:
		return fmt.Sprintf("%d", v.num)
	case tIPv4, tIPv6:
		return v.addr.String()
	case tMAC, tMACMask:
		return FormatMAC(v.mac)
	case tBool:
		if v.num == 1 {
			return "true"
		}
		return "false"
	case tComment:
		return xmlAttrEscape(v.str)
	}
	return v.str
}

func tcpFlagString(f uint64) string {
	switch f {
	case 0:
		return "NONE"
	case 0x3f:
		return "ALL"
	}
	var s []string
	for _, n := range tcpFlagNames[:6] {
		if f&n.bits != 0 {
			s = append(s, n.name)
		}
	}
	return strings.Join(s, ",")
}

func xmlAttrEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", "\"", "&quot;")
	return r.Replace(s)
}

// Format prints a binding the way `virsh nwfilter-binding-dumpxml` does.
func (bd *Binding) Format() string {
	var b strings.Builder
	b.WriteString("<filterbinding>\n  <owner>\n")
	fmt.Fprintf(&b, "    <name>%s</name>\n    <uuid>%s</uuid>\n  </owner>\n", xmlAttrEscape(bd.OwnerName), FormatUUID(bd.OwnerUUID))
	fmt.Fprintf(&b, "  <portdev name='%s'/>\n", bd.PortDev)
	if bd.LinkDev != "" {
		fmt.Fprintf(&b, "  <linkdev name='%s'/>\n", bd.LinkDev)
	}
	fmt.Fprintf(&b, "  <mac address='%s'/>\n", FormatMAC(bd.MAC))
	formatRef(&b, "  ", bd.Filter, &bd.Params)
	b.WriteString("</filterbinding>\n")
	return b.String()
}
