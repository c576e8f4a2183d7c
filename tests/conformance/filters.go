// SPDX-License-Identifier: Apache-2.0

package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nwbpf/nwbpf/compiler"
)

// Param is one binding variable: repeating a name builds a list, in order.
type Param struct {
	Name, Value string
}

// Filter is one filter tree of a suite, with the binding it is compared
// under.
type Filter struct {
	// Name is the tree's root filter, as libvirt knows it.
	Name string
	// Label names the tree in reports, the same on every run (custom
	// filters' Name carries a random suffix).
	Label string
	// Defs are the custom <filter> documents of the tree, defined (in
	// order) before the binding; none for a stock filter.
	Defs []string
	// Params are the binding's variables besides MAC (which both sides
	// take from the binding's MAC).
	Params []Param
	// Items lists the NWFILTER.md §12 checklist items the tree exercises.
	Items string
}

// StockDir is where Debian's libvirt-daemon-config-nwfilter installs the
// stock filters.
const StockDir = "/usr/share/libvirt/nwfilter"

// Stock returns one Filter per stock filter in dir, sorted by name, bound
// with the variables the stock filters use (IP, IPV6, DHCPSERVER,
// GATEWAY_MAC), with addresses from the corpus.
func Stock(dir string, n Net) ([]Filter, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil {
		return nil, err
	}
	var out []Filter
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		def, err := compiler.ParseFilter(data, f)
		if err != nil {
			return nil, err
		}
		server := DHCPIP.String()
		if strings.Contains(def.Name, "dhcpv6") {
			server = "fd77::2"
		}
		out = append(out, Filter{Name: def.Name, Label: def.Name, Params: []Param{
			{"IP", GuestIP.String()}, {"IPV6", GuestIPv6.String()},
			{"DHCPSERVER", server}, {"GATEWAY_MAC", n.Peer.String()},
		}, Items: "83"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// checklistTree is a checklist filter tree before naming: its documents
// name filters as "NAME-{S}", the suffix filled in by Checklist.
type checklistTree struct {
	label  string
	items  string
	params []Param
	docs   []string // root filter first
}

// Checklist returns the checklist set: filter trees that exercise every
// item of NWFILTER.md §12 that frames can observe. Every filter name gets
// suffix, so that runs sharing one libvirtd never collide. Addresses and
// ports are the corpus's edges (PortEdges, AddrEdges).
func Checklist(suffix string, n Net) []Filter {
	common := []Param{{"IP", GuestIP.String()}, {"PEERMAC", n.Peer.String()}}
	var out []Filter
	for _, tr := range checklistTrees {
		f := Filter{Label: tr.label, Items: tr.items, Params: append(append([]Param(nil), common...), tr.params...)}
		for _, d := range tr.docs {
			f.Defs = append(f.Defs, strings.ReplaceAll(d, "{S}", suffix))
		}
		f.Name = fmt.Sprintf("cf-%s-%s", tr.label, suffix)
		out = append(out, f)
	}
	return out
}

// checklistTrees: each tree's root filter is cf-<label>-{S}.
var checklistTrees = []checklistTree{
	{label: "l2mac", items: "22 23 24 25 26 41 42 45 50", docs: []string{`<filter name='cf-l2mac-{S}' chain='root'>
  <rule action='drop' direction='out' priority='100'><mac srcmacaddr='52:54:00:ee:ee:ee'/></rule>
  <rule action='return' direction='out' priority='110'><mac dstmacaddr='01:00:5e:00:00:00' dstmacmask='ff:ff:ff:80:00:00'/></rule>
  <rule action='drop' direction='inout' priority='120'><mac protocolid='0x88b5'/></rule>
  <rule action='reject' direction='out' priority='130'><mac protocolid='ipv6' dstmacaddr='33:33:00:00:00:00' dstmacmask='ff:ff:00:00:00:00'/></rule>
  <rule action='drop' direction='in' priority='140'><mac match='no' srcmacaddr='$PEERMAC'/></rule>
  <rule action='accept' direction='out' priority='150'><mac protocolid='arp'/></rule>
  <rule action='drop' direction='out' priority='160'><mac protocolid='0x0600'/></rule>
  <rule action='continue' direction='out' priority='170'><mac protocolid='ipv4'/></rule>
  <rule action='drop' direction='inout' priority='180'><mac dstmacaddr='ff:ff:ff:ff:ff:ff'/></rule>
  <rule action='accept' direction='in' priority='190'><mac protocolid='ipv4'/></rule>
  <rule action='drop' direction='out' priority='200'><mac match='no' protocolid='ipv4'/></rule>
  <rule action='drop' direction='in' priority='900'/>
</filter>`}},
	{label: "vlanstp", items: "13 14 51 52", docs: []string{`<filter name='cf-vlanstp-{S}' chain='root'>
  <rule action='drop' direction='inout' priority='-900'><mac protocolid='0x88b5'/></rule>
  <filterref filter='cf-vlan-{S}'/>
  <filterref filter='cf-stp-{S}'/>
  <rule action='drop' direction='out' priority='500'><vlan/></rule>
</filter>`, `<filter name='cf-vlan-{S}' chain='vlan'>
  <rule action='drop' direction='out'><vlan vlanid='42' encap-protocol='arp'/></rule>
  <rule action='accept' direction='out'><vlan vlanid='42'/></rule>
  <rule action='drop' direction='inout'><vlan match='no' vlanid='10'/></rule>
  <rule action='return' direction='in'><vlan srcmacaddr='$PEERMAC' vlanid='10' encap-protocol='ipv4'/></rule>
  <rule action='drop' direction='in'><vlan vlanid='10'/></rule>
</filter>`, `<filter name='cf-stp-{S}' chain='stp'>
  <rule action='drop' direction='out' priority='100'><stp srcmacaddr='52:54:00:ee:ee:ee'/></rule>
  <rule action='drop' direction='out' priority='110'><stp type='0' flags='0x80'/></rule>
  <rule action='drop' direction='out' priority='120'><stp root-priority='0x0010' root-priority-hi='0x1000'/></rule>
  <rule action='accept' direction='out' priority='130'><stp sender-address='00:00:00:00:02:80' sender-address-mask='ff:ff:ff:ff:ff:00'/></rule>
  <rule action='drop' direction='in' priority='140'><stp match='no' root-cost='0x04800000' root-cost-hi='0x04ffffff'/></rule>
  <rule action='return' direction='out' priority='150'><stp port='0x0180' port-hi='0x0200' age='0x0001' max-age='0x0014'/></rule>
  <rule action='drop' direction='out' priority='160'><stp hello-time='0x0002' forward-delay='0x0000' forward-delay-hi='0x0f00'/></rule>
  <rule action='drop' direction='out' priority='170'><stp root-address='00:02:00:00:00:00' root-address-mask='ff:ff:00:00:00:00' sender-priority='0' sender-priority-hi='0x0100'/></rule>
  <rule action='drop' direction='out' priority='180'><stp type='2'/></rule>
</filter>`}},
	{label: "arp", items: "14 15 54 55", docs: []string{`<filter name='cf-arp-{S}' chain='root'>
  <filterref filter='cf-arpa-{S}'/>
  <filterref filter='cf-arpb-{S}'/>
  <filterref filter='cf-rarp-{S}'/>
  <rule action='drop' direction='inout' priority='1000'><mac protocolid='rarp'/></rule>
  <rule action='drop' direction='inout' priority='1000'><mac protocolid='arp'/></rule>
</filter>`, `<filter name='cf-arpa-{S}' chain='arp-ca' priority='-520'>
  <rule action='return' direction='out' priority='100'><arp opcode='Request' arpsrcmacaddr='$MAC' arpsrcipaddr='$IP'/></rule>
  <rule action='drop' direction='out' priority='200'><arp gratuitous='true'/></rule>
  <rule action='drop' direction='out' priority='300'><arp arpsrcipaddr='10.77.0.16' arpsrcipmask='28'/></rule>
  <rule action='accept' direction='out' priority='400'><arp opcode='reply' arpdstmacaddr='$PEERMAC'/></rule>
  <rule action='drop' direction='out' priority='500'><arp match='no' hwtype='1'/></rule>
  <rule action='drop' direction='out' priority='600'><arp protocoltype='0x86dd'/></rule>
  <rule action='drop' direction='in' priority='100'><arp arpsrcipaddr='$IP'/></rule>
  <rule action='drop' direction='in' priority='200'><arp match='no' arpdstipaddr='$IP' opcode='Request'/></rule>
</filter>`, `<filter name='cf-arpb-{S}' chain='arp-ca' priority='-510'>
  <rule action='drop' direction='out' priority='450'><arp opcode='8'/></rule>
  <rule action='return' direction='in' priority='300'><arp opcode='Reply' arpdstipaddr='10.77.0.0' arpdstipmask='24'/></rule>
</filter>`, `<filter name='cf-rarp-{S}' chain='rarp'>
  <rule action='accept' direction='inout'><rarp opcode='Request_Reverse' arpsrcmacaddr='$MAC'/></rule>
  <rule action='drop' direction='out'><rarp opcode='4'/></rule>
  <rule action='drop' direction='in'><rarp srcmacaddr='$PEERMAC' arpdstmacaddr='52:54:00:dd:dd:dd'/></rule>
</filter>`}},
	{label: "ip", items: "13 56 57 43", docs: []string{`<filter name='cf-ip-{S}' chain='root'>
  <filterref filter='cf-ipa-{S}'/>
  <filterref filter='cf-ipb-{S}'/>
  <rule action='accept' direction='inout'><mac protocolid='ipv4'/></rule>
</filter>`, `<filter name='cf-ipa-{S}' chain='ipv4'>
  <rule action='drop' direction='out'><ip dstipaddr='10.77.0.16' dstipmask='28'/></rule>
  <rule action='drop' direction='out'><ip srcipaddr='10.77.0.96' srcipmask='255.255.255.224'/></rule>
  <rule action='return' direction='out'><ip protocol='udp' dstportstart='1024' dstportend='2048'/></rule>
  <rule action='drop' direction='out'><ip protocol='tcp' dstportstart='21' dstportend='23'/></rule>
  <rule action='drop' direction='out'><ip dscp='10'/></rule>
  <rule action='drop' direction='inout'><ip protocol='esp'/></rule>
  <rule action='drop' direction='in'><ip match='no' srcipaddr='10.77.0.0' srcipmask='25'/></rule>
  <rule action='reject' direction='in'><ip protocol='udp' srcportstart='2047' srcportend='2049'/></rule>
  <rule action='drop' direction='out'><ip protocol='icmp'/></rule>
  <rule action='drop' direction='out'><ip protocol='2'/></rule>
  <rule action='drop' direction='out'><ip protocol='sctp' dstportstart='23'/></rule>
</filter>`, `<filter name='cf-ipb-{S}' chain='ipv6'>
  <rule action='drop' direction='out'><ipv6 dstipaddr='fd77::10' dstipmask='124'/></rule>
  <rule action='drop' direction='out'><ipv6 protocol='icmpv6' type='133' typeend='136'/></rule>
  <rule action='drop' direction='out'><ipv6 protocol='icmpv6' type='1' code='3' codeend='5'/></rule>
  <rule action='return' direction='out'><ipv6 protocol='tcp' dstportstart='80' dstportend='81'/></rule>
  <rule action='drop' direction='out'><ipv6 match='no' srcipaddr='fd77::5' dstipaddr='fd77::1'/></rule>
  <rule action='drop' direction='in'><ipv6 srcipaddr='fd77::99'/></rule>
  <rule action='drop' direction='inout'><ipv6 protocol='esp'/></rule>
  <rule action='drop' direction='in'><ipv6 match='no' srcipaddr='fd77::1'/></rule>
  <rule action='drop' direction='out'><ipv6 srcipaddr='fe80::' srcipmask='10' protocol='tcp'/></rule>
</filter>`}},
	{label: "tcp", items: "20 21 24 27 28 30 31 42 43 58 64", docs: []string{`<filter name='cf-tcp-{S}' chain='root'>
  <rule action='accept' direction='in' priority='100'><tcp dstportstart='22'/></rule>
  <rule action='accept' direction='out' priority='110'><tcp dstportstart='80' dstportend='81'/></rule>
  <rule action='drop' direction='out' priority='120'><tcp flags='SYN,FIN/SYN,FIN'/></rule>
  <rule action='drop' direction='out' priority='130'><tcp flags='ALL/NONE'/></rule>
  <rule action='reject' direction='out' priority='140'><tcp flags='SYN,RST,ACK/RST'/></rule>
  <rule action='drop' direction='out' priority='150'><tcp option='8'/></rule>
  <rule action='drop' direction='out' priority='160' statematch='false'><tcp dstportstart='1024' dstportend='2048'/></rule>
  <rule action='accept' direction='out' priority='170' statematch='0'><tcp dstportstart='8080'/></rule>
  <rule action='drop' direction='in' priority='180'><tcp srcportstart='1023' srcportend='1025'/></rule>
  <rule action='drop' direction='out' priority='190'><tcp dscp='46'/></rule>
  <rule action='drop' direction='inout' priority='200'><tcp match='no' dstportstart='22'/></rule>
  <rule action='reject' direction='in' priority='210'><tcp dstportstart='23'/></rule>
  <rule action='drop' direction='out' priority='220'><tcp dstipaddr='10.77.0.16' dstipmask='28' srcipaddr='10.77.0.5' dstipfrom='10.77.0.64' dstipto='10.77.0.127'/></rule>
  <rule action='drop' direction='out' priority='230'><tcp dstipfrom='10.77.0.64' dstipto='10.77.0.127'/></rule>
  <rule action='drop' direction='out' priority='240'><tcp srcportend='80'/></rule>
  <rule action='drop' direction='inout' priority='900'><tcp/></rule>
</filter>`}},
	{label: "l4", items: "17 23 24 25 36 42 43 59 60 61 64 65", docs: []string{`<filter name='cf-l4-{S}' chain='root'>
  <rule action='drop' direction='out' priority='100'><udp dstportstart='1024' dstportend='2048'/></rule>
  <rule action='accept' direction='out' priority='110'><udp dstportstart='53'/></rule>
  <rule action='drop' direction='out' priority='120'><udp match='no' srcportstart='40000'/></rule>
  <rule action='drop' direction='inout' priority='130'><udplite/></rule>
  <rule action='reject' direction='out' priority='140'><sctp dstportstart='22' dstportend='23'/></rule>
  <rule action='accept' direction='inout' priority='150'><sctp/></rule>
  <rule action='drop' direction='out' priority='160'><esp dstipaddr='10.77.0.1'/></rule>
  <rule action='return' direction='in' priority='170'><ah/></rule>
  <rule action='drop' direction='out' priority='180'><icmp type='8' code='1'/></rule>
  <rule action='drop' direction='in' priority='190'><icmp match='no' type='0'/></rule>
  <rule action='accept' direction='out' priority='210'><icmp type='8'/></rule>
  <rule action='drop' direction='out' priority='220'><igmp/></rule>
  <rule action='drop' direction='in' priority='230'><all srcipaddr='10.77.0.16' srcipmask='28'/></rule>
  <rule action='drop' direction='out' priority='240'><all dstipfrom='10.77.0.16' dstipto='10.77.0.31'/></rule>
  <rule action='drop' direction='out' priority='250'><udp dscp='10'/></rule>
  <rule action='accept' direction='in' priority='260'><udp srcipfrom='10.77.0.60' srcipto='10.77.0.70' srcportstart='53'/></rule>
  <rule action='drop' direction='out' priority='800'><icmp match='no' code='3'/></rule>
  <rule action='drop' direction='inout' priority='900'><all/></rule>
</filter>`}},
	{label: "ipv6l4", items: "36 62 63", docs: []string{`<filter name='cf-ipv6l4-{S}' chain='root'>
  <rule action='accept' direction='out' priority='100'><tcp-ipv6 dstportstart='80'/></rule>
  <rule action='drop' direction='out' priority='110'><udp-ipv6 dstportstart='1024' dstportend='2048'/></rule>
  <rule action='accept' direction='out' priority='120'><icmpv6 type='128'/></rule>
  <rule action='drop' direction='inout' priority='130'><icmpv6 type='135'/></rule>
  <rule action='drop' direction='in' priority='140'><icmpv6 type='134'/></rule>
  <rule action='drop' direction='in' priority='150'><all-ipv6 srcipaddr='fd77::10' srcipmask='124'/></rule>
  <rule action='reject' direction='out' priority='160'><sctp-ipv6/></rule>
  <rule action='drop' direction='inout' priority='170'><esp-ipv6/></rule>
  <rule action='return' direction='out' priority='180'><ah-ipv6/></rule>
  <rule action='drop' direction='in' priority='190'><udplite-ipv6/></rule>
  <rule action='accept' direction='inout' priority='200'><udp-ipv6 dstportstart='546' dstportend='547'/></rule>
  <rule action='drop' direction='out' priority='210'><tcp-ipv6 flags='SYN/SYN' dstportstart='22'/></rule>
  <rule action='drop' direction='out' priority='220'><icmpv6 type='1' code='4'/></rule>
  <rule action='drop' direction='out' priority='230'><all-ipv6 dstipaddr='fd77::1f'/></rule>
  <rule action='drop' direction='inout' priority='900' statematch='false'><all-ipv6/></rule>
</filter>`}},
	{label: "state", items: "27 28 29 31 32 33 34", docs: []string{`<filter name='cf-state-{S}' chain='root'>
  <rule action='accept' direction='out' priority='100'><udp dstportstart='53'/></rule>
  <rule action='accept' direction='out' priority='110' statematch='no'><udp dstportstart='54'/></rule>
  <rule action='accept' direction='out' priority='120' statematch='FALSE'><udp dstportstart='52'/></rule>
  <rule action='accept' direction='in' priority='130'><tcp dstportstart='22' state='NEW'/></rule>
  <rule action='accept' direction='out' priority='140'><tcp srcportstart='22' state='ESTABLISHED'/></rule>
  <rule action='drop' direction='out' priority='150'><tcp dstportstart='23' state='NEW,ESTABLISHED'/></rule>
  <rule action='accept' direction='out' priority='160'><tcp dstportstart='8080' state='NONE,NEW'/></rule>
  <rule action='accept' direction='inout' priority='170'><icmp/></rule>
  <rule action='accept' direction='inout' priority='180'><esp state='NEW,ESTABLISHED,RELATED'/></rule>
  <rule action='drop' direction='in' priority='190'><udp state='INVALID'/></rule>
  <rule action='accept' direction='out' priority='200'><tcp dstportstart='80'/></rule>
  <rule action='accept' direction='out' priority='210'><sctp/></rule>
  <rule action='accept' direction='out' priority='220'><all-ipv6/></rule>
  <rule action='accept' direction='in' priority='230' statematch='true'><udp srcportstart='53' state='ESTABLISHED'/></rule>
  <rule action='drop' direction='inout' priority='1000'><all/></rule>
  <rule action='drop' direction='inout' priority='1000'><all-ipv6/></rule>
</filter>`}},
	{label: "vars", items: "3 66 67 68 69 70 71 72 73 78", params: []Param{
		{"PORTS", "23"}, {"PORTS", "1024"}, {"PORTS", "2049"},
		{"ADDRS", "10.77.0.1"}, {"ADDRS", "10.77.0.16"}, {"UPORTS", "53"}, {"UPORTS", "1025"},
		{"PADDR", "10.77.0.31"}, {"PADDR", "10.77.0.64"}, {"PADDR", "10.77.0.31"},
		{"PPORT", "80"}, {"PPORT", "81"}, {"PPORT", "80"},
		{"SPOOFS", "10.77.0.99"}, {"SPOOFS", "10.77.0.17"},
		{"DHCPSERVER", "10.77.0.2"},
	}, docs: []string{`<filter name='cf-vars-{S}' chain='root'>
  <rule action='drop' direction='out'><tcp dstportstart='$PORTS'/></rule>
  <rule action='drop' direction='out'><udp dstipaddr='$ADDRS[@1]' dstportstart='$UPORTS[@2]'/></rule>
  <rule action='drop' direction='out'><udp dstipaddr='$PADDR' dstportstart='$PPORT'/></rule>
  <rule action='drop' direction='in'><udp srcportstart='$UPORTS[1]'/></rule>
  <rule action='drop' direction='out'><ip srcipaddr='$SPOOFS'/></rule>
  <rule action='drop' direction='out'><mac match='no' srcmacaddr='$MAC'/></rule>
  <rule action='drop' direction='in'><ip srcipaddr='$DHCPSERVER' protocol='udp' srcportstart='67'/></rule>
  <rule action='drop' direction='out'><tcp dstipaddr='$PADDR[@3]' dstportstart='$PORTS[@3]'/></rule>
  <filterref filter='cf-varsub-{S}'>
    <parameter name='PORTS' value='67'/>
    <parameter name='X' value='2048'/>
    <parameter name='X' value='8080'/>
    <parameter name='BAD' value='a-b'/>
  </filterref>
</filter>`, `<filter name='cf-varsub-{S}' chain='root'>
  <rule action='drop' direction='out'><udp dstportstart='$PORTS[@ 0 ]'/></rule>
  <rule action='drop' direction='out'><tcp dstportstart='$X[1]'/></rule>
  <rule action='drop' direction='out'><tcp srcportstart='$X'/></rule>
</filter>`}},
	{label: "order", items: "6 10 11 12 14 15 16 17 22 25 26", docs: []string{`<filter name='cf-order-{S}' chain='root'>
  <rule action='drop' direction='out' priority='-750'><mac protocolid='0x88b5'/></rule>
  <filterref filter='cf-orda-{S}'/>
  <filterref filter='cf-ordb-{S}'/>
  <filterref filter='cf-ordc-{S}'/>
  <rule action='drop' direction='out' priority='0'><arp opcode='1' arpsrcipaddr='10.77.0.99'/></rule>
  <rule action='continue' direction='out' priority='10'><mac protocolid='arp'/></rule>
  <rule action='drop' direction='out' priority='20'><arp gratuitous='true'/></rule>
  <filterref filter='cf-ordd-{S}'/>
  <filterref filter='cf-ordd-{S}'/>
  <filterref filter='cf-orde-{S}'/>
  <rule action='drop' direction='out' priority='400'><udp dstportstart='1024' dstportend='65535'/></rule>
  <rule action='return' direction='in' priority='-900'><mac protocolid='0x88b5'/></rule>
  <rule action='drop' direction='in' priority='2000'><mac protocolid='0x0835'/></rule>
  <rule action='drop' direction='inout' priority='1000'/>
</filter>`, `<filter name='cf-orda-{S}' chain='ipv4-a' priority='-700'>
  <rule action='return' direction='out' priority='100'><ip protocol='udp'/></rule>
  <rule action='drop' direction='out' priority='600'><ip dstipaddr='10.77.0.16' dstipmask='28'/></rule>
  <rule action='return' direction='in' priority='700'><ip srcipaddr='10.77.0.1'/></rule>
</filter>`, `<filter name='cf-ordb-{S}' chain='ipv4-a' priority='-200'>
  <rule action='drop' direction='out' priority='50'><ip protocol='tcp' dstportstart='23'/></rule>
  <rule action='accept' direction='in' priority='800'><ip protocol='tcp'/></rule>
</filter>`, `<filter name='cf-ordc-{S}' chain='arp' priority='0'>
  <rule action='drop' direction='out'><arp opcode='2'/></rule>
  <rule action='return' direction='out'><arp arpsrcipaddr='$IP'/></rule>
</filter>`, `<filter name='cf-ordd-{S}' chain='root'>
  <rule action='drop' direction='inout' priority='300'><tcp dstportstart='80'/></rule>
  <rule action='accept' direction='inout' priority='310'><icmp/></rule>
</filter>`, `<filter name='cf-orde-{S}' chain='ipv4'>
  <rule action='accept' direction='out' priority='100' statematch='false'><udp dstportstart='2048'/></rule>
  <rule action='accept' direction='inout' priority='100'><tcp/></rule>
  <rule action='drop' direction='in' priority='200'><udp/></rule>
</filter>`}},
	{label: "inout", items: "18 20 21 29 30 35 36", docs: []string{`<filter name='cf-inout-{S}' chain='root'>
  <rule action='drop' direction='inout'><ip srcipaddr='10.77.0.99'/></rule>
  <rule action='drop' direction='inout'><mac srcmacaddr='52:54:00:ee:ee:ee'/></rule>
  <rule action='drop' direction='inout'><udp srcportstart='1024' srcportend='2048' dstipaddr='10.77.0.5'/></rule>
  <rule action='drop' direction='out'><tcp srcmacaddr='52:54:00:dd:dd:dd'/></rule>
  <rule action='drop' direction='in'><tcp srcmacaddr='$PEERMAC' dstportstart='21'/></rule>
  <rule action='accept' direction='inout'><tcp dstportstart='80'/></rule>
  <rule action='drop' direction='in'><udp srcipaddr='10.77.0.1' srcportstart='53'/></rule>
  <rule action='return' direction='out'><ipv6 srcipaddr='fd77::5'/></rule>
  <rule action='drop' direction='inout'><ipv6/></rule>
  <rule action='reject' direction='inout'><icmp type='8'/></rule>
  <rule action='drop' direction='out'><icmp type='3'/></rule>
  <rule action='drop' direction='inout'><arp arpsrcipaddr='10.77.0.99'/></rule>
  <rule action='drop' direction='inout'><tcp/></rule>
</filter>`}},
}

// Define parses the documents of f and defines them in set.
func (f Filter) Define(set *compiler.Set) error {
	for _, d := range f.Defs {
		def, err := compiler.ParseFilter([]byte(d), f.Label)
		if err != nil {
			return fmt.Errorf("filter tree %s: %w", f.Label, err)
		}
		if err := set.Define(def); err != nil {
			return fmt.Errorf("filter tree %s: %w", f.Label, err)
		}
	}
	return nil
}

// Vars is the binding's variable set for nwbpf: MAC from the guest, then
// f.Params.
func (f Filter) Vars(n Net) *compiler.Params {
	v := &compiler.Params{}
	v.Add("MAC", n.Guest.String())
	for _, p := range f.Params {
		v.Add(p.Name, p.Value)
	}
	return v
}
