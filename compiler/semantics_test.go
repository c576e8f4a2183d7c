// SPDX-License-Identifier: Apache-2.0

package compiler_test

import (
	"net"
	"os"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/compiler/eval"
	"github.com/nwbpf/nwbpf/maps"
)

// These tests run compiled stock filters through the reference evaluator
// with real frames and pin the verdicts libvirt gives (NWFILTER.md §13).

var (
	guestMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x56, 0x44, 0x32}
	otherMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x99}
	gwMAC    = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x01}
	bcast    = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	guestIP  = net.IP{10, 0, 0, 5}
	otherIP  = net.IP{10, 0, 0, 66}
	gwIP     = net.IP{10, 0, 0, 1}
)

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func udp4(t *testing.T, smac, dmac net.HardwareAddr, sip, dip net.IP, sport, dport uint16) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: sip, DstIP: dip}
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: smac, DstMAC: dmac, EthernetType: layers.EthernetTypeIPv4}, ip, u, gopacket.Payload("nwbpf"))
}

func arp(t *testing.T, smac net.HardwareAddr, op uint16, sha net.HardwareAddr, spa, tpa net.IP) []byte {
	return serialize(t, &layers.Ethernet{SrcMAC: smac, DstMAC: bcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: op, SourceHwAddress: sha, SourceProtAddress: spa.To4(), DstHwAddress: make([]byte, 6), DstProtAddress: tpa.To4()})
}

func rarp(t *testing.T, smac, mac net.HardwareAddr) []byte {
	b := arp(t, smac, 3, mac, net.IPv4zero, net.IPv4zero)
	b[12], b[13] = 0x80, 0x35
	copy(b[32:38], mac) // target hardware address
	return b
}

func ipv6(t *testing.T, smac net.HardwareAddr) []byte {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("fd00::5"), DstIP: net.ParseIP("fd00::1")}
	u := &layers.UDP{SrcPort: 1, DstPort: 2}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: smac, DstMAC: gwMAC, EthernetType: layers.EthernetTypeIPv6}, ip, u)
}

func vlanTagged(t *testing.T, smac net.HardwareAddr, sip net.IP) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: sip, DstIP: gwIP}
	u := &layers.UDP{SrcPort: 1, DstPort: 2}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: smac, DstMAC: gwMAC, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv4}, ip, u)
}

func rawType(smac net.HardwareAddr, typ uint16) []byte {
	b := make([]byte, 60)
	copy(b, bcast)
	copy(b[6:], smac)
	b[12], b[13] = byte(typ>>8), byte(typ)
	return b
}

type frameCase struct {
	name  string
	dir   maps.Dir
	frame []byte
	want  eval.Verdict
}

func runCases(t *testing.T, filter string, params []string, cases []frameCase) {
	t.Helper()
	if _, err := os.Stat("/usr/share/libvirt/nwfilter"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("stock filters missing in CI")
		}
		t.Skip("stock filters not installed: apt-get install libvirt-daemon-config-nwfilter")
	}
	s, err := compiler.LoadDir("/usr/share/libvirt/nwfilter")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Compile(filter, compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := &compiler.Params{}
	v.Add("MAC", guestMAC.String())
	for i := 0; i+1 < len(params); i += 2 {
		v.Add(params[i], params[i+1])
	}
	inst, err := p.Bind(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		r := eval.Eval(p.Stages, inst, eval.Parse(c.frame, eval.Meta{}), c.dir, eval.CT{})
		if r.Verdict != c.want {
			m := ""
			if r.Index >= 0 {
				m = p.Meta[r.RuleID].Filter + " " + p.Meta[r.RuleID].Match
			}
			t.Errorf("%s: %s (%s stage, entry %d: %s), want %s", c.name, r.Verdict, r.Stage, r.Index, m, c.want)
		}
	}
}

func TestCleanTrafficVerdicts(t *testing.T) {
	out, in := maps.DirOut, maps.DirIn
	runCases(t, "clean-traffic", []string{"IP", "10.0.0.5"}, []frameCase{
		{"legit IPv4", out, udp4(t, guestMAC, gwMAC, guestIP, gwIP, 1000, 53), eval.VerdictAccept},
		{"spoofed source IP", out, udp4(t, guestMAC, gwMAC, otherIP, gwIP, 1000, 53), eval.VerdictDrop},
		{"spoofed source MAC", out, udp4(t, otherMAC, gwMAC, guestIP, gwIP, 1000, 53), eval.VerdictDrop},
		{"DHCP discover from 0.0.0.0", out, udp4(t, guestMAC, bcast, net.IPv4zero, net.IPv4bcast, 68, 67), eval.VerdictAccept},
		{"UDP from 0.0.0.0 to any port", out, udp4(t, guestMAC, gwMAC, net.IPv4zero, gwIP, 5, 9999), eval.VerdictAccept},
		{"legit ARP request", out, arp(t, guestMAC, 1, guestMAC, guestIP, gwIP), eval.VerdictAccept},
		{"ARP with foreign sender IP", out, arp(t, guestMAC, 2, guestMAC, otherIP, gwIP), eval.VerdictDrop},
		{"ARP with foreign sender MAC", out, arp(t, guestMAC, 1, otherMAC, guestIP, gwIP), eval.VerdictDrop},
		{"ARP probe from 0.0.0.0", out, arp(t, guestMAC, 1, guestMAC, net.IPv4zero, guestIP), eval.VerdictDrop},
		{"IPv6", out, ipv6(t, guestMAC), eval.VerdictDrop},
		{"VLAN tagged", out, vlanTagged(t, guestMAC, guestIP), eval.VerdictDrop},
		{"qemu announce 0x0835", out, rawType(guestMAC, 0x0835), eval.VerdictAccept},
		{"unknown ethertype", out, rawType(guestMAC, 0x88b5), eval.VerdictDrop},
		{"RARP announce of own MAC", out, rarp(t, guestMAC, guestMAC), eval.VerdictAccept},
		{"RARP announce of other MAC", out, rarp(t, guestMAC, otherMAC), eval.VerdictDrop},
		{"IPv4 to the guest from anyone", in, udp4(t, otherMAC, guestMAC, otherIP, guestIP, 1, 2), eval.VerdictAccept},
		{"ARP to the guest for another guest", in, arp(t, otherMAC, 1, otherMAC, otherIP, gwIP), eval.VerdictAccept},
		{"IPv6 to the guest", in, ipv6(t, otherMAC), eval.VerdictDrop},
		{"RARP of the guest's MAC to it", in, rarp(t, otherMAC, guestMAC), eval.VerdictAccept},
		{"RARP of another MAC to it", in, rarp(t, otherMAC, otherMAC), eval.VerdictDrop},
	})
}

// no-ip-spoofing only looks at untagged IPv4: a tagged spoofed frame
// passes it (NWFILTER.md §13).
func TestNoIPSpoofingIgnoresTagged(t *testing.T) {
	runCases(t, "no-ip-spoofing", []string{"IP", "10.0.0.5"}, []frameCase{
		{"tagged spoofed", maps.DirOut, vlanTagged(t, guestMAC, otherIP), eval.VerdictAccept},
		{"untagged spoofed", maps.DirOut, udp4(t, guestMAC, gwMAC, otherIP, gwIP, 1, 2), eval.VerdictDrop},
		{"spoofed MAC, own IP", maps.DirOut, udp4(t, otherMAC, gwMAC, guestIP, gwIP, 1, 2), eval.VerdictAccept},
	})
}
