// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"fmt"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/compiler/eval"
	"github.com/nwbpf/nwbpf/maps"
)

// TC verdicts.
const (
	tcOK       = 0
	tcShot     = 2
	tcRedirect = 7
)

// tcase is one classifier run: a program bound to a dummy interface, a
// frame through one hook, and the expected decision.
type tcase struct {
	name   string
	stages [2][2][]maps.Rule
	inst   [][][]maps.CVal
	frame  []byte
	hook   maps.Hook // the binding's OutHook is ingress: ingress is "out"
	mode   maps.Mode
	want   maps.Verdict
	stage  maps.Stage
	index  uint32 // deciding entry within the stage, maps.NoEntry
	noEval bool   // the reference evaluator has no counterpart (fragments)
}

// out returns stages with the "out" direction's L2 and L3/L4 entries.
func out(l2, l34 []maps.Rule) (s [2][2][]maps.Rule) {
	s[maps.DirOut][maps.StageL2], s[maps.DirOut][maps.StageL34] = l2, l34
	return s
}

// drops is the decision of a drop by the stage's entry i.
func (c tcase) drops(st maps.Stage, i uint32) tcase {
	c.want, c.stage, c.index = maps.VerdictDrop, st, i
	return c
}

// passes is the decision of a frame no entry stopped.
func (c tcase) passes() tcase {
	c.want, c.stage, c.index = maps.VerdictPass, maps.StageL34, maps.NoEntry
	return c
}

// check binds c's program to ifindex, runs c's frame and compares the
// decision with c's and with the reference evaluator's, and the parse with
// the reference parser's.
func check(t *testing.T, ifindex int, c tcase) result {
	t.Helper()
	l, store := testLoader(t)
	err := store.Bind(uint32(ifindex), maps.BindRequest{
		ID: uint32(ifindex), OutHook: maps.HookIngress, Mode: c.mode,
		Stages: c.stages, Instances: c.inst,
	})
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	r := run(t, l, c.hook, ifindex, c.frame)
	if r.cpu < 0 {
		t.Fatalf("no trace recorded")
	}
	tr := r.trace
	if tr.Verdict != c.want || tr.Stage != c.stage || tr.Index != c.index {
		t.Errorf("decision = %s at %s entry %d, want %s at %s entry %d",
			tr.Verdict, tr.Stage, int32(tr.Index), c.want, c.stage, int32(c.index))
	}
	wantRet := map[maps.Verdict]uint32{maps.VerdictPass: tcOK, maps.VerdictDrop: tcShot,
		maps.VerdictError: tcShot, maps.VerdictReject: tcShot}[c.want]
	if c.mode == maps.ModeShadow {
		wantRet = tcOK
	}
	if r.ret != wantRet && !(c.want == maps.VerdictReject && r.ret == tcRedirect) {
		t.Errorf("TC verdict = %d, want %d", r.ret, wantRet)
	}
	comparePacket(t, &r.pkt, eval.Parse(c.frame, eval.Meta{}))
	if !c.noEval {
		dir := maps.DirOut
		if c.hook == maps.HookEgress {
			dir = maps.DirIn
		}
		compareEval(t, tr, eval.Eval(c.stages, compiler.Instances(c.inst), eval.Parse(c.frame, eval.Meta{}), dir, ctView(&r.pkt)))
	}
	return r
}

// ctView is the conntrack view the classifier gave a frame, for the
// reference evaluator (which takes it as an input).
func ctView(p *maps.Pkt) eval.CT {
	if !p.Has(maps.FCTState) {
		return eval.CT{}
	}
	ct := eval.CT{Present: true, State: uint8(p.Val[maps.FCTState][1])}
	if p.Has(maps.FCTDir) {
		ct.Dir = uint8(p.Val[maps.FCTDir][1])
	}
	return ct
}

// comparePacket compares the classifier's parse with the reference one.
// The conntrack fields come from the flow table, not from the frame: the
// reference parser never has them (ctView passes them to eval.Eval).
func comparePacket(t *testing.T, got *maps.Pkt, want *eval.Packet) {
	t.Helper()
	for f := maps.FNone; f < maps.FieldMax; f++ {
		if f == maps.FCTState || f == maps.FCTDir {
			continue
		}
		wv, wok := eval.FieldValue(want, f)
		if got.Has(f) != wok {
			t.Errorf("field %s: present %v, reference %v", f, got.Has(f), wok)
			continue
		}
		if wok && got.Val[f] != wv {
			t.Errorf("field %s = %#x, reference %#x", f, got.Val[f], wv)
		}
	}
	for k := range 256 {
		found, ok := eval.TCPOption(want, uint8(k))
		if (got.TCPOptOK != 0) != ok {
			t.Errorf("TCP options readable %v, reference %v", got.TCPOptOK != 0, ok)
			return
		}
		if ok && got.HasTCPOption(uint8(k)) != found {
			t.Errorf("TCP option %d: %v, reference %v", k, got.HasTCPOption(uint8(k)), found)
		}
	}
}

// compareEval compares the classifier's decision with the reference one.
func compareEval(t *testing.T, tr maps.Trace, res eval.Result) {
	t.Helper()
	want := map[eval.Verdict]maps.Verdict{eval.VerdictAccept: maps.VerdictPass, eval.VerdictDrop: maps.VerdictDrop,
		eval.VerdictReject: maps.VerdictReject, eval.VerdictError: maps.VerdictError}[res.Verdict]
	idx := uint32(maps.NoEntry)
	if res.Index >= 0 {
		idx = uint32(res.Index)
	}
	if tr.Verdict != want || tr.Stage != res.Stage || tr.Index != idx {
		t.Errorf("decision %s at %s entry %d, reference %s at %s entry %d (%v)",
			tr.Verdict, tr.Stage, int32(tr.Index), want, res.Stage, res.Index, res.Err)
	}
	if res.Index >= 0 && tr.Rule != res.RuleID {
		t.Errorf("rule id %d, reference %d", tr.Rule, res.RuleID)
	}
}

// fieldCase tests one condition alone in the out L2 stage: a frame it
// matches is dropped by entry 0, any other passes.
type fieldCase struct {
	name  string
	frame []byte
	cond  maps.Cond
	match bool
}

func runFieldCases(t *testing.T, cases []fieldCase) {
	t.Helper()
	testLoader(t)
	ifindex := dummy(t)
	for _, fc := range cases {
		t.Run(fc.name, func(t *testing.T) {
			c := tcase{stages: out([]maps.Rule{match(maps.ActDrop, fc.cond)}, nil), frame: fc.frame}
			switch v, _ := eval.FieldValue(eval.Parse(fc.frame, eval.Meta{}), maps.FFrag); {
			case fc.match:
				c = c.drops(maps.StageL2, 0)
			case v == maps.U128{0, 1}:
				// A later fragment passing L2 meets the fragment
				// tracking, which has not seen its first fragment.
				c = c.drops(maps.StageL34, maps.NoEntry)
				c.noEval = true
			default:
				c = c.passes()
			}
			check(t, ifindex, c)
		})
	}
}

func TestClassifierEthernetVLAN(t *testing.T) {
	testLoader(t)
	u4 := udp4(t)
	q := frame(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4},
		ip4(layers.IPProtocolUDP), udp(1234, 53), payload(8))
	ad := frame(t, eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolUDP), udp(1, 2))
	runFieldCases(t, []fieldCase{
		{"srcmac", u4, eq(maps.FSrcMAC, macVMv), true},
		{"srcmac other", u4, eq(maps.FSrcMAC, macGWv), false},
		{"dstmac", u4, eq(maps.FDstMAC, macGWv), true},
		{"dstmac OUI mask", u4, masked(maps.FDstMAC, 0x525400000000, 0xffffff000000), true},
		{"ethproto ipv4", u4, eq(maps.FEthProto, 0x0800), true},
		{"ethproto of 802.1Q is 0x8100", q, eq(maps.FEthProto, 0x8100), true},
		{"ethproto of 802.1ad is 0x8100", ad, eq(maps.FEthProto, 0x8100), true},
		{"vlan-id", q, eq(maps.FVlanID, 42), true},
		{"vlan-id other", q, eq(maps.FVlanID, 43), false},
		{"vlan-encap", q, eq(maps.FVlanEncap, 0x0800), true},
		{"vlan-id of 802.1ad outer tag", ad, eq(maps.FVlanID, 7), true},
		{"vlan-encap of 802.1ad is the inner tag", ad, eq(maps.FVlanEncap, 0x8100), true},
		{"vlan-id absent untagged, NEG false", u4, neg(eq(maps.FVlanID, 42)), false},
		{"ip fields absent when tagged", q, eq(maps.FL3, 4), false},
		{"ip fields absent when tagged, NEG false", q, neg(eq(maps.FIP4Src, ipGWv)), false},
		{"tag cut off: not tagged", rawEth(0x8100, 0, 42), eq(maps.FEthProto, 0x8100), true},
		{"tag cut off: no vlan-id", rawEth(0x8100, 0, 42), neg(eq(maps.FVlanID, 1)), false},
	})
}

func TestClassifierSTP(t *testing.T) {
	cfg := bpdu(stpBody)
	tcn := bpdu([]byte{0x80}) // a real TCN: ebt_stp sees a short body
	short := bpdu(stpBody[:30])
	notBPDU := append(bpdu(stpBody), 0)
	notBPDU[14+5] = 2 // version 2 (RSTP): not ebt_stp's header
	runFieldCases(t, []fieldCase{
		{"type", cfg, eq(maps.FStpType, 0), true},
		{"type of a TCN", tcn, eq(maps.FStpType, 0), true},
		{"flags", cfg, eq(maps.FStpFlags, 1), true},
		{"root-prio", cfg, eq(maps.FStpRootPrio, 0x8000), true},
		{"root-addr", cfg, eq(maps.FStpRootAddr, 0x525400000099), true},
		{"root-cost", cfg, rng(maps.FStpRootCost, 1, 4), true},
		{"sender-prio", cfg, eq(maps.FStpSenderPrio, 0x8001), true},
		{"sender-addr", cfg, eq(maps.FStpSenderAddr, 0x525400000098), true},
		{"port", cfg, eq(maps.FStpPort, 0x8002), true},
		{"msg-age", cfg, eq(maps.FStpMsgAge, 0x0100), true},
		{"max-age", cfg, eq(maps.FStpMaxAge, 0x1400), true},
		{"hello-time", cfg, eq(maps.FStpHelloTime, 0x0200), true},
		{"forward-delay", cfg, eq(maps.FStpForwardDelay, 0x0f00), true},
		{"body fields absent on a TCN", tcn, neg(eq(maps.FStpFlags, 9)), false},
		{"body fields absent on a short body", short, neg(eq(maps.FStpForwardDelay, 1)), false},
		{"config field compares on a body", cfg, eq(maps.FStpRootPrio, 1), false},
		{"config field NEG on a body", cfg, neg(eq(maps.FStpRootPrio, 1)), true},
		{"config field NEG false on a short body", short, neg(eq(maps.FStpRootPrio, 1)), false},
		{"config field NEG false on non-BPDU", udp4(t), neg(eq(maps.FStpRootPrio, 1)), false},
		{"RSTP version is no BPDU", notBPDU, neg(eq(maps.FStpType, 1)), false},
		{"type absent on non-BPDU, NEG false", udp4(t), neg(eq(maps.FStpType, 1)), false},
	})
}

func arpFrame(t *testing.T, typ layers.EthernetType, op uint16, htype layers.LinkType, spa, tpa net.IP) []byte {
	return frame(t, eth(typ), &layers.ARP{
		AddrType: htype, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: op, SourceHwAddress: macVM, SourceProtAddress: spa,
		DstHwAddress: macGW, DstProtAddress: tpa,
	})
}

func TestClassifierARP(t *testing.T) {
	req := arpFrame(t, layers.EthernetTypeARP, 1, layers.LinkTypeEthernet, ipVM, ipGW)
	grat := arpFrame(t, layers.EthernetTypeARP, 1, layers.LinkTypeEthernet, ipVM, ipVM)
	rarp := arpFrame(t, layers.EthernetType(0x8035), 3, layers.LinkTypeEthernet, ipVM, ipGW)
	ieee := arpFrame(t, layers.EthernetTypeARP, 1, layers.LinkType(6), ipVM, ipGW)
	runFieldCases(t, []fieldCase{
		{"htype", req, eq(maps.FArpHType, 1), true},
		{"ptype", req, eq(maps.FArpPType, 0x0800), true},
		{"opcode", req, eq(maps.FArpOpcode, 1), true},
		{"sha", req, eq(maps.FArpSHA, macVMv), true},
		{"tha", req, eq(maps.FArpTHA, macGWv), true},
		{"spa", req, eq(maps.FArpSPA, ipVMv), true},
		{"tpa", req, masked(maps.FArpTPA, 0x0a000000, 0xffffff00), true},
		{"not gratuitous", req, eq(maps.FArpGrat, 0), true},
		{"gratuitous", grat, eq(maps.FArpGrat, 1), true},
		{"rarp opcode", rarp, eq(maps.FArpOpcode, 3), true},
		{"rarp sha", rarp, eq(maps.FArpSHA, macVMv), true},
		{"sha absent for htype 6, NEG false", ieee, neg(eq(maps.FArpSHA, 1)), false},
		{"spa present for htype 6", ieee, eq(maps.FArpSPA, ipVMv), true},
		{"arp fields absent in IPv4", udp4(t), neg(eq(maps.FArpOpcode, 9)), false},
	})
}

func TestClassifierIPv4(t *testing.T) {
	u4 := udp4(t)
	tos := ip4(layers.IPProtocolUDP)
	tos.TOS = 0xb8
	withTOS := frame(t, eth(layers.EthernetTypeIPv4), tos, udp(1, 2))
	syn := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcpSyn(40000, 22))
	icmp := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1})
	igmp := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolIGMP), payload(8))
	opts := ip4(layers.IPProtocolUDP)
	opts.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
	withOpts := frame(t, eth(layers.EthernetTypeIPv4), opts, udp(7, 8))
	later := ip4(layers.IPProtocolUDP)
	later.FragOffset = 100
	nonFirst := frame(t, eth(layers.EthernetTypeIPv4), later, payload(16))
	shortL4 := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), payload(3))
	runFieldCases(t, []fieldCase{
		{"l3", u4, eq(maps.FL3, 4), true},
		{"ip4-src", u4, eq(maps.FIP4Src, ipVMv), true},
		{"ip4-src other", u4, eq(maps.FIP4Src, ipGWv), false},
		{"ip4-src NEG", u4, neg(eq(maps.FIP4Src, ipGWv)), true},
		{"ip4-dst /24", u4, masked(maps.FIP4Dst, 0x0a000000, 0xffffff00), true},
		{"ip4-dst range", u4, rng(maps.FIP4Dst, ipGWv, ipVMv), true},
		{"l4proto", u4, eq(maps.FL4Proto, 17), true},
		{"tos", withTOS, eq(maps.FIPTos, 0xb8), true},
		{"dscp", withTOS, eq(maps.FDSCP, 46), true},
		{"sport range", u4, rng(maps.FSport, 1000, 2000), true},
		{"sport range miss", u4, rng(maps.FSport, 1235, 2000), false},
		{"dport", u4, eq(maps.FDport, 53), true},
		{"ports after IP options", withOpts, eq(maps.FDport, 8), true},
		{"frag 0", u4, eq(maps.FFrag, 0), true},
		{"tcp ports", syn, eq(maps.FDport, 22), true},
		{"tcp-flags anybit SYN", syn, anybit(maps.FTCPFlags, 0x02), true},
		{"tcp-flags anybit ACK", syn, anybit(maps.FTCPFlags, 0x10), false},
		{"tcp-flags SYN only", syn, masked(maps.FTCPFlags, 0x02, 0x3f), true},
		{"tcpopt MSS", syn, tcpopt(2), true},
		{"tcpopt timestamp", syn, tcpopt(8), false},
		{"tcpopt timestamp NEG", syn, neg(tcpopt(8)), true},
		{"tcpopt absent on UDP, NEG false", u4, neg(tcpopt(8)), false},
		{"icmp type", icmp, eq(maps.FICMPType, 8), true},
		{"icmp code", icmp, eq(maps.FICMPCode, 0), true},
		{"icmp type absent on UDP, NEG false", u4, neg(eq(maps.FICMPType, 3)), false},
		{"sport absent on ICMP, NEG false", icmp, neg(eq(maps.FSport, 1)), false},
		{"igmp l4proto", igmp, eq(maps.FL4Proto, 2), true},
		{"igmp has no ports", igmp, neg(eq(maps.FDport, 0)), false},
		{"non-first fragment", nonFirst, eq(maps.FFrag, 1), true},
		{"non-first fragment has no ports", nonFirst, neg(eq(maps.FDport, 53)), false},
		{"3 bytes of TCP: no ports", shortL4, neg(eq(maps.FSport, 0)), false},
		// The connection state is looked up after the L2 stage passed.
		{"ct-state absent in the L2 stage, NEG false", u4, neg(anybit(maps.FCTState, maps.CTNew)), false},
		{"ct-dir absent in the L2 stage", u4, neg(eq(maps.FCTDir, maps.CTDirOriginal)), false},
	})
}

func TestClassifierIPv6(t *testing.T) {
	tc6 := ip6(layers.IPProtocolUDP)
	tc6.TrafficClass = 0xb8
	u6 := frame(t, eth(layers.EthernetTypeIPv6), tc6, udp(1234, 547), payload(4))
	icmp6 := frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolICMPv6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(135, 0)}, payload(20))
	hbh := raw6(0, ext6(60, 0), ext6(43, 1), ext6(17, 0), udpHdr(5, 53))
	ah := make([]byte, 16)
	ah[0], ah[1] = 17, 2
	withAH := raw6(51, ah, udpHdr(5, 54))
	long := raw6(0, ext6(0, 0), ext6(0, 0), ext6(0, 0), ext6(0, 0), ext6(0, 0), ext6(0, 0), ext6(0, 0), ext6(0, 0), ext6(17, 0), udpHdr(1, 2))
	eight := raw6(0, ext6(0, 0), ext6(0, 0), ext6(0, 0), ext6(0, 0), ext6(0, 0), ext6(0, 0), ext6(0, 0), ext6(17, 0), udpHdr(1, 2))
	cut := raw6(0, ext6(17, 1)[:12])
	first := raw6(44, frag6(17, 0, true, 7), udpHdr(9, 53))
	later := raw6(44, frag6(17, 100, false, 7), make([]byte, 8))
	lo, hi := ip6v(net.ParseIP("fd00::")), ip6v(net.ParseIP("fd00::ffff"))
	runFieldCases(t, []fieldCase{
		{"l3", u6, eq(maps.FL3, 6), true},
		{"ip6-src", u6, eq128(maps.FIP6Src, ip6v(ip6VM)), true},
		{"ip6-dst", u6, eq128(maps.FIP6Dst, ip6v(ip6GW)), true},
		{"ip6-dst other", u6, eq128(maps.FIP6Dst, ip6v(ip6VM)), false},
		{"ip6-src /64", u6, maps.Cond{Field: maps.FIP6Src, Op: maps.OpEq, A: maps.U128{0xfd00 << 48, 0}, B: maps.U128{^uint64(0), 0}}, true},
		{"ip6-src 128-bit range", u6, maps.Cond{Field: maps.FIP6Src, Op: maps.OpRange, A: lo, B: hi}, true},
		{"ip6-src 128-bit range miss", u6, maps.Cond{Field: maps.FIP6Src, Op: maps.OpRange, A: lo, B: ip6v(net.ParseIP("fd00::4"))}, false},
		{"ip4 fields absent", u6, neg(eq(maps.FIP4Src, 1)), false},
		{"tos absent in IPv6", u6, neg(eq(maps.FIPTos, 1)), false},
		{"dscp", u6, eq(maps.FDSCP, 46), true},
		{"dport", u6, eq(maps.FDport, 547), true},
		{"icmpv6 type", icmp6, eq(maps.FICMPType, 135), true},
		{"icmpv6 l4proto", icmp6, eq(maps.FL4Proto, 58), true},
		{"ext headers: l4proto", hbh, eq(maps.FL4Proto, 17), true},
		{"ext headers: dport", hbh, eq(maps.FDport, 53), true},
		{"AH: dport", withAH, eq(maps.FDport, 54), true},
		{"8 ext headers: dport", eight, eq(maps.FDport, 2), true},
		{"9 ext headers: no l4proto", long, neg(eq(maps.FL4Proto, 0)), false},
		{"cut ext header: no l4proto", cut, neg(eq(maps.FL4Proto, 0)), false},
		{"first fragment: dport", first, eq(maps.FDport, 53), true},
		{"first fragment: frag 0", first, eq(maps.FFrag, 0), true},
		{"later fragment: frag 1", later, eq(maps.FFrag, 1), true},
		{"later fragment: l4proto", later, eq(maps.FL4Proto, 17), true},
		{"later fragment: no dport", later, neg(eq(maps.FDport, 1)), false},
	})
}

func TestClassifierFlow(t *testing.T) {
	testLoader(t)
	ifindex := dummy(t)
	u4 := udp4(t)
	ipv4 := eq(maps.FEthProto, 0x0800)
	isUDP := eq(maps.FL4Proto, 17)
	isTCP := eq(maps.FL4Proto, 6)
	sub := func(subRules ...maps.Rule) []maps.Rule {
		return append([]maps.Rule{jump(3, ipv4), match(maps.ActDrop), end(maps.ActAccept)}, subRules...)
	}
	cases := []tcase{
		tcase{name: "empty program passes", frame: u4}.passes(),
		tcase{name: "drop", stages: out([]maps.Rule{match(maps.ActDrop)}, nil), frame: u4}.drops(maps.StageL2, 0),
		tcase{name: "L2 reject drops", stages: out([]maps.Rule{match(maps.ActReject, isUDP)}, nil), frame: u4}.drops(maps.StageL2, 0),
		tcase{name: "first match wins", stages: out([]maps.Rule{match(maps.ActDrop, isTCP), match(maps.ActAccept, isUDP), match(maps.ActDrop)}, nil), frame: u4}.passes(),
		tcase{name: "sub-chain return resumes root", stages: out(sub(match(maps.ActReturn, isUDP), end(maps.ActReturn)), nil), frame: u4}.drops(maps.StageL2, 1),
		tcase{name: "sub-chain accept skips root", stages: out(sub(match(maps.ActAccept, isUDP), end(maps.ActReturn)), nil), frame: u4}.passes(),
		tcase{name: "sub-chain end accept skips root", stages: out(sub(match(maps.ActDrop, isTCP), end(maps.ActAccept)), nil), frame: u4}.passes(),
		tcase{name: "sub-chain end return resumes root", stages: out(sub(match(maps.ActDrop, isTCP), end(maps.ActReturn)), nil), frame: u4}.drops(maps.StageL2, 1),
		tcase{name: "sub-chain drop", stages: out(sub(match(maps.ActDrop, isUDP), end(maps.ActAccept)), nil), frame: u4}.drops(maps.StageL2, 3),
		tcase{name: "jump guard false", stages: out([]maps.Rule{jump(3, eq(maps.FEthProto, 0x0806)), match(maps.ActDrop), end(maps.ActAccept), end(maps.ActAccept)}, nil), frame: u4}.drops(maps.StageL2, 1),
		tcase{name: "continue goes on", stages: out([]maps.Rule{match(maps.ActContinue, isUDP), match(maps.ActDrop, isUDP)}, nil), frame: u4}.drops(maps.StageL2, 1),
		tcase{name: "root return passes L2", stages: out([]maps.Rule{match(maps.ActReturn, isUDP), match(maps.ActDrop)}, nil), frame: u4}.passes(),
		tcase{name: "L2 accept does not skip L3/L4", stages: out([]maps.Rule{match(maps.ActAccept)}, []maps.Rule{match(maps.ActDrop, eq(maps.FDport, 53))}), frame: u4}.drops(maps.StageL34, 0),
		{name: "L3/L4 accept", stages: out(nil, []maps.Rule{match(maps.ActAccept, isUDP), match(maps.ActDrop)}), frame: u4, want: maps.VerdictPass, stage: maps.StageL34, index: 0},
		{name: "L3/L4 return passes", stages: out(nil, []maps.Rule{match(maps.ActReturn, isUDP), match(maps.ActDrop)}), frame: u4, want: maps.VerdictPass, stage: maps.StageL34, index: 0},
		{name: "L3/L4 chain end", stages: out(nil, []maps.Rule{match(maps.ActDrop, isTCP), end(maps.ActAccept)}), frame: u4, want: maps.VerdictPass, stage: maps.StageL34, index: 1},
		tcase{name: "L3/L4 drop", stages: out(nil, []maps.Rule{match(maps.ActDrop, isTCP), match(maps.ActDrop, isUDP)}), frame: u4}.drops(maps.StageL34, 1),
		{name: "L3/L4 reject", stages: out(nil, []maps.Rule{match(maps.ActReject, isUDP)}), frame: u4, want: maps.VerdictReject, stage: maps.StageL34, index: 0},
		tcase{name: "in rules ignore out frames", stages: [2][2][]maps.Rule{maps.DirIn: {{match(maps.ActDrop)}, nil}}, frame: u4}.passes(),
		tcase{name: "in rules at egress", stages: [2][2][]maps.Rule{maps.DirIn: {{match(maps.ActDrop)}, nil}}, frame: u4, hook: maps.HookEgress}.drops(maps.StageL2, 0),
		tcase{name: "shadow mode passes a drop", stages: out([]maps.Rule{match(maps.ActDrop)}, nil), frame: u4, mode: maps.ModeShadow}.drops(maps.StageL2, 0),
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { check(t, ifindex, c) })
	}
}

func TestClassifierMalformed(t *testing.T) {
	testLoader(t)
	ifindex := dummy(t)
	u4 := udp4(t)
	bad := func(name string, st maps.Stage, i uint32, l2, l34 []maps.Rule) tcase {
		return tcase{name: name, stages: out(l2, l34), frame: u4, want: maps.VerdictError, stage: st, index: i}
	}
	unknownField := match(maps.ActDrop, maps.Cond{Field: 99, Op: maps.OpEq})
	unknownOp := match(maps.ActDrop, maps.Cond{Field: maps.FL3, Op: 9})
	unknownFlag := match(maps.ActDrop, maps.Cond{Field: maps.FL3, Op: maps.OpEq, Flags: 0x40})
	nvar := match(maps.ActDrop, eq(maps.FL3, 4))
	nvar.NVar = 1 // with a slot and instance, so that the Store accepts it
	tooMany := match(maps.ActDrop)
	tooMany.NCond = maps.MaxConds + 1
	unknownKind := match(maps.ActDrop)
	unknownKind.Kind = 7
	unknownAction := match(maps.ActDrop)
	unknownAction.Action = 9
	cases := []tcase{
		bad("unknown field", maps.StageL2, 0, []maps.Rule{unknownField}, nil),
		bad("unknown field after a false condition", maps.StageL2, 0, []maps.Rule{match(maps.ActDrop, eq(maps.FL3, 6), unknownField.Cond[0])}, nil),
		bad("unknown operator", maps.StageL2, 0, []maps.Rule{unknownOp}, nil),
		bad("unknown flag", maps.StageL2, 0, []maps.Rule{unknownFlag}, nil),
		withInst(bad("nvar without variables", maps.StageL2, 0, []maps.Rule{nvar}, nil)),
		bad("too many conditions", maps.StageL2, 0, []maps.Rule{tooMany}, nil),
		bad("unknown kind", maps.StageL2, 0, []maps.Rule{unknownKind}, nil),
		bad("unknown action", maps.StageL2, 0, []maps.Rule{unknownAction}, nil),
		bad("jump backwards", maps.StageL2, 1, []maps.Rule{match(maps.ActContinue), jump(0), end(maps.ActAccept)}, nil),
		bad("jump past the stage", maps.StageL2, 0, []maps.Rule{jump(5)}, nil),
		bad("jump in a sub-chain", maps.StageL2, 1, []maps.Rule{jump(1), jump(2), end(maps.ActReturn)}, nil),
		bad("sub-chain runs off the stage", maps.StageL2, 3, []maps.Rule{jump(2), end(maps.ActAccept), match(maps.ActContinue)}, nil),
		bad("chain end drop", maps.StageL2, 0, []maps.Rule{end(maps.ActDrop)}, nil),
		bad("jump in L3/L4", maps.StageL34, 0, nil, []maps.Rule{jump(1), end(maps.ActAccept)}),
		bad("continue in L3/L4", maps.StageL34, 0, nil, []maps.Rule{match(maps.ActContinue)}),
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dropCount(t, testLoaderOnly(t), maps.DropMalformed, maps.DirOut)
			check(t, ifindex, c)
			if got := dropCount(t, testLoaderOnly(t), maps.DropMalformed, maps.DirOut); got.Packets != before.Packets+1 {
				t.Errorf("malformed drops %d, want %d", got.Packets, before.Packets+1)
			}
		})
	}
}

// withInst gives a case one variable slot with one one-value instance.
func withInst(c tcase) tcase {
	c.inst = [][][]maps.CVal{{{{A: u(4), B: all}}}}
	return c
}

func testLoaderOnly(tb testing.TB) *Loader {
	l, _ := testLoader(tb)
	return l
}

func TestClassifierVariables(t *testing.T) {
	testLoader(t)
	ifindex := dummy(t)
	u4 := udp4(t) // 10.0.0.5:1234 -> 10.0.0.1:53
	host := func(ip uint64) maps.CVal { return maps.CVal{A: u(ip), B: all} }
	ports := func(lo, hi uint64) maps.CVal { return maps.CVal{A: u(lo), B: u(hi)} }
	src := slot(match(maps.ActDrop, variable(eq(maps.FIP4Src, 0), 0)), 0)
	srcPort := slot(match(maps.ActDrop, isUDPc(), variable(eq(maps.FIP4Src, 0), 0), variable(rng(maps.FDport, 0, 0), 1)), 1)
	other := [][]maps.CVal{{host(1)}}
	cases := []tcase{
		tcase{name: "one of three instances", stages: out([]maps.Rule{src}, nil), frame: u4,
			inst: [][][]maps.CVal{{{host(0x0a000001)}, {host(ipVMv)}, {host(0x0a000009)}}}}.drops(maps.StageL2, 0),
		tcase{name: "no instance matches", stages: out([]maps.Rule{src}, nil), frame: u4,
			inst: [][][]maps.CVal{{{host(0x0a000001)}, {host(0x0a000009)}}}}.passes(),
		tcase{name: "no instances never matches", stages: out([]maps.Rule{src}, nil), frame: u4,
			inst: [][][]maps.CVal{{}}}.passes(),
		tcase{name: "NEG with instances", stages: out([]maps.Rule{slot(match(maps.ActDrop, neg(variable(eq(maps.FIP4Src, 0), 0))), 0)}, nil), frame: u4,
			inst: [][][]maps.CVal{{{host(ipVMv)}, {host(0x0a000009)}}}}.drops(maps.StageL2, 0),
		tcase{name: "two values from one instance", stages: out([]maps.Rule{srcPort}, nil), frame: u4,
			inst: [][][]maps.CVal{other, {{host(ipGWv), ports(50, 60)}, {host(ipVMv), ports(50, 60)}}}}.drops(maps.StageL2, 0),
		tcase{name: "values never mix instances", stages: out([]maps.Rule{srcPort}, nil), frame: u4,
			inst: [][][]maps.CVal{other, {{host(ipVMv), ports(100, 200)}, {host(ipGWv), ports(50, 60)}}}}.passes(),
		tcase{name: "variables in L3/L4", stages: out(nil, []maps.Rule{match(maps.ActAccept, isUDPc()), src}), frame: u4,
			inst: [][][]maps.CVal{{{host(ipVMv)}}}}.passes(),
	}
	cases[len(cases)-1].index = 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { check(t, ifindex, c) })
	}
	// The maximum number of instances, the match in the last one.
	t.Run("64 instances", func(t *testing.T) {
		many := make([][]maps.CVal, maps.MaxInstances)
		for i := range many {
			many[i] = []maps.CVal{host(0x0b000000 + uint64(i))}
		}
		many[len(many)-1] = []maps.CVal{host(ipVMv)}
		check(t, ifindex, tcase{stages: out([]maps.Rule{src}, nil), frame: u4, inst: [][][]maps.CVal{many}}.drops(maps.StageL2, 0))
	})
}

func isUDPc() maps.Cond { return eq(maps.FL4Proto, 17) }

// TestClassifierCounters checks the per-rule and per-reason counters, and
// that shadow mode counts apart.
func TestClassifierCounters(t *testing.T) {
	l, store := testLoader(t)
	ifindex := dummy(t)
	u4 := udp4(t)
	stages := out([]maps.Rule{match(maps.ActContinue, isUDPc()), match(maps.ActDrop, eq(maps.FDport, 53))}, nil)
	for _, mode := range []maps.Mode{maps.ModeEnforce, maps.ModeShadow} {
		if err := store.Bind(uint32(ifindex), maps.BindRequest{Mode: mode, Stages: stages}); err != nil {
			t.Fatal(err)
		}
		b, _ := store.Binding(uint32(ifindex))
		rs, _ := store.Ruleset(b.Ruleset)
		first := rs.Start[maps.DirOut][maps.StageL2]
		c0, c1 := ruleCount(t, l, first), ruleCount(t, l, first+1)
		d0 := dropCount(t, l, maps.DropL2, maps.DirOut)
		for range 3 {
			run(t, l, maps.HookIngress, ifindex, u4)
		}
		if got := ruleCount(t, l, first); got.Packets != c0.Packets+3 || got.Bytes != c0.Bytes+3*uint64(len(u4)) {
			t.Errorf("mode %d: continue entry counts %+v, was %+v", mode, got, c0)
		}
		if got := ruleCount(t, l, first+1); got.Packets != c1.Packets+3 {
			t.Errorf("mode %d: drop entry counts %+v, was %+v", mode, got, c1)
		}
		d := dropCount(t, l, maps.DropL2, maps.DirOut)
		want := d0
		if mode == maps.ModeShadow {
			want.ShadowPackets += 3
			want.ShadowBytes += 3 * uint64(len(u4))
		} else {
			want.Packets += 3
			want.Bytes += 3 * uint64(len(u4))
		}
		if d != want {
			t.Errorf("mode %d: drops %+v, want %+v", mode, d, want)
		}
	}
}

// TestClassifierUnbound checks that an interface without a binding passes
// unfiltered and is not traced.
func TestClassifierUnbound(t *testing.T) {
	l, _ := testLoader(t)
	ifindex := dummy(t)
	r := run(t, l, maps.HookIngress, ifindex, udp4(t))
	if r.ret != tcOK || r.cpu >= 0 {
		t.Errorf("unbound interface: verdict %d, traced %v; want pass, untraced", r.ret, r.cpu >= 0)
	}
}

// TestClassifierFragments checks that later fragments get their first
// fragment's verdict, and are dropped when it was not seen.
func TestClassifierFragments(t *testing.T) {
	l, store := testLoader(t)
	ifindex := dummy(t)
	// L3/L4: UDP to port 53 is accepted, every other IPv4/IPv6 dropped.
	stages := out(nil, []maps.Rule{
		match(maps.ActAccept, eq(maps.FDport, 53)),
		match(maps.ActDrop, eq(maps.FL3, 4)),
		match(maps.ActDrop, eq(maps.FL3, 6)),
	})
	if err := store.Bind(uint32(ifindex), maps.BindRequest{Stages: stages}); err != nil {
		t.Fatal(err)
	}
	v4 := func(id uint16, off uint16, more bool, dport uint16) []byte {
		h := ip4(layers.IPProtocolUDP)
		h.Id, h.FragOffset = id, off
		if more {
			h.Flags = layers.IPv4MoreFragments
		}
		if off != 0 {
			return frame(t, eth(layers.EthernetTypeIPv4), h, payload(24))
		}
		return frame(t, eth(layers.EthernetTypeIPv4), h, gopacket.Payload(udpHdr(9, dport)), payload(16))
	}
	v6 := func(id uint32, off uint16, more bool, dport uint16) []byte {
		if off != 0 {
			return raw6(44, frag6(17, off, more, id), make([]byte, 24))
		}
		return raw6(44, frag6(17, 0, more, id), udpHdr(9, dport), make([]byte, 16))
	}
	steps := []struct {
		name   string
		frame  []byte
		want   uint32
		reason maps.DropReason
		frag   bool
	}{
		{"v4 later fragment first", v4(0x100, 3, false, 0), tcShot, maps.DropFragment, true},
		{"v4 first fragment to 53", v4(0x101, 0, true, 53), tcOK, 0, false},
		{"v4 its later fragment", v4(0x101, 3, true, 0), tcOK, 0, true},
		{"v4 its last fragment", v4(0x101, 6, false, 0), tcOK, 0, true},
		{"v4 first fragment to 54", v4(0x102, 0, true, 54), tcShot, maps.DropL34, false},
		{"v4 its later fragment", v4(0x102, 3, false, 0), tcShot, maps.DropFragment, true},
		{"v4 other id", v4(0x103, 3, false, 0), tcShot, maps.DropFragment, true},
		{"v6 first fragment to 53", v6(0x201, 0, true, 53), tcOK, 0, false},
		{"v6 its later fragment", v6(0x201, 3, false, 0), tcOK, 0, true},
		{"v6 first fragment to 54", v6(0x202, 0, true, 54), tcShot, maps.DropL34, false},
		{"v6 its later fragment", v6(0x202, 3, false, 0), tcShot, maps.DropFragment, true},
		{"v6 unseen", v6(0x203, 3, false, 0), tcShot, maps.DropFragment, true},
	}
	for _, s := range steps {
		r := run(t, l, maps.HookIngress, ifindex, s.frame)
		if r.ret != s.want || (r.ret == tcShot && r.trace.Reason != s.reason) || (r.trace.Frag != 0) != s.frag {
			t.Errorf("%s: verdict %d reason %s frag %d, want %d reason %s frag %v",
				s.name, r.ret, r.trace.Reason, r.trace.Frag, s.want, s.reason, s.frag)
		}
	}
	// A fragment on another interface does not share the first one's verdict.
	other := dummy(t)
	if err := store.Bind(uint32(other), maps.BindRequest{Stages: stages}); err != nil {
		t.Fatal(err)
	}
	if r := run(t, l, maps.HookIngress, other, v4(0x101, 3, true, 0)); r.ret != tcShot {
		t.Errorf("fragment on another interface: verdict %d, want drop", r.ret)
	}
}

// TestClassifierNoRuleset checks that a binding naming a missing ruleset
// fails closed.
func TestClassifierNoRuleset(t *testing.T) {
	l, _ := testLoader(t)
	ifindex := dummy(t)
	b := maps.Binding{Ruleset: 0xfffffff0, ID: 1}
	if err := l.Map("nwf_bindings").Put(uint32(ifindex), &b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Map("nwf_bindings").Delete(uint32(ifindex)) })
	r := run(t, l, maps.HookIngress, ifindex, udp4(t))
	if r.ret != tcShot || r.trace.Reason != maps.DropNoRuleset {
		t.Errorf("verdict %d reason %s, want drop no-ruleset", r.ret, r.trace.Reason)
	}
}

// TestClassifierAtomicSwitch rebinds an interface while frames run and
// checks every frame saw one whole program: A drops port 53 at entry 0,
// B drops it at entry 1, and nothing else may happen.
func TestClassifierAtomicSwitch(t *testing.T) {
	l, store := testLoader(t)
	ifindex := dummy(t)
	u4 := udp4(t)
	progA := out([]maps.Rule{match(maps.ActDrop, eq(maps.FDport, 53))}, nil)
	progB := out([]maps.Rule{match(maps.ActContinue), match(maps.ActDrop, eq(maps.FDport, 53))}, nil)
	done := make(chan error)
	go func() {
		for i := range 200 {
			p := progA
			if i%2 == 1 {
				p = progB
			}
			if err := store.Bind(uint32(ifindex), maps.BindRequest{Stages: p}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		default:
		}
		r := run(t, l, maps.HookIngress, ifindex, u4)
		if r.cpu < 0 {
			continue // not bound yet
		}
		if r.ret != tcShot || r.trace.Verdict != maps.VerdictDrop || r.trace.Index > 1 {
			t.Fatalf("frame saw a broken program: %d, %+v", r.ret, r.trace)
		}
	}
}

func ExampleMethod_String() {
	fmt.Println(MethodTCX, MethodClsact)
	// Output: tcx clsact
}
