// SPDX-License-Identifier: Apache-2.0

package eval

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/maps"
)

func tcpPacket(tb testing.TB) *Packet {
	tb.Helper()
	ip := ip4(layers.IPProtocolTCP)
	ip.TOS = 0xb8
	return Parse(frame(tb, eth(layers.EthernetTypeIPv4), ip, &layers.TCP{SrcPort: 40000, DstPort: 22, SYN: true,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}), Meta{})
}

// l34 puts rules in the L3/L4 stage of direction out.
func l34(rules ...maps.Rule) [2][2][]maps.Rule {
	var s [2][2][]maps.Rule
	s[maps.DirOut][maps.StageL34] = rules
	return s
}

// l2 puts L2 and L3/L4 rules in direction out.
func l2(l2 []maps.Rule, l34 ...maps.Rule) [2][2][]maps.Rule {
	var s [2][2][]maps.Rule
	s[maps.DirOut][maps.StageL2] = l2
	s[maps.DirOut][maps.StageL34] = l34
	return s
}

func TestEvalConditions(t *testing.T) {
	tcp := tcpPacket(t)
	v6 := Parse(frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2}), Meta{})
	arp := Parse(frame(t, eth(layers.EthernetTypeARP), arpLayer(1, ipVM, ipGW)), Meta{})
	full := stpFrame(t, stpConfig())
	config := Parse(full, Meta{})
	truncated := Parse(full[:ethHdrLen+stpConfigEnd-1], Meta{})
	tcnLayer := stpConfig()
	tcnLayer.Type = 0x80
	tcn := Parse(stpFrame(t, tcnLayer), Meta{})
	est := CT{Present: true, State: maps.CTEstablished, Dir: maps.CTDirReply}
	fd00 := uint64(0xfd00000000000000)

	tests := []struct {
		name string
		pkt  *Packet
		ct   CT
		cond maps.Cond
		want bool
	}{
		{"eq", tcp, CT{}, eq(maps.FDport, 22), true},
		{"eq other", tcp, CT{}, eq(maps.FDport, 23), false},
		{"neg eq other", tcp, CT{}, neg(eq(maps.FDport, 23)), true},
		{"neg eq", tcp, CT{}, neg(eq(maps.FDport, 22)), false},
		{"eq absent", tcp, CT{}, eq(maps.FICMPType, 0), false},
		{"neg eq absent", tcp, CT{}, neg(eq(maps.FICMPType, 0)), false},
		{"eq mask /8", tcp, CT{}, cond(maps.FIP4Src, maps.OpEq, u(0x0a000000), u(0xff000000)), true},
		{"eq mask /8 other", tcp, CT{}, cond(maps.FIP4Src, maps.OpEq, u(0x0b000000), u(0xff000000)), false},
		{"eq value beyond mask", tcp, CT{}, cond(maps.FIP4Src, maps.OpEq, u(0x0a000005), u(0xff000000)), false},
		{"eq mac", tcp, CT{}, eq(maps.FSrcMAC, 0x525400564432), true},
		{"eq 128 /64", v6, CT{}, cond(maps.FIP6Src, maps.OpEq, maps.U128{fd00, 0}, maps.U128{^uint64(0), 0}), true},
		{"eq 128 /64 other", v6, CT{}, cond(maps.FIP6Src, maps.OpEq, maps.U128{fd00 + 1, 0}, maps.U128{^uint64(0), 0}), false},
		{"eq 128 full", v6, CT{}, cond(maps.FIP6Dst, maps.OpEq, maps.U128{fd00, 1}, all), true},
		{"range", tcp, CT{}, cond(maps.FDport, maps.OpRange, u(1), u(1024)), true},
		{"range low edge", tcp, CT{}, cond(maps.FDport, maps.OpRange, u(22), u(22)), true},
		{"range above", tcp, CT{}, cond(maps.FDport, maps.OpRange, u(23), u(100)), false},
		{"range below", tcp, CT{}, cond(maps.FDport, maps.OpRange, u(1), u(21)), false},
		{"neg range", tcp, CT{}, neg(cond(maps.FDport, maps.OpRange, u(23), u(100))), true},
		{"range 128", v6, CT{}, cond(maps.FIP6Src, maps.OpRange, maps.U128{fd00, 1}, maps.U128{fd00, 0xffff}), true},
		{"range 128 high word", v6, CT{}, cond(maps.FIP6Src, maps.OpRange, maps.U128{fd00 - 1, 9}, maps.U128{fd00, 4}), false},
		{"range 128 across words", v6, CT{}, cond(maps.FIP6Src, maps.OpRange, maps.U128{fd00 - 1, 9}, maps.U128{fd00, 5}), true},
		{"anybit", tcp, CT{}, cond(maps.FTCPFlags, maps.OpAnyBit, u(0x02), maps.U128{}), true},
		{"anybit none", tcp, CT{}, cond(maps.FTCPFlags, maps.OpAnyBit, u(0x14), maps.U128{}), false},
		{"neg anybit none", tcp, CT{}, neg(cond(maps.FTCPFlags, maps.OpAnyBit, u(0x14), maps.U128{})), true},
		{"anybit absent", v6, CT{}, neg(cond(maps.FTCPFlags, maps.OpAnyBit, u(0x14), maps.U128{})), false},
		{"tcpopt", tcp, CT{}, cond(maps.FNone, maps.OpTCPOpt, u(2), maps.U128{}), true},
		{"tcpopt missing kind", tcp, CT{}, cond(maps.FNone, maps.OpTCPOpt, u(8), maps.U128{}), false},
		{"neg tcpopt missing kind", tcp, CT{}, neg(cond(maps.FNone, maps.OpTCPOpt, u(8), maps.U128{})), true},
		{"tcpopt kind above 255", tcp, CT{}, cond(maps.FNone, maps.OpTCPOpt, u(0x102), maps.U128{}), false},
		{"tcpopt no tcp", v6, CT{}, cond(maps.FNone, maps.OpTCPOpt, u(2), maps.U128{}), false},
		{"neg tcpopt no tcp", v6, CT{}, neg(cond(maps.FNone, maps.OpTCPOpt, u(2), maps.U128{})), false},
		{"ct state", tcp, est, cond(maps.FCTState, maps.OpAnyBit, u(maps.CTNew|maps.CTEstablished), maps.U128{}), true},
		{"ct state other", tcp, est, cond(maps.FCTState, maps.OpAnyBit, u(maps.CTNew), maps.U128{}), false},
		{"neg ct state other", tcp, est, neg(cond(maps.FCTState, maps.OpAnyBit, u(maps.CTNew), maps.U128{})), true},
		{"ct dir", tcp, est, eq(maps.FCTDir, maps.CTDirReply), true},
		{"ct dir other", v6, est, eq(maps.FCTDir, maps.CTDirOriginal), false},
		{"ct absent", tcp, CT{}, neg(cond(maps.FCTState, maps.OpAnyBit, u(maps.CTNew), maps.U128{})), false},
		{"ct without l3", arp, est, neg(eq(maps.FCTDir, maps.CTDirOriginal)), false},
		{"arp spa", arp, CT{}, eq(maps.FArpSPA, 0x0a000005), true},
		// ebt_stp's layout: its FLAGS is the real BPDU type byte.
		{"stp config", config, CT{}, eq(maps.FStpFlags, 0x00), true},
		{"stp config other", config, CT{}, eq(maps.FStpFlags, 0x02), false},
		{"stp config neg", config, CT{}, neg(eq(maps.FStpFlags, 0x02)), true},
		{"stp config fields present on tcn (ebt_stp layout)", tcn, CT{}, eq(maps.FStpFlags, 0x80), true},
		{"stp config neg on tcn", tcn, CT{}, neg(eq(maps.FStpFlags, 0x01)), true},
		{"stp config truncated", truncated, CT{}, neg(eq(maps.FStpFlags, 0x02)), false},
		{"stp config no bpdu", tcp, CT{}, neg(eq(maps.FStpFlags, 0x02)), false},
		{"stp field unflagged truncated", truncated, CT{}, neg(eq(maps.FStpFlags, 0x02)), false},
		{"stp type is ebt_stp's (the version byte)", tcn, CT{}, eq(maps.FStpType, 0x00), true},
		{"stp type never the real type", tcn, CT{}, eq(maps.FStpType, 0x80), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Eval(l34(match(7, maps.ActDrop, tt.cond)), nil, tt.pkt, maps.DirOut, tt.ct)
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if got := r.Verdict == VerdictDrop; got != tt.want {
				t.Errorf("condition %v, want %v (result %+v)", got, tt.want, r)
			}
		})
	}
}

func TestEvalVar(t *testing.T) {
	pkt := tcpPacket(t)
	vsrc := maps.Cond{Field: maps.FIP4Src, Op: maps.OpEq, Flags: maps.CFVar, Var: 0}
	vport := maps.Cond{Field: maps.FDport, Op: maps.OpRange, Flags: maps.CFVar | maps.CFNeg, Var: 1}
	rule := match(3, maps.ActDrop, eq(maps.FL3, 4), vport, vsrc)
	rule.VSlot = 1
	host := func(ip uint64) maps.CVal { return maps.CVal{A: u(ip), B: u(0xffffffff)} }
	ports := func(lo, hi uint64) maps.CVal { return maps.CVal{A: u(lo), B: u(hi)} }
	other := [][]maps.CVal{{host(0x0a000009), ports(1, 2)}}
	tests := []struct {
		name string
		inst compiler.Instances
		want Verdict
	}{
		{"first instance", compiler.Instances{other, {{host(0x0a000005), ports(100, 200)}, {host(0x0a000009), ports(1, 2)}}}, VerdictDrop},
		{"second instance", compiler.Instances{nil, {{host(0x0a000009), ports(100, 200)}, {host(0x0a000005), ports(80, 90)}}}, VerdictDrop},
		{"all values from one instance", compiler.Instances{nil, {{host(0x0a000009), ports(100, 200)}, {host(0x0a000005), ports(20, 30)}}}, VerdictAccept},
		{"no instance matches", compiler.Instances{nil, {{host(0x0a000009), ports(100, 200)}, {host(0x0a000005), ports(22, 22)}}}, VerdictAccept},
		{"no instances", compiler.Instances{other, {}}, VerdictAccept},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Eval(l34(rule), tt.inst, pkt, maps.DirOut, CT{})
			if r.Err != nil || r.Verdict != tt.want {
				t.Errorf("got %v (%v), want %v", r.Verdict, r.Err, tt.want)
			}
		})
	}
}

func TestEvalFlow(t *testing.T) {
	pkt := tcpPacket(t)
	yes, no := eq(maps.FL3, 4), eq(maps.FL3, 6)
	sub := func(root2 maps.Rule, subRules ...maps.Rule) []maps.Rule {
		return append([]maps.Rule{jump(1, 3, yes), root2, end(3, maps.ActAccept)}, subRules...)
	}
	var inOnly [2][2][]maps.Rule
	inOnly[maps.DirIn][maps.StageL2] = []maps.Rule{match(1, maps.ActDrop, yes)}
	tests := []struct {
		name   string
		stages [2][2][]maps.Rule
		dir    maps.Dir
		want   Result
	}{
		{"empty stages pass", l2(nil), maps.DirOut,
			Result{Verdict: VerdictAccept, Stage: maps.StageL34, Index: -1, Default: true}},
		{"l2 accept does not skip l3/l4", l2([]maps.Rule{match(1, maps.ActAccept, yes), match(2, maps.ActDrop, yes)}, match(3, maps.ActDrop, yes)), maps.DirOut,
			Result{Verdict: VerdictDrop, Stage: maps.StageL34, Index: 0, RuleID: 3, Action: maps.ActDrop, Steps: 2}},
		{"l2 drop", l2([]maps.Rule{match(1, maps.ActDrop, no), match(2, maps.ActDrop, yes)}, match(3, maps.ActAccept, yes)), maps.DirOut,
			Result{Verdict: VerdictDrop, Stage: maps.StageL2, Index: 1, RuleID: 2, Action: maps.ActDrop, Steps: 2}},
		{"l2 reject drops", l2([]maps.Rule{match(1, maps.ActReject, yes)}), maps.DirOut,
			Result{Verdict: VerdictDrop, Stage: maps.StageL2, Index: 0, RuleID: 1, Action: maps.ActReject, Steps: 1}},
		{"l2 return in root passes", l2([]maps.Rule{match(1, maps.ActReturn, yes), match(2, maps.ActDrop, yes)}, match(3, maps.ActDrop, no), match(4, maps.ActAccept, yes)), maps.DirOut,
			Result{Verdict: VerdictAccept, Stage: maps.StageL34, Index: 1, RuleID: 4, Action: maps.ActAccept, Steps: 3}},
		{"l2 continue", l2([]maps.Rule{match(1, maps.ActContinue, yes), match(2, maps.ActDrop, yes)}), maps.DirOut,
			Result{Verdict: VerdictDrop, Stage: maps.StageL2, Index: 1, RuleID: 2, Action: maps.ActDrop, Steps: 2}},
		{"sub-chain return rule resumes root", l2(sub(match(2, maps.ActDrop, yes), match(4, maps.ActReturn, yes), end(5, maps.ActAccept))), maps.DirOut,
			Result{Verdict: VerdictDrop, Stage: maps.StageL2, Index: 1, RuleID: 2, Action: maps.ActDrop, Steps: 3}},
		{"sub-chain end accept passes l2", l2(sub(match(2, maps.ActDrop, yes), match(4, maps.ActDrop, no), end(5, maps.ActAccept)), match(6, maps.ActReject, yes)), maps.DirOut,
			Result{Verdict: VerdictReject, Stage: maps.StageL34, Index: 0, RuleID: 6, Action: maps.ActReject, Steps: 4}},
		{"sub-chain end return resumes root", l2(sub(match(2, maps.ActDrop, yes), match(4, maps.ActDrop, no), end(5, maps.ActReturn))), maps.DirOut,
			Result{Verdict: VerdictDrop, Stage: maps.StageL2, Index: 1, RuleID: 2, Action: maps.ActDrop, Steps: 4}},
		{"sub-chain accept passes l2", l2(sub(match(2, maps.ActDrop, yes), match(4, maps.ActAccept, yes), end(5, maps.ActReturn)), match(6, maps.ActReject, yes)), maps.DirOut,
			Result{Verdict: VerdictReject, Stage: maps.StageL34, Index: 0, RuleID: 6, Action: maps.ActReject, Steps: 3}},
		{"sub-chain drop", l2(sub(match(2, maps.ActAccept, yes), match(4, maps.ActDrop, yes), end(5, maps.ActReturn))), maps.DirOut,
			Result{Verdict: VerdictDrop, Stage: maps.StageL2, Index: 3, RuleID: 4, Action: maps.ActDrop, Steps: 2}},
		{"jump guard false", l2([]maps.Rule{jump(1, 3, no), match(2, maps.ActDrop, yes), end(3, maps.ActAccept), match(4, maps.ActAccept, yes), end(5, maps.ActReturn)}), maps.DirOut,
			Result{Verdict: VerdictDrop, Stage: maps.StageL2, Index: 1, RuleID: 2, Action: maps.ActDrop, Steps: 2}},
		{"root end", l2([]maps.Rule{match(1, maps.ActDrop, no), end(2, maps.ActAccept)}, match(3, maps.ActReject, yes)), maps.DirOut,
			Result{Verdict: VerdictReject, Stage: maps.StageL34, Index: 0, RuleID: 3, Action: maps.ActReject, Steps: 3}},
		{"root end return passes", l2([]maps.Rule{end(2, maps.ActReturn)}, match(3, maps.ActDrop, yes)), maps.DirOut,
			Result{Verdict: VerdictDrop, Stage: maps.StageL34, Index: 0, RuleID: 3, Action: maps.ActDrop, Steps: 2}},
		{"two jumps to one sub-chain", l2([]maps.Rule{jump(1, 3, yes), jump(2, 3, yes), end(3, maps.ActAccept), match(4, maps.ActContinue, yes), end(5, maps.ActReturn)}), maps.DirOut,
			Result{Verdict: VerdictAccept, Stage: maps.StageL34, Index: -1, Default: true, Steps: 7}},
		{"l3/l4 accept", l34(match(1, maps.ActDrop, no), match(2, maps.ActAccept, yes), match(3, maps.ActDrop, yes)), maps.DirOut,
			Result{Verdict: VerdictAccept, Stage: maps.StageL34, Index: 1, RuleID: 2, Action: maps.ActAccept, Steps: 2}},
		{"l3/l4 return", l34(match(2, maps.ActReturn, yes), match(3, maps.ActDrop, yes)), maps.DirOut,
			Result{Verdict: VerdictAccept, Stage: maps.StageL34, Index: 0, RuleID: 2, Action: maps.ActReturn, Steps: 1}},
		{"l3/l4 drop", l34(match(2, maps.ActDrop, yes)), maps.DirOut,
			Result{Verdict: VerdictDrop, Stage: maps.StageL34, Index: 0, RuleID: 2, Action: maps.ActDrop, Steps: 1}},
		{"l3/l4 reject", l34(match(2, maps.ActReject, yes)), maps.DirOut,
			Result{Verdict: VerdictReject, Stage: maps.StageL34, Index: 0, RuleID: 2, Action: maps.ActReject, Steps: 1}},
		{"l3/l4 end", l34(match(2, maps.ActReject, no), end(9, maps.ActAccept), match(3, maps.ActDrop, yes)), maps.DirOut,
			Result{Verdict: VerdictAccept, Stage: maps.StageL34, Index: 1, RuleID: 9, Action: maps.ActAccept, Default: true, Steps: 2}},
		{"l3/l4 runs off", l34(match(2, maps.ActReject, no)), maps.DirOut,
			Result{Verdict: VerdictAccept, Stage: maps.StageL34, Index: -1, Default: true, Steps: 1}},
		{"other direction", inOnly, maps.DirOut,
			Result{Verdict: VerdictAccept, Stage: maps.StageL34, Index: -1, Default: true}},
		{"direction in", inOnly, maps.DirIn,
			Result{Verdict: VerdictDrop, Stage: maps.StageL2, Index: 0, RuleID: 1, Action: maps.ActDrop, Steps: 1}},
		{"malformed entry not reached", l2([]maps.Rule{match(1, maps.ActDrop, yes), {Kind: 9}}), maps.DirOut,
			Result{Verdict: VerdictDrop, Stage: maps.StageL2, Index: 0, RuleID: 1, Action: maps.ActDrop, Steps: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Eval(tt.stages, nil, pkt, tt.dir, CT{})
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEvalMalformed(t *testing.T) {
	pkt := tcpPacket(t)
	yes := eq(maps.FL3, 4)
	withVar := func(nvar uint8, slot uint32, cs ...maps.Cond) maps.Rule {
		r := match(1, maps.ActDrop, cs...)
		r.NVar, r.VSlot = nvar, slot
		return r
	}
	vc := maps.Cond{Field: maps.FIP4Src, Op: maps.OpEq, Flags: maps.CFVar}
	many := make([][]maps.CVal, maps.MaxInstances+1)
	for i := range many {
		many[i] = []maps.CVal{{}}
	}
	tooMany := match(1, maps.ActDrop, yes)
	tooMany.NCond = maps.MaxConds + 1
	tests := []struct {
		name   string
		stages [2][2][]maps.Rule
		inst   compiler.Instances
		pkt    *Packet
		dir    maps.Dir
	}{
		{"nil packet", l2(nil), nil, nil, maps.DirOut},
		{"direction 2", l2(nil), nil, pkt, 2},
		{"unknown kind l2", l2([]maps.Rule{{Kind: 3}}), nil, pkt, maps.DirOut},
		{"unknown kind l3/l4", l34(maps.Rule{Kind: 3}), nil, pkt, maps.DirOut},
		{"unknown action l2", l2([]maps.Rule{match(1, 5, yes)}), nil, pkt, maps.DirOut},
		{"continue in l3/l4", l34(match(1, maps.ActContinue, yes)), nil, pkt, maps.DirOut},
		{"jump backwards", l2([]maps.Rule{match(1, maps.ActContinue, yes), jump(2, 0, yes)}), nil, pkt, maps.DirOut},
		{"jump to itself", l2([]maps.Rule{jump(2, 0, yes)}), nil, pkt, maps.DirOut},
		{"jump past the stage", l2([]maps.Rule{jump(2, 2, yes), end(3, maps.ActAccept)}), nil, pkt, maps.DirOut},
		{"jump with false guard past the stage", l2([]maps.Rule{jump(2, 9, eq(maps.FL3, 6))}), nil, pkt, maps.DirOut},
		{"jump in sub-chain", l2([]maps.Rule{jump(1, 2, yes), end(2, maps.ActAccept), jump(3, 3, yes), end(4, maps.ActReturn)}), nil, pkt, maps.DirOut},
		{"jump in l3/l4", l34(jump(1, 1, yes), end(2, maps.ActAccept)), nil, pkt, maps.DirOut},
		{"sub-chain runs off", l2([]maps.Rule{jump(1, 1, yes), match(2, maps.ActContinue, yes)}), nil, pkt, maps.DirOut},
		{"chain end drop l2", l2([]maps.Rule{end(1, maps.ActDrop)}), nil, pkt, maps.DirOut},
		{"chain end continue l3/l4", l34(end(1, maps.ActContinue)), nil, pkt, maps.DirOut},
		{"too many conditions", l34(tooMany), nil, pkt, maps.DirOut},
		{"unknown operator", l34(match(1, maps.ActDrop, cond(maps.FL3, 4, u(4), all))), nil, pkt, maps.DirOut},
		{"unknown field", l34(match(1, maps.ActDrop, eq(maps.FieldMax, 4))), nil, pkt, maps.DirOut},
		{"unknown flag", l34(match(1, maps.ActDrop, maps.Cond{Field: maps.FL3, Flags: 0x80})), nil, pkt, maps.DirOut},
		{"missing slot", l34(withVar(1, 2, vc)), compiler.Instances{nil, nil}, pkt, maps.DirOut},
		{"nvar without var conditions", l34(withVar(1, 0, yes)), compiler.Instances{{{{}}}}, pkt, maps.DirOut},
		{"var condition with nvar 0", l34(withVar(0, 0, vc)), compiler.Instances{{{{}}}}, pkt, maps.DirOut},
		{"value index past nvar", l34(withVar(1, 0, maps.Cond{Field: maps.FL3, Flags: maps.CFVar, Var: 1})), compiler.Instances{{{{}}}}, pkt, maps.DirOut},
		{"instance with too few values", l34(withVar(2, 0, vc, vc)), compiler.Instances{{{{}}}}, pkt, maps.DirOut},
		{"too many instances", l34(withVar(1, 0, vc)), compiler.Instances{many}, pkt, maps.DirOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Eval(tt.stages, tt.inst, tt.pkt, tt.dir, CT{})
			if r.Verdict != VerdictError || r.Err == nil {
				t.Errorf("got %+v, want an error verdict", r)
			}
		})
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{VerdictAccept: "accept", VerdictDrop: "drop", VerdictReject: "reject", VerdictError: "error", 9: "verdict?"} {
		if got := v.String(); got != want {
			t.Errorf("Verdict(%d) = %q, want %q", v, got, want)
		}
	}
}
