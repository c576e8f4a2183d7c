// SPDX-License-Identifier: Apache-2.0

package compiler

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nwbpf/nwbpf/maps"
)

// Tests named TestItemNN cover item NN of NWFILTER.md §12.

const (
	out = maps.DirOut
	in  = maps.DirIn
	l2  = maps.StageL2
	l34 = maps.StageL34
)

func mustParseErr(t *testing.T, doc, want string) {
	t.Helper()
	_, err := ParseFilter([]byte(doc), "test.xml")
	if err == nil {
		t.Fatalf("parse succeeded, want error containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
	if !strings.Contains(err.Error(), "test.xml") {
		t.Fatalf("error %q does not name the file", err)
	}
}

func TestItem01FilterElement(t *testing.T) {
	f, err := ParseFilter([]byte(`<filter name='a'><rule action='drop' direction='in'/></filter>`), "x")
	if err != nil {
		t.Fatal(err)
	}
	if f.Chain != "root" || f.Priority != 0 || f.UUIDSpecified {
		t.Fatalf("chain %q prio %d uuid %v", f.Chain, f.Priority, f.UUIDSpecified)
	}
	s := NewSet()
	if err := s.Define(f); err != nil {
		t.Fatal(err)
	}
	if f.UUID == ([16]byte{}) {
		t.Fatal("no uuid generated")
	}
	mustParseErr(t, `<filter><rule action='drop' direction='in'/></filter>`, "filter has no name")
	mustParseErr(t, `<filtr name='a'/>`, "unknown root element")
	mustParseErr(t, `<filter name='a'><uuid>nope</uuid></filter>`, "malformed uuid")
	mustParseErr(t, `<filter name='a'`, "malformed XML")
}

func TestItem02Identity(t *testing.T) {
	const u1 = "<uuid>11111111-2222-3333-4444-555555555555</uuid>"
	const u2 = "<uuid>11111111-2222-3333-4444-666666666666</uuid>"
	s := setOf(t, `<filter name='a'>`+u1+`</filter>`)
	for _, c := range []struct{ doc, want string }{
		{`<filter name='b'>` + u1 + `</filter>`, "already used by filter"},
		{`<filter name='a'>` + u2 + `</filter>`, "already exists with uuid"},
		{`<filter name='a'></filter>`, "already exists with uuid"},
	} {
		f, err := ParseFilter([]byte(c.doc), "x")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Define(f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("define %s: err %v, want %q", c.doc, err, c.want)
		}
	}
	f, _ := ParseFilter([]byte(`<filter name='a'>`+u1+`<rule action='drop' direction='in'/></filter>`), "x")
	if err := s.Define(f); err != nil {
		t.Fatalf("redefine with same name and uuid: %v", err)
	}
	if g, _ := s.Lookup("a"); len(g.Entries) != 1 {
		t.Fatal("redefinition not applied")
	}
}

func TestItem03FilterRefParams(t *testing.T) {
	f, err := ParseFilter([]byte(`<filter name='a'><filterref filter='b'>
		<parameter name='P' value='1'/><parameter name='P' value='2'/>
		<parameter name='bad-name' value='1'/><parameter name='Q' value='a/b'/>
		<parameter name='R' value=''/><parameter name='S' value='x.y:z_1'/></filterref></filter>`), "x")
	if err != nil {
		t.Fatal(err)
	}
	p := f.Entries[0].Ref.Params
	if got := strings.Join(p.Names(), ","); got != "P,S" {
		t.Fatalf("params %s, want P,S (invalid ones dropped)", got)
	}
	if v, _ := p.Get("P"); strings.Join(v, ",") != "1,2" {
		t.Fatalf("P = %v", v)
	}
}

func TestItem04UndefinedAtDefineRequiredAtCompile(t *testing.T) {
	s := setOf(t, `<filter name='a'><filterref filter='missing'/></filter>`)
	_, err := s.Compile("a", Options{})
	if err == nil || !strings.Contains(err.Error(), `"missing" referenced by a`) {
		t.Fatalf("err %v", err)
	}
	if _, err := s.Compile("nope", Options{}); err == nil {
		t.Fatal("compiled an undefined root")
	}
}

func TestItem05Cycles(t *testing.T) {
	s := setOf(t, `<filter name='a'><filterref filter='b'/></filter>`, `<filter name='b'><filterref filter='c'/></filter>`)
	f, _ := ParseFilter([]byte(`<filter name='c'><filterref filter='a'/></filter>`), "x")
	if err := s.Define(f); err == nil || !strings.Contains(err.Error(), "would introduce a loop: c -> a -> b -> c") {
		t.Fatalf("3-cycle: %v", err)
	}
	f, _ = ParseFilter([]byte(`<filter name='d'><filterref filter='d'/></filter>`), "x")
	if err := s.Define(f); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Fatalf("self reference: %v", err)
	}
	if _, ok := s.Lookup("c"); ok {
		t.Fatal("a rejected filter was defined")
	}
}

func TestItem06DAGInstantiatedPerReference(t *testing.T) {
	s := setOf(t,
		`<filter name='top'><filterref filter='leaf'/><rule action='accept' direction='out' priority='500'><mac protocolid='arp'/></rule><filterref filter='leaf'/></filter>`,
		`<filter name='leaf'><rule action='drop' direction='out' priority='500'><mac protocolid='ipv4'/></rule></filter>`)
	p, inst := compileBind(t, s, "top")
	wantLines(t, stage(p, inst, out, l2), []string{
		"root 500 drop leaf#0: ethproto == ipv4",
		"root 500 accept top#0: ethproto == arp",
		"root 500 drop leaf#0: ethproto == ipv4",
		"root 0 end:accept: ",
	})
}

func TestItem07ChainNames(t *testing.T) {
	for _, ok := range []string{"root", "mac", "arp-xyz", "ipv4-ip", "stp", "vlan1", "ipv6.a:b_c-d"} {
		if _, err := ParseFilter([]byte(`<filter name='a' chain='`+ok+`'/>`), "x"); err != nil {
			t.Errorf("chain %q: %v", ok, err)
		}
	}
	for c, want := range map[string]string{
		"root-x": "invalid chain name", "foo": "invalid chain name", "mac-1234567890": "longer than 12",
		"mac/x": "invalid characters", "": "invalid chain name",
	} {
		mustParseErr(t, `<filter name='a' chain='`+c+`'/>`, want)
	}
}

func TestItem08DefaultChainPriorities(t *testing.T) {
	for chain, want := range map[string]int{"mac": -800, "vlan": -750, "ipv4": -700, "ipv6": -600, "arp": -500, "rarp": -400, "root": 0, "stp": 0, "arp-ip": -500} {
		f, err := ParseFilter([]byte(`<filter name='a' chain='`+chain+`'/>`), "x")
		if err != nil {
			t.Fatal(err)
		}
		if f.Priority != want {
			t.Errorf("chain %s priority %d, want %d", chain, f.Priority, want)
		}
	}
}

func TestItem09FilterPriorityRange(t *testing.T) {
	mustParseErr(t, `<filter name='a' chain='mac' priority='1001'/>`, "outside valid range")
	mustParseErr(t, `<filter name='a' chain='mac' priority='-1001'/>`, "outside valid range")
	mustParseErr(t, `<filter name='a' chain='mac' priority='x'/>`, "could not parse chain priority")
	f, _ := ParseFilter([]byte(`<filter name='a' chain='mac' priority='-1000'/>`), "x")
	if f.Priority != -1000 {
		t.Fatal(f.Priority)
	}
}

func TestItem10RulePriorityDefault(t *testing.T) {
	f, err := ParseFilter([]byte(`<filter name='a'>
		<rule action='drop' direction='in'/>
		<rule action='drop' direction='in' priority='1001'/>
		<rule action='drop' direction='in' priority='abc'/>
		<rule action='drop' direction='in' priority='-1000'/></filter>`), "x")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, e := range f.Entries {
		got = append(got, e.Rule.Priority)
	}
	if fmt.Sprint(got) != "[500 500 500 -1000]" {
		t.Fatalf("priorities %v, want [500 500 500 -1000]", got)
	}
}

// Items 11, 12, 14: sub-chain rules keep their raw priority order, jumps
// sit before root rules of equal or higher priority, a sub-chain exists per
// direction only when it has rules, and filters sharing a chain name share
// the sub-chain (priority of the last one processed).
func TestItem11To14Ordering(t *testing.T) {
	s := setOf(t,
		`<filter name='top'>
			<rule action='accept' direction='out' priority='-700'><mac protocolid='0x1234'/></rule>
			<rule action='accept' direction='out' priority='-650'><mac protocolid='0x1235'/></rule>
			<filterref filter='v4a'/><filterref filter='v4b'/><filterref filter='arp'/>
		</filter>`,
		`<filter name='v4a' chain='ipv4' priority='-700'><rule action='drop' direction='out' priority='300'><ip protocol='udp'/></rule></filter>`,
		`<filter name='v4b' chain='ipv4' priority='-650'><rule action='drop' direction='out' priority='100'><ip protocol='tcp'/></rule></filter>`,
		`<filter name='arp' chain='arp'><rule action='drop' direction='in'/></filter>`)
	p, inst := compileBind(t, s, "top")
	wantLines(t, stage(p, inst, out, l2), []string{
		// The jump takes the chain priority of the last ipv4 rule in
		// sorted order (v4a, -700) and goes before root rules >= -700.
		"root -700 jump ipv4: ethproto == 0x800 @4",
		"root -700 accept top#0: ethproto == 0x1234",
		"root -650 accept top#1: ethproto == 0x1235",
		"root 0 end:accept: ",
		"ipv4 100 drop v4b#0: ethproto == 0x800 && l4proto == tcp",
		"ipv4 300 drop v4a#0: ethproto == 0x800 && l4proto == udp",
		"ipv4 0 end:accept: ",
	})
	wantLines(t, stage(p, inst, in, l2), []string{
		"root -500 jump arp: ethproto == 0x806 @2",
		"root 0 end:accept: ",
		"arp 500 drop arp#0: ",
		"arp 0 end:accept: ",
	})
}

func TestItem13JumpGuards(t *testing.T) {
	var docs []string
	ref := `<filter name='top'>`
	for _, c := range []string{"mac", "stp", "vlan", "ipv4", "ipv6", "arp", "rarp"} {
		docs = append(docs, `<filter name='f`+c+`' chain='`+c+`' priority='-900'><rule action='drop' direction='in'/></filter>`)
		ref += `<filterref filter='f` + c + `'/>`
	}
	docs = append(docs, ref+`</filter>`)
	p, inst := compileBind(t, setOf(t, docs...), "top")
	got := stage(p, inst, in, l2)[:7]
	wantLines(t, got, []string{
		"root -900 jump arp: ethproto == 0x806 @8",
		"root -900 jump ipv4: ethproto == 0x800 @10",
		"root -900 jump ipv6: ethproto == 0x86dd @12",
		"root -900 jump mac:  @14",
		"root -900 jump rarp: ethproto == 0x8035 @16",
		"root -900 jump stp: dstmac == 01:80:c2:00:00:00 @18",
		"root -900 jump vlan: ethproto == 0x8100 @20",
	})
}

func TestItem15SubchainEnd(t *testing.T) {
	s := setOf(t, `<filter name='top'><filterref filter='m'/><rule action='drop' direction='out' priority='1000'/></filter>`,
		`<filter name='m' chain='mac'><rule action='continue' direction='out'/></filter>`)
	p, inst := compileBind(t, s, "top")
	lines := stage(p, inst, out, l2)
	if lines[len(lines)-1] != "mac 0 end:accept: " {
		t.Fatalf("default sub-chain end: %v", lines)
	}
	ps, err := s.Compile("top", Options{StrictSubchainEnd: true})
	if err != nil {
		t.Fatal(err)
	}
	lines = stage(ps, nil, out, l2)
	if lines[len(lines)-1] != "mac 0 end:return: " {
		t.Fatalf("strict sub-chain end: %v", lines)
	}
}

// Items 16-21: stages, direction mapping, inout reversal at L2.
func TestItem16To21StagesAndReversal(t *testing.T) {
	s := setOf(t, `<filter name='a'>
		<rule action='accept' direction='inout' priority='10'><ip srcipaddr='10.0.0.1' dstipaddr='10.0.0.2' srcmacaddr='52:54:00:00:00:aa' protocol='tcp' srcportstart='1' srcportend='2' dstportstart='3'/></rule>
		<rule action='drop' direction='in' priority='20'><tcp srcipaddr='10.1.0.0' srcipmask='16' dstportstart='22'/></rule>
	</filter>`)
	p, inst := compileBind(t, s, "a")
	wantLines(t, stage(p, inst, out, l2), []string{
		"root 10 accept a#0r: dstmac == 52:54:00:00:00:aa && ethproto == 0x800 && ip4-dst == 10.0.0.1 && ip4-src == 10.0.0.2 && l4proto == tcp && dport in 1-2 && sport in 3",
		"root 0 end:accept: ",
	})
	wantLines(t, stage(p, inst, in, l2), []string{
		"root 10 accept a#0: srcmac == 52:54:00:00:00:aa && ethproto == 0x800 && ip4-src == 10.0.0.1 && ip4-dst == 10.0.0.2 && l4proto == tcp && sport in 1-2 && dport in 3",
		"root 0 end:accept: ",
	})
	// The drop rule (direction in) is in both L3/L4 lists; the from-VM copy
	// is reversed; no state for non-accept actions.
	wantLines(t, stage(p, inst, out, l34), []string{
		"root 20 drop a#1r: l3 == 4 && l34proto == 6 && ip4-dst == 10.1.0.0/16 && sport in 22",
		"root 0 end:accept: ",
	})
	wantLines(t, stage(p, inst, in, l34), []string{
		"root 20 drop a#1: l3 == 4 && l34proto == 6 && ip4-src == 10.1.0.0/16 && dport in 22",
		"root 0 end:accept: ",
	})
}

// Items 17, 19: L3/L4 rules of every chain land in one flat list, root
// chain rules first.
func TestItem17FlatL34(t *testing.T) {
	s := setOf(t, `<filter name='a'><filterref filter='b'/><rule action='drop' direction='out' priority='900'><all/></rule></filter>`,
		`<filter name='b' chain='ipv4'><rule action='accept' direction='out' priority='100' statematch='false'><udp dstportstart='53'/></rule></filter>`)
	p, inst := compileBind(t, s, "a")
	wantLines(t, stage(p, inst, out, l34), []string{
		"root 900 drop a#0: l3 == 4",
		"ipv4 100 accept b#0: l3 == 4 && l34proto == 17 && dport in 53",
		"root 0 end:accept: ",
	})
}

// Items 22-26, 30: actions per stage.
func TestItem22To26Actions(t *testing.T) {
	s := setOf(t, `<filter name='a'>
		<rule action='reject' direction='out'><mac/></rule>
		<rule action='return' direction='out'><mac/></rule>
		<rule action='continue' direction='out'><mac/></rule>
		<rule action='reject' direction='out'><udp/></rule>
		<rule action='return' direction='out'><udp/></rule>
	</filter>`)
	p, _ := compileBind(t, s, "a")
	var acts []string
	for _, r := range p.Stages[out][l2] {
		acts = append(acts, r.Action.String())
	}
	if strings.Join(acts, ",") != "reject,return,continue,accept" {
		t.Fatalf("L2 actions %v", acts)
	}
	acts = nil
	for _, r := range p.Stages[out][l34] {
		acts = append(acts, r.Action.String())
	}
	if strings.Join(acts, ",") != "reject,return,accept" {
		t.Fatalf("L3/L4 actions %v", acts)
	}
	s = setOf(t, `<filter name='c'><rule action='continue' direction='out'><tcp/></rule></filter>`)
	if _, err := s.Compile("c", Options{}); err == nil || !strings.Contains(err.Error(), "continue is not possible") {
		t.Fatalf("continue at L3/L4: %v", err)
	}
}

// Items 27-34, 37: the reversal and state table of NWFILTER.md §7.
func TestItem27To34StateTable(t *testing.T) {
	cases := []struct {
		rule    string
		out, in []string
	}{
		{`<rule action='accept' direction='out'><tcp dstportstart='80'/></rule>`,
			[]string{"accept a#0: l3 == 4 && l34proto == 6 && dport in 80 && ct-state any-of NEW,ESTABLISHED && ct-dir == 1"},
			[]string{"accept a#0r: l3 == 4 && l34proto == 6 && sport in 80 && ct-state any-of ESTABLISHED && ct-dir == 2"}},
		{`<rule action='accept' direction='in'><tcp dstportstart='22'/></rule>`,
			[]string{"accept a#0r: l3 == 4 && l34proto == 6 && sport in 22 && ct-state any-of ESTABLISHED && ct-dir == 2"},
			[]string{"accept a#0: l3 == 4 && l34proto == 6 && dport in 22 && ct-state any-of NEW,ESTABLISHED && ct-dir == 1"}},
		{`<rule action='accept' direction='inout'><tcp dstportstart='22'/></rule>`,
			[]string{"accept a#0r: l3 == 4 && l34proto == 6 && sport in 22"},
			[]string{"accept a#0: l3 == 4 && l34proto == 6 && dport in 22"}},
		{`<rule action='drop' direction='out'><udp dstportstart='53'/></rule>`,
			[]string{"drop a#0: l3 == 4 && l34proto == 17 && dport in 53"},
			[]string{"drop a#0r: l3 == 4 && l34proto == 17 && sport in 53"}},
		{`<rule action='accept' direction='out' statematch='FALSE'><udp dstportstart='53'/></rule>`,
			[]string{"accept a#0: l3 == 4 && l34proto == 17 && dport in 53"},
			[]string{"accept a#0r: l3 == 4 && l34proto == 17 && sport in 53"}},
		{`<rule action='accept' direction='out' statematch='no'><udp dstportstart='53'/></rule>`,
			[]string{"accept a#0: l3 == 4 && l34proto == 17 && dport in 53 && ct-state any-of NEW,ESTABLISHED && ct-dir == 1"},
			[]string{"accept a#0r: l3 == 4 && l34proto == 17 && sport in 53 && ct-state any-of ESTABLISHED && ct-dir == 2"}},
		{`<rule action='accept' direction='out' statematch='0'><udp state='NEW' dstportstart='53'/></rule>`,
			[]string{"accept a#0: l3 == 4 && l34proto == 17 && dport in 53"},
			[]string{"accept a#0r: l3 == 4 && l34proto == 17 && sport in 53"}},
		{`<rule action='accept' direction='out'><udp state='new,Related' dstportstart='53'/></rule>`,
			[]string{"accept a#0: l3 == 4 && l34proto == 17 && dport in 53 && ct-state any-of NEW,RELATED"},
			nil},
		{`<rule action='accept' direction='in'><udp state='ESTABLISHED' dstportstart='53'/></rule>`,
			nil,
			[]string{"accept a#0: l3 == 4 && l34proto == 17 && dport in 53 && ct-state any-of ESTABLISHED"}},
		{`<rule action='accept' direction='inout'><udp state='INVALID' dstportstart='53'/></rule>`,
			[]string{"accept a#0r: l3 == 4 && l34proto == 17 && sport in 53 && ct-state any-of INVALID"},
			[]string{"accept a#0: l3 == 4 && l34proto == 17 && dport in 53 && ct-state any-of INVALID"}},
		{`<rule action='accept' direction='out'><udp state='NEW,NONE' dstportstart='53'/></rule>`,
			[]string{"accept a#0: l3 == 4 && l34proto == 17 && dport in 53"},
			nil},
		{`<rule action='drop' direction='out'><udp state='NEW' dstportstart='53'/></rule>`,
			[]string{"drop a#0: l3 == 4 && l34proto == 17 && dport in 53 && ct-state any-of NEW"},
			nil},
	}
	for _, c := range cases {
		s := setOf(t, `<filter name='a'>`+c.rule+`</filter>`)
		p, inst := compileBind(t, s, "a")
		for _, dd := range []struct {
			d    maps.Dir
			want []string
		}{{out, c.out}, {in, c.in}} {
			got := stage(p, inst, dd.d, l34)
			var want []string
			for _, w := range dd.want {
				want = append(want, "root 500 "+w)
			}
			if len(want) > 0 {
				want = append(want, "root 0 end:accept: ")
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s dir %s:\n got  %q\n want %q", c.rule, dd.d, got, want)
			}
		}
	}
}

func TestItem35SrcMACOnlyInPlainInstance(t *testing.T) {
	s := setOf(t, `<filter name='a'>
		<rule action='drop' direction='in'><all srcmacaddr='52:54:00:00:00:02'/></rule>
		<rule action='drop' direction='in' priority='600'><udp srcmacaddr='52:54:00:00:00:02' dstportstart='9'/></rule></filter>`)
	p, inst := compileBind(t, s, "a")
	wantLines(t, stage(p, inst, out, l34), []string{
		"root 600 drop a#1r: l3 == 4 && l34proto == 17 && sport in 9",
		"root 0 end:accept: ",
	})
	wantLines(t, stage(p, inst, in, l34), []string{
		"root 500 drop a#0: l3 == 4 && srcmac == 52:54:00:00:00:02",
		"root 600 drop a#1: l3 == 4 && l34proto == 17 && srcmac == 52:54:00:00:00:02 && dport in 9",
		"root 0 end:accept: ",
	})
}

func TestItem36ICMPTypeNoReverse(t *testing.T) {
	s := setOf(t, `<filter name='a'>
		<rule action='accept' direction='out'><icmp type='8'/></rule>
		<rule action='accept' direction='inout' priority='600'><icmp type='8'/></rule>
		<rule action='drop' direction='in' priority='700'><icmp match='no' type='3' code='1'/></rule>
		<rule action='drop' direction='in' priority='800'><icmp/></rule></filter>`)
	p, inst := compileBind(t, s, "a")
	wantLines(t, stage(p, inst, out, l34), []string{
		"root 500 accept a#0: l3 == 4 && l34proto == 1 && icmp-type == 8 && ct-state any-of NEW,ESTABLISHED",
		"root 800 drop a#3r: l3 == 4 && l34proto == 1",
		"root 0 end:accept: ",
	})
	wantLines(t, stage(p, inst, in, l34), []string{
		"root 700 drop a#2: l3 == 4 && l34proto == 1 && !(icmp-type == 3)",
		"root 700 drop a#2: l3 == 4 && l34proto == 1 && !(icmp-code == 1)",
		"root 800 drop a#3: l3 == 4 && l34proto == 1",
		"root 0 end:accept: ",
	})
}

func TestItem37ConnlimitRejectedClearly(t *testing.T) {
	s := setOf(t, `<filter name='a'><rule action='drop' direction='out'><tcp connlimit-above='5'/></rule></filter>`)
	_, err := s.Compile("a", Options{})
	if err == nil || !strings.Contains(err.Error(), "connlimit-above") || !strings.Contains(err.Error(), `filter "a"`) {
		t.Fatalf("err %v", err)
	}
	mustParseErr(t, `<filter name='a'><rule action='drop' direction='out'><tcp connlimit-above='0x10'/></rule></filter>`, "connlimit-above has illegal value")
}

func TestItem38And39IPSet(t *testing.T) {
	// ipset alone: libvirt enforces it with ipsetflags=src; nwbpf cannot.
	s := setOf(t, `<filter name='a'><rule action='drop' direction='out'><tcp ipset='blocked'/></rule></filter>`)
	if _, err := s.Compile("a", Options{}); err == nil || !strings.Contains(err.Error(), `ipset "blocked"`) {
		t.Fatalf("ipset alone: %v", err)
	}
	// both on tcp: libvirt drops both silently, so does nwbpf.
	s = setOf(t, `<filter name='a'><rule action='drop' direction='out'><tcp ipset='blocked' ipsetflags='src,DST'/></rule></filter>`)
	p, inst := compileBind(t, s, "a")
	if got := stage(p, inst, out, l34)[0]; got != "root 500 drop a#0: l3 == 4 && l34proto == 6" {
		t.Fatalf("tcp with both: %s", got)
	}
	// all without flags: ignored at instantiation; with both: enforced.
	s = setOf(t, `<filter name='a'><rule action='drop' direction='out'><all ipset='blocked'/></rule></filter>`)
	compileBind(t, s, "a")
	s = setOf(t, `<filter name='a'><rule action='drop' direction='out'><all ipset='blocked' ipsetflags='src'/></rule></filter>`)
	if _, err := s.Compile("a", Options{}); err == nil {
		t.Fatal("all with ipset and flags compiled")
	}
	mustParseErr(t, `<filter name='a'><rule action='drop' direction='out'><all ipset='x' ipsetflags='src,foo'/></rule></filter>`, "malformed ipset flags")
	mustParseErr(t, `<filter name='a'><rule action='drop' direction='out'><tcp ipset='bad/name'/></rule></filter>`, "invalid characters")
}

func TestItem40And41ChildMerging(t *testing.T) {
	s := setOf(t, `<filter name='a'>
		<rule action='drop' direction='out'><mac protocolid='arp'/><ip srcipaddr='1.2.3.4'/><foo/><mac match='no' srcmacaddr='52:54:00:00:00:09' bogus='1'/></rule>
		<rule action='drop' direction='out' priority='600'/></filter>`)
	p, inst := compileBind(t, s, "a")
	wantLines(t, stage(p, inst, out, l2), []string{
		"root 500 drop a#0: !(srcmac == 52:54:00:00:00:09) && ethproto == arp",
		"root 600 drop a#1: ",
		"root 0 end:accept: ",
	})
}

func TestItem42And43Negation(t *testing.T) {
	s := setOf(t, `<filter name='a'>
		<rule action='drop' direction='out'><tcp match='no' srcipaddr='10.0.0.0' srcipmask='8' srcportstart='1' srcportend='9' dstportstart='22'/></rule>
		<rule action='drop' direction='out' priority='510'><tcp match='no' dstportstart='22'/></rule>
		<rule action='drop' direction='out' priority='520'><icmp match='no' code='3'/></rule>
		<rule action='drop' direction='out' priority='530'><mac match='no' srcmacaddr='52:54:00:00:00:00' srcmacmask='ff:ff:ff:00:00:00'/></rule>
	</filter>`)
	p, inst := compileBind(t, s, "a")
	wantLines(t, stage(p, inst, out, l34), []string{
		"root 500 drop a#0: l3 == 4 && l34proto == 6 && !(ip4-src == 10.0.0.0/8) && !(sport in 1-9) && !(dport in 22)",
		"root 510 drop a#1: l3 == 4 && l34proto == 6 && dport in 22",
		"root 520 drop a#2: l3 == 4 && l34proto == 1",
		"root 0 end:accept: ",
	})
	wantLines(t, stage(p, inst, out, l2)[:1], []string{
		"root 530 drop a#3: !(srcmac == 52:54:00:00:00:00/ff:ff:ff:00:00:00)",
	})
	c := p.Stages[out][l2][0].Cond[0]
	if c.A != (maps.U128{0, 0x525400000000}) || c.B != (maps.U128{0, 0xffffff000000}) || c.Flags&maps.CFNeg == 0 {
		t.Fatalf("mac mask cond %+v", c)
	}
}

func TestItem44To49Values(t *testing.T) {
	ok := []string{
		`<mac protocolid='0x835'/>`, `<mac protocolid='2048'/>`, `<mac protocolid='IPv4'/>`,
		`<ip protocol='ff'/>`, `<ip protocol='17'/>`, `<ip protocol='ICMP'/>`,
		`<stp root-cost='4294967295'/>`, `<tcp flags='SYN,ACK/SYN'/>`, `<tcp flags='ALL/NONE'/>`,
		`<mac srcmacaddr='2:4:6:8:a:B'/>`, `<ip srcipaddr='1.2.3.4' srcipmask='255.255.0.0'/>`,
		`<ipv6 srcipaddr='fd00::1' srcipmask='ffff:ffff::'/>`, `<arp gratuitous='maybe'/>`,
		`<tcp comment='` + strings.Repeat("x", 300) + `'/>`, `<udp state='new, established'/>`,
	}
	for _, el := range ok {
		if _, err := ParseFilter([]byte(`<filter name='a'><rule action='drop' direction='out'>`+el+`</rule></filter>`), "x"); err != nil {
			t.Errorf("%s: %v", el, err)
		}
	}
	bad := map[string]string{
		`<mac protocolid='0x5ff'/>`:               "protocolid",
		`<mac protocolid='ff'/>`:                  "protocolid",
		`<ip protocol='256'/>`:                    "protocol",
		`<mac srcmacaddr='52:54:00:00:00'/>`:      "srcmacaddr",
		`<mac srcmacmask='ff:00:ff:00:00:00'/>`:   "srcmacmask",
		`<ip srcipaddr='1.2.3.256'/>`:             "srcipaddr",
		`<ip srcipmask='255.0.255.0'/>`:           "srcipmask",
		`<ip srcipmask='33'/>`:                    "srcipmask",
		`<ipv6 srcipmask='129'/>`:                 "srcipmask",
		`<tcp srcportstart='65536'/>`:             "srcportstart",
		`<tcp flags='SYN'/>`:                      "flags",
		`<tcp state='NEW,BOGUS'/>`:                "state",
		`<tcp dscp='64'/>`:                        "dscp",
		`<vlan vlanid='4096'/>`:                   "vlanid",
		`<vlan encap-protocol='0x3b'/>`:           "encap-protocol",
		`<ip srcportstart='22'/>`:                 "port specification",
		`<ip protocol='icmp' dstportstart='22'/>`: "port specification",
		`<ipv6 srcipaddr='10.0.0.1'/>`:            "srcipaddr",
		`<tcp-ipv6 dstipto='fd00::1'/>`:           "dstipto",
		`<arp opcode='Bogus'/>`:                   "opcode",
		`<tcp srcipaddr='$bad-var'/>`:             "malformed variable",
		`<tcp srcipaddr='$IP[@1001]'/>`:           "above 1000",
		`<tcp srcipaddr='$IP[x]'/>`:               "malformed variable",
		`<rule action='drop'/>`:                   "direction",
		`<stp type='0x100'/>`:                     "type",
	}
	for el, want := range bad {
		doc := `<filter name='a'><rule action='drop' direction='out'>` + el + `</rule></filter>`
		if strings.HasPrefix(el, "<rule") {
			doc = `<filter name='a'>` + el + `</filter>`
		}
		_, err := ParseFilter([]byte(doc), "x.xml")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "x.xml") || !strings.Contains(err.Error(), `filter "a"`) {
			t.Errorf("%s: err %v, want mention of %q, file and filter", el, err, want)
		}
	}
	// Values land in conditions as expected.
	s := setOf(t, `<filter name='a'><rule action='drop' direction='out'><tcp flags='SYN,ACK/SYN' srcipaddr='10.1.2.3' srcipmask='255.255.0.0' dscp='0x2e'/></rule>
		<rule action='drop' direction='out'><arp gratuitous='yes'/></rule><rule action='drop' direction='out'><arp gratuitous='maybe'/></rule></filter>`)
	p, inst := compileBind(t, s, "a")
	wantLines(t, stage(p, inst, out, l34)[:1], []string{
		"root 500 drop a#0: l3 == 4 && l34proto == 6 && ip4-src == 10.1.2.3/255.255.0.0 && dscp == 0x2e && tcp-flags mask/set SYN,ACK/SYN",
	})
	c := p.Stages[out][l34][0].Cond
	if c[2].A[1] != 0x0a010000 || c[2].B[1] != 0xffff0000 || c[3].A[1] != 0x2e || c[4].A[1] != 0x02 || c[4].B[1] != 0x12 {
		t.Fatalf("conds %+v", c[:5])
	}
	wantLines(t, stage(p, inst, out, l2), []string{
		"root 500 drop a#1: ethproto == 0x806 && arp-gratuitous == 1",
		"root 500 drop a#2: ethproto == 0x806",
		"root 0 end:accept: ",
	})
}

func TestItem50To57L2Protocols(t *testing.T) {
	s := setOf(t, `<filter name='a'>
		<rule action='drop' direction='out'><vlan vlanid='0x10' encap-protocol='arp' dstmacaddr='ff:ff:ff:ff:ff:ff'/></rule>
		<rule action='drop' direction='out'><stp type='0x80' flags='1' root-priority='10' root-priority-hi='20' root-address='52:54:00:00:00:01' root-address-mask='ff:ff:ff:00:00:00' root-cost='5' sender-priority='1' sender-address='52:54:00:00:00:02' port='3' port-hi='4' age='1' max-age='2' hello-time='3' forward-delay='4'/></rule>
		<rule action='drop' direction='out'><rarp hwtype='1' protocoltype='0x800' opcode='reply' arpsrcipaddr='10.0.0.1' arpsrcipmask='24' arpdstipaddr='10.0.1.1' arpsrcmacaddr='52:54:00:00:00:01'/></rule>
		<rule action='drop' direction='out'><ip dscp='10'/></rule>
		<rule action='drop' direction='out'><ipv6 protocol='icmpv6' type='1' typeend='4' code='0'/></rule>
		<rule action='drop' direction='out'><ipv6 protocol='icmpv6'/><ipv6 match='no' type='128'/></rule>
	</filter>`)
	p, inst := compileBind(t, s, "a")
	wantLines(t, stage(p, inst, out, l2), []string{
		"root 500 drop a#0: dstmac == ff:ff:ff:ff:ff:ff && ethproto == 0x8100 && vlan-id == 0x10 && vlan-encap == (as ebtables reads it) arp",
		"root 500 drop a#1: dstmac == 01:80:c2:00:00:00 && stp-type == 0x80 && stp-flags == 1 && stp-root-prio in 10-20 && stp-root-cost in 5 && stp-sender-prio in 1 && stp-port in 3-4 && stp-msg-age in 1 && stp-max-age in 2 && stp-hello-time in 3 && stp-forward-delay in 4 && stp-root-addr == 52:54:00:00:00:01/ff:ff:ff:00:00:00 && stp-sender-addr == 52:54:00:00:00:02",
		"root 500 drop a#2: ethproto == 0x8035 && arp-htype == 1 && arp-opcode == reply && arp-ptype == 0x800 && arp-spa == 10.0.0.1/24 && arp-tpa == 10.0.1.1/24 && arp-sha == 52:54:00:00:00:01",
		"root 500 drop a#3: ethproto == 0x800 && ip-tos == 10",
		"root 500 drop a#4: ethproto == 0x86dd && l4proto == icmpv6 && icmp-type in 1-4 && icmp-code in 0",
		"root 500 drop a#5: ethproto == 0x86dd && l4proto == icmpv6 && !(icmp-type in 128)",
		"root 500 drop a#5: ethproto == 0x86dd && l4proto == icmpv6 && !(icmp-code in 0-255)",
		"root 0 end:accept: ",
	})
	if enc := p.Stages[out][l2][0].Cond[3]; enc.Field != maps.FVlanEncap || enc.A[1] != 0x2054 {
		t.Errorf("encap-protocol arp: %v = 0x%x, want ebtables' reading 0x2054", enc.Field, enc.A[1])
	}
	codes := p.Stages[out][l2][6].Cond[2]
	if codes.A[1] != 0 || codes.B[1] != 255 {
		t.Errorf("icmpv6 code default range %v-%v", codes.A, codes.B)
	}
}

// Matches the kernel refuses, so libvirt cannot instantiate them (seen on
// libvirt 9.0: "RULE_APPEND failed (Invalid argument)").
func TestKernelRefusedMatches(t *testing.T) {
	for rule, want := range map[string]string{
		`<ipv6 match='no' protocol='icmpv6' type='128'/>`: "ICMPv6 type/code needs protocol",
		`<ipv6 type='1'/>`: "ICMPv6 type/code needs protocol",
		`<ipv6 protocol='icmpv6' type='9' typeend='3'/>`:         "start above its end",
		`<ip match='no' protocol='tcp' srcportstart='80'/>`:      "negated protocol",
		`<ip protocol='udp' dstportstart='90' dstportend='80'/>`: "start above its end",
		`<tcp srcportstart='90' srcportend='80'/>`:               "start above its end",
	} {
		s := setOf(t, `<filter name='a'><rule action='drop' direction='out'>`+rule+`</rule></filter>`)
		if _, err := s.Compile("a", Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", rule, err, want)
		}
	}
	s := setOf(t, `<filter name='a'><rule action='drop' direction='out'><tcp dstportstart='$LO' dstportend='$HI'/></rule></filter>`)
	p, err := s.Compile("a", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Bind(vars("MAC=52:54:00:00:00:01", "LO=90", "HI=80")); err == nil || !strings.Contains(err.Error(), "start above its end") {
		t.Fatalf("bind-time range check: %v", err)
	}
}

// libvirt prints encap-protocol in decimal, ebtables reads hex; a
// variable's text goes through unchanged.
func TestVlanEncapAsEbtablesReadsIt(t *testing.T) {
	s := setOf(t, `<filter name='a'><rule action='drop' direction='out'><vlan encap-protocol='0x800'/></rule>
		<rule action='drop' direction='out'><vlan encap-protocol='$E'/></rule>
		<rule action='drop' direction='out'><vlan encap-protocol='34525'/></rule></filter>`)
	p, inst := compileBind(t, s, "a", "E=0x86dd")
	if got := p.Stages[out][l2][0].Cond[1].A[1]; got != 0x2048 {
		t.Errorf("0x800: 0x%x, want 0x2048", got)
	}
	if got := inst[p.Stages[out][l2][1].VSlot][0][0].A[1]; got != 0x86dd {
		t.Errorf("$E=0x86dd: 0x%x, want 0x86dd", got)
	}
	if got := p.Stages[out][l2][2].Cond[1].A[1]; got != 0x4525 {
		t.Errorf("34525: 0x%x, want 0x4525 (16 bits of 0x34525)", got)
	}
}

func TestItem53STPInoutSrcMAC(t *testing.T) {
	s := setOf(t, `<filter name='a'><rule action='drop' direction='inout'><stp srcmacaddr='52:54:00:00:00:01'/></rule></filter>`)
	if _, err := s.Compile("a", Options{}); err == nil || !strings.Contains(err.Error(), "STP filtering in inout direction") {
		t.Fatalf("err %v", err)
	}
}

func TestItem58To64L34Protocols(t *testing.T) {
	s := setOf(t, `<filter name='a'>
		<rule action='drop' direction='out'><tcp srcipfrom='10.0.0.1' srcipto='10.0.0.9' dstipaddr='10.1.0.0' dstipfrom='1.1.1.1' option='2'/></rule>
		<rule action='drop' direction='out'><sctp-ipv6 srcipaddr='fd00::1' dstportstart='5' dstportend='6'/></rule>
		<rule action='drop' direction='out'><tcp-ipv6 flags='SYN/SYN' srcportend='9'/></rule>
		<rule action='drop' direction='out'><esp/></rule><rule action='drop' direction='out'><ah/></rule>
		<rule action='drop' direction='out'><udplite dscp='1'/></rule><rule action='drop' direction='out'><igmp/></rule>
		<rule action='drop' direction='out'><icmpv6 type='135' code='0'/></rule><rule action='drop' direction='out'><all-ipv6/></rule>
	</filter>`)
	p, inst := compileBind(t, s, "a")
	wantLines(t, stage(p, inst, out, l34), []string{
		"root 500 drop a#0: l3 == 4 && l34proto == 6 && ip4-src in 10.0.0.1-10.0.0.9 && ip4-dst == 10.1.0.0 && tcp-option 2",
		"root 500 drop a#1: l3 == 6 && l34proto == 132 && ip6-src == fd00::1 && dport in 5-6",
		"root 500 drop a#2: l3 == 6 && l34proto == 6",
		"root 500 drop a#3: l3 == 4 && l34proto == 50",
		"root 500 drop a#4: l3 == 4 && l34proto == 51",
		"root 500 drop a#5: l3 == 4 && l34proto == 136 && dscp == 1",
		"root 500 drop a#6: l3 == 4 && l34proto == 2",
		"root 500 drop a#7: l3 == 6 && l34proto == 58 && icmp-type == 135 && icmp-code == 0",
		"root 500 drop a#8: l3 == 6",
		"root 0 end:accept: ",
	})
}

// Items 66-74: variables.
func TestItem66To72Variables(t *testing.T) {
	s := setOf(t, `<filter name='a'>
		<rule action='accept' direction='out'><udp srcipaddr='$A' srcportstart='$B'/></rule>
		<rule action='accept' direction='out' priority='510'><udp srcipaddr='$A[@1]' srcportstart='$B[@2]'/></rule>
		<rule action='accept' direction='out' priority='520'><udp srcipaddr='$A[ 1 ]' srcportstart='$B[@ 0 ]trailing'/></rule>
		<rule action='accept' direction='out' priority='530'><udp srcipaddr='$A[@1]' dstipaddr='$A[@2]'/></rule>
	</filter>`)
	p, inst := compileBind(t, s, "a", "A=10.0.0.1", "A=10.0.0.2", "A=10.0.0.3", "A=10.0.0.3", "B=80", "B=90", "B=80", "B=80")
	got := stage(p, nil, out, l34)
	_ = got
	n := func(i int) int { return len(inst[p.Stages[out][l34][i].VSlot]) }
	// Parallel iteration with dedupe: (1,80) (2,90) (3,80) (3,80) -> 3.
	if n(0) != 3 {
		t.Errorf("parallel: %d instances, want 3", n(0))
	}
	// Cartesian product of distinct A (3) and distinct B (2).
	if n(1) != 6 {
		t.Errorf("product: %d instances, want 6", n(1))
	}
	// Element access is one value; B iterates (2 distinct).
	if n(2) != 2 {
		t.Errorf("element access: %d instances, want 2", n(2))
	}
	// Same variable under two iterators: full self-product of 3 distinct.
	if n(3) != 9 {
		t.Errorf("self product: %d instances, want 9", n(3))
	}
	first := inst[p.Stages[out][l34][2].VSlot][0]
	if first[0].A[1] != 0x0a000002 {
		t.Errorf("$A[1] = %x", first[0].A[1])
	}
	// Cardinality mismatch, out-of-range element, missing variable.
	for _, c := range []struct {
		kv   []string
		want string
	}{
		{[]string{"A=10.0.0.1", "A=10.0.0.2", "B=80"}, "cardinality"},
		{[]string{"A=10.0.0.1", "B=80"}, "element 1 is not available"},
		{[]string{"B=80"}, "$A is not set"},
		{[]string{"A=10.0.0.1", "A=10.0.0.2", "B=80", "B=x"}, "srcportstart"},
	} {
		v := vars(c.kv...)
		v.Add("MAC", "52:54:00:00:00:01")
		_, err := p.Bind(v)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `filter "a"`) {
			t.Errorf("%v: err %v, want %q with filter and rule", c.kv, err, c.want)
		}
	}
}

func TestItem72And73Scoping(t *testing.T) {
	s := setOf(t, `<filter name='top'><filterref filter='mid'><parameter name='P' value='10.0.0.1'/><parameter name='Q' value='10.0.0.7'/></filterref></filter>`,
		`<filter name='mid'><filterref filter='leaf'><parameter name='P' value='10.0.0.2'/><parameter name='R' value='10.0.0.3'/></filterref></filter>`,
		`<filter name='leaf'><rule action='drop' direction='out'><ip srcipaddr='$P' dstipaddr='$R'/></rule>
			<rule action='drop' direction='out'><ip srcipaddr='$Q'/></rule><rule action='drop' direction='out'><mac srcmacaddr='$MAC'/></rule></filter>`)
	p, inst := compileBind(t, s, "top", "MAC=52:54:00:00:00:0a")
	wantLines(t, stage(p, inst, out, l2), []string{
		"root 500 drop leaf#0: ethproto == 0x800 && ip4-src == $P && ip4-dst == $R = 10.0.0.1/32,10.0.0.3/32",
		"root 500 drop leaf#1: ethproto == 0x800 && ip4-src == $Q = 10.0.0.7/32",
		"root 500 drop leaf#2: srcmac == $MAC = 52:54:00:00:00:0a/ff:ff:ff:ff:ff:ff",
		"root 0 end:accept: ",
	})
	// Binding values win over every filterref parameter.
	_, inst = compileBind(t, s, "top", "P=10.9.9.9")
	if got := inst[0][0][0].A[1]; got != 0x0a090909 {
		t.Errorf("binding P not used: %x", got)
	}
	// MAC comes from the binding's <mac> unless given as a parameter.
	b, err := ParseBinding([]byte(`<filterbinding><owner><name>g</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner><portdev name='vnet0'/><mac address='52:54:00:56:44:32'/><filterref filter='top'/></filterbinding>`), "b.xml")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Vars().Get("MAC"); strings.Join(v, "") != "52:54:00:56:44:32" {
		t.Errorf("MAC %v", v)
	}
}

func TestItem74MissingIPIsClearError(t *testing.T) {
	s := setOf(t, `<filter name='a'><rule action='drop' direction='out'><ip srcipaddr='$IP'/></rule></filter>`)
	p, err := s.Compile("a", Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Bind(vars("MAC=52:54:00:00:00:01"))
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "$IP is not set") || !strings.Contains(err.Error(), "rule 0 (priority 500)") {
		t.Fatalf("err %v", err)
	}
}

// A variable referenced only by a rule that produces no entry must still
// resolve (libvirt checks the whole tree).
func TestUnusedRuleVariableStillChecked(t *testing.T) {
	s := setOf(t, `<filter name='a'><rule action='accept' direction='inout'><icmp type='$T'/></rule></filter>`)
	p, err := s.Compile("a", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Stages[out][l34])+len(p.Stages[in][l34]) != 0 {
		t.Fatal("inout icmp with type produced entries")
	}
	if _, err := p.Bind(vars("MAC=52:54:00:00:00:01")); err == nil {
		t.Fatal("unbound $T accepted")
	}
}

func TestItem79Binding(t *testing.T) {
	b, err := ParseBinding([]byte(`<filterbinding>
		<owner><name>guest1</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
		<portdev name='vnet0'/><linkdev name='eth0'/><mac address='52:54:00:56:44:32'/>
		<filterref filter='clean-traffic'><parameter name='IP' value='10.0.0.5'/><parameter name='IP' value='10.0.0.6'/></filterref>
	</filterbinding>`), "b.xml")
	if err != nil {
		t.Fatal(err)
	}
	if b.OwnerName != "guest1" || b.PortDev != "vnet0" || b.LinkDev != "eth0" || b.Filter != "clean-traffic" {
		t.Fatalf("%+v", b)
	}
	if ip, _ := b.Params.Get("IP"); len(ip) != 2 {
		t.Fatalf("IP %v", ip)
	}
	for doc, want := range map[string]string{
		`<filterbinding><portdev name='v'/></filterbinding>`: "missing <owner>",
		`<filterbinding><owner><name>g</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner><portdev name='v/x'/><mac address='52:54:00:00:00:01'/><filterref filter='f'/></filterbinding>`: "invalid device name",
		`<filterbinding><owner><name>g</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner><portdev name='v'/><mac address='zz'/><filterref filter='f'/></filterbinding>`:                  "malformed mac",
		`<filterbinding><owner><name>g</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner><portdev name='v'/><mac address='52:54:00:00:00:01'/></filterbinding>`:                          "missing <filterref>",
		`<filter name='x'/>`: "unknown root element",
	} {
		if _, err := ParseBinding([]byte(doc), "b.xml"); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "b.xml") {
			t.Errorf("%s: err %v, want %q", doc, err, want)
		}
	}
}

// Sharing: one Program serves every binding; per-binding data is only the
// instance values.
func TestProgramIndependentOfBinding(t *testing.T) {
	s := setOf(t, `<filter name='a'><rule action='return' direction='out'><ip srcipaddr='$IP'/></rule></filter>`)
	p, err := s.Compile("a", Options{})
	if err != nil {
		t.Fatal(err)
	}
	i1, err := p.Bind(vars("MAC=52:54:00:00:00:01", "IP=10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	i2, err := p.Bind(vars("MAC=52:54:00:00:00:02", "IP=10.0.0.2", "IP=10.0.0.3"))
	if err != nil {
		t.Fatal(err)
	}
	if len(i1[0]) != 1 || len(i2[0]) != 2 || i1[0][0][0].A == i2[0][0][0].A {
		t.Fatalf("instances %v %v", i1, i2)
	}
}
