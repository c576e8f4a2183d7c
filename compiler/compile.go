// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/nwbpf/nwbpf/maps"
)

// MaxInstances bounds the instances one rule expands to for one binding.
const MaxInstances = maps.MaxInstances

// Options tune compilation.
type Options struct {
	// StrictSubchainEnd makes the end of an L2 sub-chain go back to the
	// root chain (ebtables RETURN) instead of accepting the frame for the
	// L2 stage, which is what libvirt's chains do (NWFILTER.md §2).
	StrictSubchainEnd bool
}

// ruleInst is one occurrence of a rule in the flattened tree.
type ruleInst struct {
	f      *Filter
	r      *Rule
	path   []string  // filter names from the root to f
	scopes []*Params // filterref parameters along the path, root first
}

func (ri *ruleInst) where() string {
	return fmt.Sprintf("filter %q (path %s), rule %d (priority %d)", ri.f.Name, strings.Join(ri.path, " > "), ri.r.Index, ri.r.Priority)
}

// Error is a compile or bind error with its location.
type Error struct {
	Where string
	Err   error
}

func (e *Error) Error() string { return e.Where + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Compile flattens the tree rooted at filter root into a Program. The
// result depends only on the definitions in s.
func (s *Set) Compile(root string, opts Options) (*Program, error) {
	var insts []*ruleInst
	var walk func(name string, path []string, scopes []*Params) error
	walk = func(name string, path []string, scopes []*Params) error {
		f, ok := s.filters[name]
		if !ok {
			if len(path) == 0 {
				return fmt.Errorf("filter %q is not defined", name)
			}
			return fmt.Errorf("filter %q referenced by %s is not defined", name, strings.Join(path, " > "))
		}
		for _, p := range path {
			if p == name {
				return fmt.Errorf("filter reference loop: %s > %s", strings.Join(path, " > "), name)
			}
		}
		path = append(append([]string(nil), path...), name)
		for _, e := range f.Entries {
			if e.Rule != nil {
				insts = append(insts, &ruleInst{f: f, r: e.Rule, path: path, scopes: scopes})
				continue
			}
			sc := append(append([]*Params(nil), scopes...), &e.Ref.Params)
			if err := walk(e.Ref.Filter, path, sc); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, nil, nil); err != nil {
		return nil, err
	}
	// libvirt sorts rule instances with the root chain's first, then by
	// rule priority; ties keep the depth-first order.
	sort.SliceStable(insts, func(i, j int) bool {
		ri, rj := insts[i].f.Chain == "root", insts[j].f.Chain == "root"
		if ri != rj {
			return ri
		}
		return insts[i].r.Priority < insts[j].r.Priority
	})
	b := &builder{prog: &Program{Filter: root}, opts: opts}
	for _, ri := range insts {
		if len(ri.r.Vars) > 0 {
			b.prog.varInsts = append(b.prog.varInsts, ri)
		}
	}
	for _, d := range []maps.Dir{maps.DirOut, maps.DirIn} {
		if err := b.l2Stage(d, insts); err != nil {
			return nil, err
		}
		if err := b.l34Stage(d, insts); err != nil {
			return nil, err
		}
	}
	return b.prog, nil
}

func isL2(r *Rule) bool {
	if r.Proto == "" {
		return true
	}
	return protocols[r.Proto].l2
}

type builder struct {
	prog *Program
	opts Options
}

var jumpGuard = map[string]*condT{}

func init() {
	for p, k := range map[string]uint64{"vlan": 0x8100, "ipv4": 0x0800, "ipv6": 0x86dd, "arp": 0x0806, "rarp": 0x8035} {
		c := eqConst(maps.FEthProto, k)
		jumpGuard[p] = &c
	}
	stp := eqConst(maps.FDstMAC, 0x0180c2000000)
	jumpGuard["stp"] = &stp
	jumpGuard["mac"] = nil
}

type l2sub struct {
	name string
	prio int
}

func (b *builder) l2Stage(d maps.Dir, insts []*ruleInst) error {
	var l2 []*ruleInst
	for _, ri := range insts {
		if !isL2(ri.r) {
			continue
		}
		dir := ri.r.Direction
		if (d == maps.DirOut && (dir == "out" || dir == "inout")) || (d == maps.DirIn && (dir == "in" || dir == "inout")) {
			l2 = append(l2, ri)
		}
	}
	if len(l2) == 0 {
		return nil
	}
	// Sub-chains: one per chain name with rules in this direction; the
	// priority is the chain priority of the last rule processed.
	prio := map[string]int{}
	for _, ri := range l2 {
		if ri.f.Chain != "root" {
			prio[ri.f.Chain] = ri.f.Priority
		}
	}
	subs := make([]l2sub, 0, len(prio))
	for n, p := range prio {
		subs = append(subs, l2sub{n, p})
	}
	sort.Slice(subs, func(i, j int) bool {
		if subs[i].prio != subs[j].prio {
			return subs[i].prio < subs[j].prio
		}
		return subs[i].name < subs[j].name
	})
	// The from-VM copy of an inout rule is reversed.
	rev := d == maps.DirOut
	var entries []draft
	jump := func(s l2sub) {
		prefix, _ := chainPrefix(s.name)
		var g []group
		if c := jumpGuard[prefix]; c != nil {
			g = append(g, group{c: *c})
		}
		entries = append(entries, draft{kind: maps.RKJump, chain: "root", target: s.name, prio: s.prio, groups: g})
	}
	j := 0
	for _, ri := range l2 {
		if ri.f.Chain != "root" {
			continue
		}
		for j < len(subs) && subs[j].prio <= ri.r.Priority {
			jump(subs[j])
			j++
		}
		e, err := b.l2Entry(ri, rev && ri.r.Direction == "inout")
		if err != nil {
			return err
		}
		entries = append(entries, e)
	}
	for ; j < len(subs); j++ {
		jump(subs[j])
	}
	entries = append(entries, draft{kind: maps.RKChainEnd, action: maps.ActAccept, chain: "root"})
	for _, s := range subs {
		entries = append(entries, draft{kind: kindLabel, chain: s.name})
		for _, ri := range l2 {
			if ri.f.Chain != s.name {
				continue
			}
			e, err := b.l2Entry(ri, rev && ri.r.Direction == "inout")
			if err != nil {
				return err
			}
			entries = append(entries, e)
		}
		end := maps.ActAccept
		if b.opts.StrictSubchainEnd {
			end = maps.ActReturn
		}
		entries = append(entries, draft{kind: maps.RKChainEnd, action: end, chain: s.name})
	}
	return b.emit(d, maps.StageL2, entries)
}

var actionOf = map[string]maps.Action{
	"accept": maps.ActAccept, "drop": maps.ActDrop, "reject": maps.ActReject,
	"return": maps.ActReturn, "continue": maps.ActContinue,
}

func (b *builder) l2Entry(ri *ruleInst, rev bool) (draft, error) {
	g, err := l2Groups(ri.r, rev)
	if err != nil {
		return draft{}, &Error{Where: ri.where(), Err: err}
	}
	return draft{kind: maps.RKMatch, action: actionOf[ri.r.Action], ri: ri, chain: ri.f.Chain, prio: ri.r.Priority, groups: g, rev: rev}, nil
}

func (b *builder) l34Stage(d maps.Dir, insts []*ruleInst) error {
	var entries []draft
	for _, ri := range insts {
		if isL2(ri.r) {
			continue
		}
		if ri.r.Action == "continue" {
			return &Error{Where: ri.where(), Err: fmt.Errorf("action continue is not possible for protocol %s (libvirt's iptables layer has no CONTINUE target and fails to instantiate it)", ri.r.Proto)}
		}
		for _, in := range l34Instances(ri.r) {
			if in.dir != d {
				continue
			}
			g, ok, err := l34Groups(ri.r, in)
			if err != nil {
				return &Error{Where: ri.where(), Err: err}
			}
			if !ok {
				continue
			}
			entries = append(entries, draft{kind: maps.RKMatch, action: actionOf[ri.r.Action], ri: ri, chain: ri.f.Chain, prio: ri.r.Priority, groups: g, rev: in.rev})
		}
	}
	if len(entries) == 0 {
		return nil
	}
	entries = append(entries, draft{kind: maps.RKChainEnd, action: maps.ActAccept, chain: "root"})
	return b.emit(d, maps.StageL34, entries)
}

// kindLabel marks where a sub-chain starts among drafts; it emits nothing.
const kindLabel maps.RuleKind = 255

// draft is an entry before IDs, slots and jump targets are assigned.
type draft struct {
	kind   maps.RuleKind
	action maps.Action
	ri     *ruleInst
	chain  string
	target string
	prio   int
	rev    bool
	groups []group
}

// emit expands alternatives, assigns IDs and variable slots, resolves
// jump targets and appends the stage to the program.
func (b *builder) emit(d maps.Dir, st maps.Stage, drafts []draft) error {
	type pending struct {
		rule   maps.Rule
		target string
	}
	var out []pending
	starts := map[string]int{}
	for _, dr := range drafts {
		if dr.kind == kindLabel {
			starts[dr.chain] = len(out)
			continue
		}
		for _, alt := range alternatives(dr.groups) {
			id := uint32(len(b.prog.Meta))
			r := maps.Rule{Kind: dr.kind, Action: dr.action, ID: id}
			if len(alt) > maps.MaxConds {
				return fmt.Errorf("%s: %d conditions exceed %d", dr.ri.where(), len(alt), maps.MaxConds)
			}
			var varConds []condT
			var descs []string
			for i, c := range alt {
				mc := maps.Cond{Field: c.field, Op: c.op}
				if c.neg {
					mc.Flags |= maps.CFNeg
				}
				if dr.ri != nil && condHasVar(c, dr.ri.r) {
					mc.Flags |= maps.CFVar
					mc.Var = uint8(len(varConds))
					varConds = append(varConds, c)
				} else {
					var rr *Rule
					if dr.ri != nil {
						rr = dr.ri.r
					}
					mc.A, mc.B = c.build(literalValues(c, rr))
					if c.check != nil {
						if err := c.check(mc.A, mc.B); err != nil {
							return &Error{Where: dr.ri.where(), Err: fmt.Errorf("%s: %w", strings.Join(c.attrs, "/"), err)}
						}
					}
				}
				r.Cond[i] = mc
				if dr.ri != nil {
					descs = append(descs, c.describe(dr.ri.r))
				} else {
					descs = append(descs, c.describe(&Rule{}))
				}
			}
			r.NCond = uint8(len(alt))
			r.NVar = uint8(len(varConds))
			meta := RuleMeta{ID: id, Dir: d, Stage: st, Kind: dr.kind, Chain: dr.chain, Priority: dr.prio, Rule: -1, Match: strings.Join(descs, " && ")}
			switch dr.kind {
			case maps.RKJump:
				meta.Action = "jump " + dr.target
			case maps.RKChainEnd:
				meta.Action = "end:" + dr.action.String()
			default:
				meta.Action = dr.action.String()
			}
			if dr.ri != nil {
				meta.Filter, meta.Rule, meta.Path = dr.ri.f.Name, dr.ri.r.Index, dr.ri.path
				meta.Reversed = dr.rev
			}
			if len(varConds) > 0 {
				r.VSlot = uint32(len(b.prog.VarRules))
				b.prog.VarRules = append(b.prog.VarRules, VarRule{Slot: r.VSlot, ID: id, inst: dr.ri, conds: varConds})
			}
			b.prog.Meta = append(b.prog.Meta, meta)
			out = append(out, pending{rule: r, target: dr.target})
		}
	}
	if len(out) > maps.MaxStageLen {
		return fmt.Errorf("%s %s stage has %d entries, more than %d", d, st, len(out), maps.MaxStageLen)
	}
	rules := make([]maps.Rule, len(out))
	for i, p := range out {
		rules[i] = p.rule
		if p.rule.Kind == maps.RKJump {
			rules[i].Target = uint32(starts[p.target])
		}
	}
	b.prog.Stages[d][st] = rules
	return nil
}

// alternatives expands negated conjunctions: !(a && b) && rest becomes
// the entries (!a && rest) and (!b && rest), which with first-match
// semantics and one action are the same rule.
func alternatives(groups []group) [][]condT {
	alts := [][]condT{nil}
	for _, g := range groups {
		if g.negAll == nil {
			for i := range alts {
				alts[i] = append(alts[i], g.c)
			}
			continue
		}
		var next [][]condT
		for _, a := range alts {
			for _, c := range g.negAll {
				c.neg = true
				next = append(next, append(append([]condT(nil), a...), c))
			}
		}
		alts = next
	}
	return alts
}

func condHasVar(c condT, r *Rule) bool {
	for _, an := range c.attrs {
		if a, ok := r.Attrs[an]; ok && a.Var != nil {
			return true
		}
	}
	return false
}

func literalValues(c condT, r *Rule) []value {
	vals := make([]value, len(c.attrs))
	for i, an := range c.attrs {
		if a, ok := r.Attrs[an]; ok {
			vals[i] = a.Val
		}
	}
	return vals
}

// l34inst is one iptables rule libvirt creates for an L3/L4 rule.
type l34inst struct {
	dir         maps.Dir
	rev         bool
	state       uint64 // libvirt st* flags; 0: no state match
	defMatch    bool   // default statematch path
	maySkipICMP bool
}

// l34Instances is NWFILTER.md §7's table (libvirt's
// iptablesCreateRuleInstance and ...StateCtrl); the host-input chain HI
// always equals the from-VM chain FI, so it is not repeated.
func l34Instances(r *Rule) []l34inst {
	dIn := r.Direction == "in" || r.Direction == "inout"
	inout := r.Direction == "inout"
	var flags uint64
	if a, ok := r.Attrs["state"]; ok && a.Var == nil {
		flags = a.Val.num
	}
	if r.NoStateMatch || flags == 0 {
		need := !inout && !r.NoStateMatch
		var fi, fo uint64
		if need {
			fi, fo = stNew|stEstablished, stEstablished
			if dIn {
				fi, fo = stEstablished, stNew|stEstablished
			}
		}
		return []l34inst{
			{dir: maps.DirOut, rev: dIn, state: fi, defMatch: true, maySkipICMP: dIn},
			{dir: maps.DirIn, rev: !dIn, state: fo, defMatch: true, maySkipICMP: !dIn || inout},
		}
	}
	if flags&stNone != 0 {
		flags = 0
	}
	var out []l34inst
	if r.Direction != "in" {
		out = append(out, l34inst{dir: maps.DirOut, rev: dIn, state: flags, maySkipICMP: dIn || inout})
	}
	if dIn {
		out = append(out, l34inst{dir: maps.DirIn, rev: false, state: flags, maySkipICMP: inout})
	}
	return out
}

func swap(rev bool, a, b maps.Field) maps.Field {
	if rev {
		return b
	}
	return a
}

func opt(r *Rule, name string) string {
	if r.has(name) {
		return name
	}
	return ""
}

func neg(r *Rule, name string) bool {
	a, ok := r.Attrs[name]
	return ok && a.Neg
}

// l2Groups builds the conditions of an ebtables rule
// (ebtablesCreateRuleInstance); rev swaps source and destination.
func l2Groups(r *Rule, rev bool) ([]group, error) {
	var g []group
	add := func(c condT) { g = append(g, group{c: c}) }
	ethHdr := func() {
		if r.has("srcmacaddr") {
			add(eqMAC(swap(rev, maps.FSrcMAC, maps.FDstMAC), "srcmacaddr", opt(r, "srcmacmask"), neg(r, "srcmacaddr")))
		}
		if r.has("dstmacaddr") {
			add(eqMAC(swap(rev, maps.FDstMAC, maps.FSrcMAC), "dstmacaddr", opt(r, "dstmacmask"), neg(r, "dstmacaddr")))
		}
	}
	num := func(f maps.Field, attr string) {
		if r.has(attr) {
			add(eqNum(f, attr, neg(r, attr)))
		}
	}
	switch r.Proto {
	case "":
	case "mac":
		ethHdr()
		num(maps.FEthProto, "protocolid")
	case "vlan":
		ethHdr()
		add(eqConst(maps.FEthProto, 0x8100))
		num(maps.FVlanID, "vlanid")
		if r.has("encap-protocol") {
			add(vlanEncap(neg(r, "encap-protocol")))
		}
	case "stp":
		if rev && r.has("srcmacaddr") {
			return nil, fmt.Errorf("STP filtering in inout direction with source MAC address set is not supported")
		}
		ethHdr()
		add(eqConst(maps.FDstMAC, 0x0180c2000000))
		num(maps.FStpType, "type")
		num(maps.FStpFlags, "flags")
		for _, x := range []struct {
			f      maps.Field
			lo, hi string
		}{
			{maps.FStpRootPrio, "root-priority", "root-priority-hi"},
			{maps.FStpRootCost, "root-cost", "root-cost-hi"},
			{maps.FStpSenderPrio, "sender-priority", "sender-priority-hi"},
			{maps.FStpPort, "port", "port-hi"},
			{maps.FStpMsgAge, "age", "age-hi"},
			{maps.FStpMaxAge, "max-age", "max-age-hi"},
			{maps.FStpHelloTime, "hello-time", "hello-time-hi"},
			{maps.FStpForwardDelay, "forward-delay", "forward-delay-hi"},
		} {
			if r.has(x.lo) {
				add(rangeNum(x.f, x.lo, opt(r, x.hi), neg(r, x.lo)))
			}
		}
		for _, x := range []struct {
			f          maps.Field
			addr, mask string
		}{
			{maps.FStpRootAddr, "root-address", "root-address-mask"},
			{maps.FStpSenderAddr, "sender-address", "sender-address-mask"},
		} {
			if r.has(x.addr) {
				add(eqMAC(x.f, x.addr, opt(r, x.mask), neg(r, x.addr)))
			}
		}
	case "arp", "rarp":
		ethHdr()
		proto := uint64(0x0806)
		if r.Proto == "rarp" {
			proto = 0x8035
		}
		add(eqConst(maps.FEthProto, proto))
		num(maps.FArpHType, "hwtype")
		num(maps.FArpOpcode, "opcode")
		num(maps.FArpPType, "protocoltype")
		if r.has("arpsrcipaddr") {
			add(eqAddr(swap(rev, maps.FArpSPA, maps.FArpTPA), "arpsrcipaddr", opt(r, "arpsrcipmask"), neg(r, "arpsrcipaddr")))
		}
		if r.has("arpdstipaddr") {
			// libvirt quirk: without arpdstipmask, the destination
			// reuses arpsrcipmask when one was given.
			mask := opt(r, "arpdstipmask")
			if mask == "" && r.has("arpsrcipaddr") && r.has("arpsrcipmask") {
				mask = "arpsrcipmask"
			}
			add(eqAddr(swap(rev, maps.FArpTPA, maps.FArpSPA), "arpdstipaddr", mask, neg(r, "arpdstipaddr")))
		}
		if r.has("arpsrcmacaddr") {
			add(eqMAC(swap(rev, maps.FArpSHA, maps.FArpTHA), "arpsrcmacaddr", "", neg(r, "arpsrcmacaddr")))
		}
		if r.has("arpdstmacaddr") {
			add(eqMAC(swap(rev, maps.FArpTHA, maps.FArpSHA), "arpdstmacaddr", "", neg(r, "arpdstmacaddr")))
		}
		if a, ok := r.Attrs["gratuitous"]; ok {
			if a.Var != nil {
				return nil, fmt.Errorf("gratuitous=%q: a variable cannot decide whether the gratuitous match exists; write true or false", a.Raw)
			}
			if a.Val.num == 1 {
				c := eqConst(maps.FArpGrat, 1)
				c.neg = a.Neg
				add(c)
			}
		}
	case "ip":
		ethHdr()
		if err := l2IP(r, rev, add, 0x0800, maps.FIP4Src, maps.FIP4Dst); err != nil {
			return nil, err
		}
		num(maps.FIPTos, "dscp")
	case "ipv6":
		ethHdr()
		if err := l2IP(r, rev, add, 0x86dd, maps.FIP6Src, maps.FIP6Dst); err != nil {
			return nil, err
		}
		if r.has("type") || r.has("typeend") || r.has("code") || r.has("codeend") {
			// ebt_ip6 refuses an ICMPv6 type match unless the protocol
			// is icmpv6, not negated.
			pr, ok := r.Attrs["protocol"]
			if !ok || pr.Neg || pr.Var != nil || pr.Val.num != 58 {
				return nil, fmt.Errorf("ICMPv6 type/code needs protocol='icmpv6' (not negated, not a variable): ebtables refuses it otherwise, libvirt cannot instantiate it")
			}
			t := rangeDefault(maps.FICMPType, "type", "typeend", false)
			c := rangeDefault(maps.FICMPCode, "code", "codeend", false)
			t.check, c.check = orderedRange, orderedRange
			if neg(r, "type") {
				g = append(g, group{negAll: []condT{t, c}})
			} else {
				add(t)
				add(c)
			}
		}
	default:
		return nil, fmt.Errorf("protocol %s is not an L2 protocol", r.Proto)
	}
	return g, nil
}

// l2IP adds what <ip> and <ipv6> share: the ethertype, addresses with
// masks, protocol and ports.
func l2IP(r *Rule, rev bool, add func(condT), ethproto uint64, src, dst maps.Field) error {
	add(eqConst(maps.FEthProto, ethproto))
	if r.has("srcipaddr") {
		add(eqAddr(swap(rev, src, dst), "srcipaddr", opt(r, "srcipmask"), neg(r, "srcipaddr")))
	}
	if r.has("dstipaddr") {
		add(eqAddr(swap(rev, dst, src), "dstipaddr", opt(r, "dstipmask"), neg(r, "dstipaddr")))
	}
	if r.has("protocol") {
		add(eqNum(maps.FL4Proto, "protocol", neg(r, "protocol")))
	}
	return l2Ports(r, rev, add)
}

// l2Ports adds <ip>/<ipv6> port ranges. The kernel's ebt_ip/ebt_ip6 refuse
// ports with a negated protocol, so libvirt cannot instantiate those.
// vlanEncap reproduces what ebtables makes of libvirt's --vlan-encap:
// libvirt prints the value in decimal (a variable's text as is), and
// ebtables reads it as hex (or an ethertype name) and keeps 16 bits. So
// encap-protocol='arp' (2054) matches ethertype 0x2054, and 0x800
// (printed 2048) matches 0x2048. (ebtables' floor of 0x3c cannot be hit:
// libvirt's own check keeps the value at 0x3c or above, and any such value
// printed in decimal reads as at least 0x60.)
func vlanEncap(neg bool) condT {
	c := eqNum(maps.FVlanEncap, "encap-protocol", neg)
	c.sym = "== (as ebtables reads it)"
	c.build = func(v []value) (maps.U128, maps.U128) {
		return u(ebtablesEncap(v[0])), ones(2)
	}
	return c
}

func ebtablesEncap(v value) uint64 {
	text := v.raw
	if text == "" {
		text = fmt.Sprintf("%d", v.num)
	}
	if n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(text, "0x"), "0X"), 16, 64); err == nil {
		return n & 0xffff
	}
	// Not hex: ebtables looks the name up in /etc/ethertypes.
	return v.num
}

func l2Ports(r *Rule, rev bool, add func(condT)) error {
	if !r.has("srcportstart") && !r.has("dstportstart") {
		return nil
	}
	if neg(r, "protocol") {
		return fmt.Errorf("ports with a negated protocol: ebtables refuses this match, libvirt cannot instantiate it")
	}
	l34Ports(r, rev, add)
	return nil
}

// l34Groups builds one iptables rule (_iptablesCreateRuleInstance). ok is
// false when libvirt creates no rule for this instance.
func l34Groups(r *Rule, in l34inst) (g []group, ok bool, err error) {
	p := protocols[r.Proto]
	add := func(c condT) { g = append(g, group{c: c}) }
	rev := in.rev
	l3 := uint64(4)
	src, dst := maps.FIP4Src, maps.FIP4Dst
	if p.ipv6 {
		l3, src, dst = 6, maps.FIP6Src, maps.FIP6Dst
	}
	add(eqConst(maps.FL3, l3))
	if p.l4 != 0 {
		add(eqConst(maps.FL34Proto, uint64(p.l4)))
	}
	base := len(g)
	srcMacSkipped := false
	if r.has("srcmacaddr") {
		if rev {
			srcMacSkipped = true
		} else {
			add(eqMAC(maps.FSrcMAC, "srcmacaddr", "", neg(r, "srcmacaddr")))
			base = len(g)
		}
	}
	if r.has("srcipaddr") {
		add(eqAddr(swap(rev, src, dst), "srcipaddr", opt(r, "srcipmask"), neg(r, "srcipaddr")))
	} else if r.has("srcipfrom") {
		add(rangeAddr(swap(rev, src, dst), "srcipfrom", opt(r, "srcipto"), neg(r, "srcipfrom")))
	}
	if r.has("dstipaddr") {
		add(eqAddr(swap(rev, dst, src), "dstipaddr", opt(r, "dstipmask"), neg(r, "dstipaddr")))
	} else if r.has("dstipfrom") {
		if p.ipv6 && r.has("dstipto") {
			return nil, false, fmt.Errorf("dstipto on %s: libvirt types it as an IPv4 address, which ip6tables cannot use in an IPv6 range", r.Proto)
		}
		add(rangeAddr(swap(rev, dst, src), "dstipfrom", opt(r, "dstipto"), neg(r, "dstipfrom")))
	}
	if r.has("dscp") {
		add(eqNum(maps.FDSCP, "dscp", neg(r, "dscp")))
	}
	connlimit := r.has("connlimit-above")
	if connlimit {
		if rev {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("connlimit-above is not enforced by this version of nwbpf; remove it or use libvirt's own driver for this filter")
	}
	hasICMPType := false
	switch r.Proto {
	case "tcp", "tcp-ipv6":
		if a, ok := r.Attrs["flags"]; ok {
			c := condT{field: maps.FTCPFlags, op: maps.OpEq, neg: a.Neg, attrs: []string{"flags"}, sym: "mask/set",
				build: func(v []value) (maps.U128, maps.U128) { return u(v[0].num2), u(v[0].num) }}
			add(c)
		}
		l34Ports(r, rev, add)
		if r.has("option") {
			add(condT{field: maps.FTCPFlags, op: maps.OpTCPOpt, neg: neg(r, "option"), attrs: []string{"option"}, sym: "",
				build: func(v []value) (maps.U128, maps.U128) { return u(v[0].num), maps.U128{} }})
		}
	case "udp", "udp-ipv6", "sctp", "sctp-ipv6":
		l34Ports(r, rev, add)
	case "icmp", "icmpv6":
		if r.has("type") {
			hasICMPType = true
			if in.maySkipICMP {
				return nil, false, nil
			}
			t := eqNum(maps.FICMPType, "type", false)
			if r.has("code") {
				c := eqNum(maps.FICMPCode, "code", false)
				if neg(r, "type") {
					g = append(g, group{negAll: []condT{t, c}})
				} else {
					add(t)
					add(c)
				}
			} else {
				t.neg = neg(r, "type")
				add(t)
			}
		}
	}
	if srcMacSkipped && len(g) == base {
		return nil, false, nil
	}
	skipMatch := connlimit
	if r.Action != "accept" {
		skipMatch = in.defMatch
	}
	if in.state != 0 && !skipMatch {
		add(ctState(in.state))
		if in.defMatch && !hasICMPType && r.Direction != "inout" {
			d := uint64(maps.CTDirOriginal)
			if rev {
				d = maps.CTDirReply
			}
			c := eqConst(maps.FCTDir, d)
			add(c)
		}
	}
	if r.has("ipset") {
		set := r.Attrs["ipset"]
		// For all/all-ipv6 libvirt keeps ipset only with ipsetflags.
		if p.ipsetFixup || r.has("ipsetflags") {
			return nil, false, fmt.Errorf("ipset %q: nwbpf does not manage ipsets and cannot enforce membership of an external set", set.Raw)
		}
	}
	return g, true, nil
}

func l34Ports(r *Rule, rev bool, add func(condT)) {
	if r.has("srcportstart") {
		c := rangeNum(swap(rev, maps.FSport, maps.FDport), "srcportstart", opt(r, "srcportend"), neg(r, "srcportstart"))
		c.check = orderedRange
		add(c)
	}
	if r.has("dstportstart") {
		c := rangeNum(swap(rev, maps.FDport, maps.FSport), "dstportstart", opt(r, "dstportend"), neg(r, "dstportstart"))
		c.check = orderedRange
		add(c)
	}
}
