// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// node is a generic XML element.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []node     `xml:",any"`
	Text     string     `xml:",chardata"`
}

func (n *node) attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

func parseNode(data []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	var n node
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("malformed XML: empty document")
		}
		return nil, fmt.Errorf("malformed XML: %v", err)
	}
	// Anything but whitespace, comments or processing instructions after
	// the root element is malformed, as libxml2 says.
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("malformed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, fmt.Errorf("malformed XML: content after the root element")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return nil, fmt.Errorf("malformed XML: content after the root element")
		}
	}
	return &n, nil
}

// Filter is a parsed <filter>.
type Filter struct {
	Name          string
	UUID          [16]byte
	UUIDSpecified bool
	Chain         string // "root", "mac", "ipv4-ip", ...
	Priority      int    // chain priority
	Entries       []Entry
	Source        string // file the filter was read from, if any
}

// Entry is a <rule> or a <filterref>, in document order.
type Entry struct {
	Rule *Rule
	Ref  *FilterRef
}

// FilterRef is a <filterref> with its parameters (a name may repeat,
// building a list; order is kept).
type FilterRef struct {
	Filter string
	Params Params
}

// Params is an ordered variable set: name to list of values.
type Params struct {
	names  []string
	values map[string][]string
}

// Add appends a value to a variable.
func (p *Params) Add(name, val string) {
	if p.values == nil {
		p.values = map[string][]string{}
	}
	if _, ok := p.values[name]; !ok {
		p.names = append(p.names, name)
	}
	p.values[name] = append(p.values[name], val)
}

// Get returns a variable's values.
func (p *Params) Get(name string) ([]string, bool) {
	v, ok := p.values[name]
	return v, ok
}

// Names returns the variable names in the order they were first added.
func (p *Params) Names() []string { return append([]string(nil), p.names...) }

// Len is the number of variables.
func (p *Params) Len() int { return len(p.names) }

// Rule is a parsed <rule>.
type Rule struct {
	Index        int // position among the filter's rules, from 0
	Action       string
	Direction    string // in, out, inout
	Priority     int
	NoStateMatch bool
	Proto        string // "" for a rule without protocol element
	Attrs        map[string]*Attr
	// Vars lists the distinct variable accesses of the rule, in libvirt's
	// registration order (protocol table order).
	Vars []VarAccess
}

// Attr is one attribute of a rule's protocol element.
type Attr struct {
	Name string
	Raw  string
	Neg  bool
	Var  *VarAccess // value is a variable reference
	Val  value      // parsed value when Var == nil
}

func (r *Rule) has(name string) bool { _, ok := r.Attrs[name]; return ok }

const (
	minPriority = -1000
	maxPriority = 1000
	maxChainLen = 12
	chainChars  = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-"
)

var chainPrefixes = []string{"mac", "vlan", "stp", "arp", "rarp", "ipv4", "ipv6"}

var defaultChainPriority = map[string]int{
	"root": 0, "mac": -800, "vlan": -750, "ipv4": -700, "ipv6": -600, "arp": -500, "rarp": -400,
}

// chainPrefix returns the protocol prefix of a valid chain name.
func chainPrefix(chain string) (string, error) {
	if len(chain) > maxChainLen {
		return "", fmt.Errorf("name of chain %q is longer than %d characters", chain, maxChainLen)
	}
	if strings.Trim(chain, chainChars) != "" {
		return "", fmt.Errorf("chain name %q contains invalid characters", chain)
	}
	if chain == "root" {
		return "root", nil
	}
	if strings.HasPrefix(chain, "root") {
		return "", fmt.Errorf("invalid chain name %q: use 'root' or a name starting with %s", chain, strings.Join(chainPrefixes, ", "))
	}
	for _, p := range chainPrefixes {
		if strings.HasPrefix(chain, p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("invalid chain name %q: use 'root' or a name starting with %s", chain, strings.Join(chainPrefixes, ", "))
}

func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	t := strings.TrimSpace(s)
	t = strings.ReplaceAll(t, "-", "")
	if len(t) != 32 {
		return u, fmt.Errorf("malformed uuid element %q", s)
	}
	b, err := hex.DecodeString(t)
	if err != nil {
		return u, fmt.Errorf("malformed uuid element %q", s)
	}
	copy(u[:], b)
	return u, nil
}

// FormatUUID prints a UUID the canonical way.
func FormatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ParseFilter parses one <filter> document. source names it in errors.
func ParseFilter(data []byte, source string) (*Filter, error) {
	n, err := parseNode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	f, err := filterFromNode(n)
	if err != nil {
		if f != nil && f.Name != "" {
			return nil, fmt.Errorf("%s: filter %q: %w", source, f.Name, err)
		}
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	f.Source = source
	return f, nil
}

func filterFromNode(n *node) (*Filter, error) {
	if n.XMLName.Local != "filter" {
		return nil, fmt.Errorf("unknown root element <%s> for a network filter", n.XMLName.Local)
	}
	f := &Filter{}
	name, ok := n.attr("name")
	if !ok || name == "" {
		return nil, fmt.Errorf("filter has no name")
	}
	f.Name = name
	prioStr, hasPrio := n.attr("priority")
	prio := 0
	if hasPrio {
		p, err := strconv.Atoi(strings.TrimSpace(prioStr))
		if err != nil {
			return f, fmt.Errorf("could not parse chain priority %q", prioStr)
		}
		if p < minPriority || p > maxPriority {
			return f, fmt.Errorf("priority %d is outside valid range of [%d,%d]", p, minPriority, maxPriority)
		}
		prio = p
	}
	f.Chain = "root"
	if chain, ok := n.attr("chain"); ok {
		prefix, err := chainPrefix(chain)
		if err != nil {
			return f, err
		}
		f.Chain = chain
		if hasPrio {
			f.Priority = prio
		} else {
			// stp has no entry in libvirt's table: the midpoint, 0.
			f.Priority = defaultChainPriority[prefix]
		}
	}
	ruleIdx := 0
	for i := range n.Children {
		c := &n.Children[i]
		switch c.XMLName.Local {
		case "uuid":
			if f.UUIDSpecified {
				continue
			}
			u, err := parseUUID(c.Text)
			if err != nil {
				return f, err
			}
			f.UUID, f.UUIDSpecified = u, true
		case "rule":
			r, err := ruleFromNode(c, ruleIdx)
			if err != nil {
				return f, fmt.Errorf("rule %d: %w", ruleIdx, err)
			}
			f.Entries = append(f.Entries, Entry{Rule: r})
			ruleIdx++
		case "filterref":
			ref, err := filterRefFromNode(c)
			if err != nil {
				return f, err
			}
			f.Entries = append(f.Entries, Entry{Ref: ref})
		}
	}
	return f, nil
}

const varNameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
const varValueChars = varNameChars + ".:"

func validVarName(s string) bool  { return s != "" && strings.Trim(s, varNameChars) == "" }
func validVarValue(s string) bool { return s != "" && strings.Trim(s, varValueChars) == "" }

func filterRefFromNode(n *node) (*FilterRef, error) {
	name, ok := n.attr("filter")
	if !ok {
		return nil, fmt.Errorf("filterref requires a filter attribute")
	}
	ref := &FilterRef{Filter: name}
	for i := range n.Children {
		c := &n.Children[i]
		if c.XMLName.Local != "parameter" {
			continue
		}
		pn, _ := c.attr("name")
		pv, _ := c.attr("value")
		// libvirt drops invalid parameters silently.
		if validVarName(pn) && validVarValue(pv) {
			ref.Params.Add(pn, pv)
		}
	}
	return ref, nil
}

var actions = map[string]bool{"drop": true, "accept": true, "reject": true, "return": true, "continue": true}
var directions = map[string]bool{"in": true, "out": true, "inout": true}

func ruleFromNode(n *node, idx int) (*Rule, error) {
	r := &Rule{Index: idx, Priority: 500, Attrs: map[string]*Attr{}}
	action, ok := n.attr("action")
	if !ok {
		return nil, fmt.Errorf("rule requires an action attribute")
	}
	if !actions[action] {
		return nil, fmt.Errorf("unknown rule action %q", action)
	}
	r.Action = action
	dir, ok := n.attr("direction")
	if !ok {
		return nil, fmt.Errorf("rule requires a direction attribute")
	}
	if !directions[dir] {
		return nil, fmt.Errorf("unknown rule direction %q", dir)
	}
	r.Direction = dir
	if p, ok := n.attr("priority"); ok {
		// Out of range or not a number: silently the default (libvirt).
		if v, err := strconv.Atoi(p); err == nil && v >= minPriority && v <= maxPriority {
			r.Priority = v
		}
	}
	if sm, ok := n.attr("statematch"); ok && (sm == "0" || strings.EqualFold(sm, "false")) {
		r.NoStateMatch = true
	}
	var proto *protoDef
	for i := range n.Children {
		c := &n.Children[i]
		p, known := protocols[c.XMLName.Local]
		if !known {
			continue
		}
		if proto == nil {
			proto = p
			r.Proto = p.name
		} else if p != proto {
			continue // elements of another protocol are ignored
		}
		if err := r.parseElement(c, proto); err != nil {
			return nil, err
		}
	}
	if proto != nil {
		r.fixup(proto)
	}
	return r, nil
}

func (r *Rule) parseElement(n *node, p *protoDef) error {
	neg := false
	if m, ok := n.attr("match"); ok && m == "no" {
		neg = true
	}
	for i := range p.attrs {
		ad := &p.attrs[i]
		raw, ok := n.attr(ad.name)
		if !ok {
			continue
		}
		a := &Attr{Name: ad.name, Raw: raw, Neg: neg}
		if strings.HasPrefix(raw, "$") {
			va, err := ParseVarAccess(raw[1:])
			if err != nil {
				return fmt.Errorf("<%s> attribute %s: %w", p.name, ad.name, err)
			}
			a.Var = r.addVar(va)
		} else {
			v, err := parseTyped(ad, raw)
			if err != nil {
				return fmt.Errorf("<%s> %w", p.name, err)
			}
			a.Val = v
		}
		r.Attrs[ad.name] = a
	}
	return r.validatePorts(p)
}

func (r *Rule) addVar(va VarAccess) *VarAccess {
	for i := range r.Vars {
		if r.Vars[i] == va {
			return &r.Vars[i]
		}
	}
	r.Vars = append(r.Vars, va)
	// Return a stable copy: r.Vars may grow.
	c := va
	return &c
}

// validatePorts is libvirt's rule check: <ip>/<ipv6> ports need protocol
// tcp, udp, dccp or sctp.
func (r *Rule) validatePorts(p *protoDef) error {
	if p.name != "ip" && p.name != "ipv6" {
		return nil
	}
	if !r.has("srcportstart") && !r.has("dstportstart") && !r.has("srcportend") && !r.has("dstportend") {
		return nil
	}
	pr, ok := r.Attrs["protocol"]
	if ok && pr.Var == nil {
		switch pr.Val.num {
		case 6, 17, 33, 132:
			return nil
		}
	}
	label := "IP"
	if p.name == "ipv6" {
		label = "IPv6"
	}
	return fmt.Errorf("%s rule with port specification requires protocol specification with protocol to be either one of tcp(6), udp(17), dccp(33), or sctp(132)", label)
}

func (r *Rule) fixup(p *protoDef) {
	for _, pair := range p.negFrom {
		a, ok := r.Attrs[pair[0]]
		if !ok {
			continue
		}
		base, ok := r.Attrs[pair[1]]
		a.Neg = ok && base.Neg
	}
	if p.ipsetFixup {
		_, hasSet := r.Attrs["ipset"]
		_, hasFlags := r.Attrs["ipsetflags"]
		if hasSet && !hasFlags {
			r.Attrs["ipsetflags"] = &Attr{Name: "ipsetflags", Raw: "src", Val: value{typ: tIPSetFlags, str: "src"}}
		} else {
			delete(r.Attrs, "ipset")
			delete(r.Attrs, "ipsetflags")
		}
	}
}

// Binding is a parsed libvirt <filterbinding>.
type Binding struct {
	OwnerName string
	OwnerUUID [16]byte
	PortDev   string
	LinkDev   string
	MAC       [6]byte
	Filter    string
	Params    Params
	Source    string
}

// ParseBinding parses a <filterbinding> document.
func ParseBinding(data []byte, source string) (*Binding, error) {
	n, err := parseNode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	b, err := bindingFromNode(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	b.Source = source
	return b, nil
}

func child(n *node, name string) *node {
	for i := range n.Children {
		if n.Children[i].XMLName.Local == name {
			return &n.Children[i]
		}
	}
	return nil
}

func bindingFromNode(n *node) (*Binding, error) {
	if n.XMLName.Local != "filterbinding" {
		return nil, fmt.Errorf("unknown root element <%s> for a filter binding", n.XMLName.Local)
	}
	b := &Binding{}
	owner := child(n, "owner")
	if owner == nil {
		return nil, fmt.Errorf("filterbinding: missing <owner>")
	}
	on := child(owner, "name")
	if on == nil || strings.TrimSpace(on.Text) == "" {
		return nil, fmt.Errorf("filterbinding: missing owner <name>")
	}
	b.OwnerName = strings.TrimSpace(on.Text)
	ou := child(owner, "uuid")
	if ou == nil {
		return nil, fmt.Errorf("filterbinding: missing owner <uuid>")
	}
	u, err := parseUUID(ou.Text)
	if err != nil {
		return nil, fmt.Errorf("filterbinding: owner: %w", err)
	}
	b.OwnerUUID = u
	pd := child(n, "portdev")
	if pd == nil {
		return nil, fmt.Errorf("filterbinding: missing <portdev>")
	}
	if b.PortDev, _ = pd.attr("name"); b.PortDev == "" {
		return nil, fmt.Errorf("filterbinding: <portdev> has no name")
	}
	if err := ValidDeviceName(b.PortDev); err != nil {
		return nil, fmt.Errorf("filterbinding: portdev: %w", err)
	}
	if ld := child(n, "linkdev"); ld != nil {
		b.LinkDev, _ = ld.attr("name")
		if err := ValidDeviceName(b.LinkDev); err != nil {
			return nil, fmt.Errorf("filterbinding: linkdev: %w", err)
		}
	}
	m := child(n, "mac")
	if m == nil {
		return nil, fmt.Errorf("filterbinding: missing <mac>")
	}
	ma, _ := m.attr("address")
	mac, ok := parseMAC(ma)
	if !ok {
		return nil, fmt.Errorf("filterbinding: malformed mac address %q", ma)
	}
	b.MAC = mac
	fr := child(n, "filterref")
	if fr == nil {
		return nil, fmt.Errorf("filterbinding: missing <filterref>")
	}
	ref, err := filterRefFromNode(fr)
	if err != nil {
		return nil, fmt.Errorf("filterbinding: %w", err)
	}
	b.Filter, b.Params = ref.Filter, ref.Params
	return b, nil
}

// ValidDeviceName checks a Linux interface name (IFNAMSIZ, no '/', no
// whitespace, not "." or "..").
func ValidDeviceName(s string) error {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return fmt.Errorf("invalid device name %q", s)
	}
	for _, c := range s {
		if c == '/' || c == ':' || c <= ' ' || c == 0x7f {
			return fmt.Errorf("invalid device name %q", s)
		}
	}
	return nil
}

// FormatMAC prints a MAC address as libvirt does.
func FormatMAC(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}
