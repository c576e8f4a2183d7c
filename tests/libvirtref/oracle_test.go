// SPDX-License-Identifier: Apache-2.0

package libvirtref

import (
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// repeat is how many distinct frames each case sends.
const repeat = 10

var (
	guestIP = net.IPv4(10, 77, 0, 5).To4()
	peerIP  = net.IPv4(10, 77, 0, 1).To4()
	spoofIP = net.IPv4(10, 77, 0, 99).To4()
	seq     atomic.Uint64
)

// frame describes a test frame; build turns it into bytes with a unique
// payload.
type frame struct {
	src, dst     net.HardwareAddr
	vid          uint16 // 802.1Q tag when > 0
	ipv6         bool
	arp          bool   // ARP request from src for dstIP, sender IP srcIP
	etype        uint16 // when set: this EtherType and a bare payload
	srcIP, dstIP net.IP
	sport, dport uint16
}

func (f frame) build(t testing.TB) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: f.src, DstMAC: f.dst}
	var ls []gopacket.SerializableLayer
	inner := layers.EthernetTypeIPv4
	switch {
	case f.etype != 0:
		inner = layers.EthernetType(f.etype)
	case f.arp:
		inner = layers.EthernetTypeARP
	case f.ipv6:
		inner = layers.EthernetTypeIPv6
	}
	if f.vid > 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, eth, &layers.Dot1Q{VLANIdentifier: f.vid, Type: inner})
	} else {
		eth.EthernetType = inner
		ls = append(ls, eth)
	}
	n := seq.Add(1)
	payload := gopacket.Payload(fmt.Sprintf("nwbpf-oracle-%d", n))
	switch {
	case f.etype != 0:
		ls = append(ls, payload)
	case f.arp:
		ls = append(ls, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
			SourceHwAddress: f.src, SourceProtAddress: f.srcIP,
			DstHwAddress: make([]byte, 6), DstProtAddress: f.dstIP}, payload)
	case f.ipv6:
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: net.ParseIP("fd00::5"), DstIP: net.ParseIP("fd00::1")}
		udp := &layers.UDP{SrcPort: layers.UDPPort(f.sport), DstPort: layers.UDPPort(f.dport)}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, ip, udp, payload)
	default:
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, Id: uint16(n),
			SrcIP: f.srcIP, DstIP: f.dstIP}
		udp := &layers.UDP{SrcPort: layers.UDPPort(f.sport), DstPort: layers.UDPPort(f.dport)}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, ip, udp, payload)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b) < 60 {
		b = append(b, make([]byte, 60-len(b))...)
	}
	return b
}

// countBytes sends repeat frames made by mk in dir and returns how many
// were delivered.
func countBytes(o *Oracle, dir maps.Dir, mk func() []byte) int {
	n := 0
	for range repeat {
		if o.Send(dir, mk()) {
			n++
		}
	}
	return n
}

// count sends repeat distinct copies of f in dir and returns how many were
// delivered.
func count(t *testing.T, o *Oracle, dir maps.Dir, f frame) int {
	t.Helper()
	return countBytes(o, dir, func() []byte { return f.build(t) })
}

// tcase is one row: a frame, a direction and how many of repeat copies must
// be delivered (0 or repeat).
type tcase struct {
	name string
	dir  maps.Dir
	f    frame
	want int
}

func run(t *testing.T, o *Oracle, cases []tcase) {
	t.Helper()
	for _, c := range cases {
		got := count(t, o, c.dir, c.f)
		t.Logf("%-44s %-3v delivered %2d/%d", c.name, c.dir, got, repeat)
		if got != c.want {
			t.Errorf("%s (%v): delivered %d/%d, want %d", c.name, c.dir, got, repeat, c.want)
		}
	}
}

// cases returns the frames every test sends, for an Oracle o.
func cases(o *Oracle) (legit, spoofIP4, spoofMAC, tagged, tagSpoof, dhcp, ipv6, arp, arpSpoof, toGuest frame) {
	g, s := o.GuestMAC, o.Sink.MAC
	legit = frame{src: g, dst: s, srcIP: guestIP, dstIP: peerIP, sport: 40000, dport: 53}
	spoofIP4 = legit
	spoofIP4.srcIP = spoofIP
	spoofMAC = legit
	spoofMAC.src = netenv.RandomMAC(0x52)
	tagged = legit
	tagged.vid = 42
	tagSpoof = spoofIP4
	tagSpoof.vid = 42
	dhcp = frame{src: g, dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, srcIP: net.IPv4zero.To4(),
		dstIP: net.IPv4bcast.To4(), sport: 68, dport: 67}
	ipv6 = frame{src: g, dst: s, ipv6: true, sport: 40000, dport: 53}
	arp = frame{src: g, dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, arp: true, srcIP: guestIP, dstIP: peerIP}
	arpSpoof = arp
	arpSpoof.srcIP = spoofIP
	toGuest = frame{src: s, dst: g, srcIP: peerIP, dstIP: guestIP, sport: 53, dport: 40000}
	return
}

func TestNoFilter(t *testing.T) {
	o := New(t)
	legit, spoofIP4, spoofMAC, tagged, _, _, ipv6, arp, _, toGuest := cases(o)
	run(t, o, []tcase{
		{"IPv4 from the guest", maps.DirOut, legit, repeat},
		{"IPv4 with a spoofed source IP", maps.DirOut, spoofIP4, repeat},
		{"IPv4 with a spoofed source MAC", maps.DirOut, spoofMAC, repeat},
		{"802.1Q-tagged IPv4", maps.DirOut, tagged, repeat},
		{"IPv6", maps.DirOut, ipv6, repeat},
		{"ARP request", maps.DirOut, arp, repeat},
		{"IPv4 to the guest", maps.DirIn, toGuest, repeat},
	})
}

// TestBridgeLimits pins what the bridge itself never delivers (or does),
// as New's documentation says, with no filter bound.
func TestBridgeLimits(t *testing.T) {
	o := New(t)
	legit, _, _, _, _, _, _, _, _, _ := cases(o)
	zeroSrc, mcastSrc, lldp, bpdu := legit, legit, legit, legit
	zeroSrc.src = make(net.HardwareAddr, 6)
	mcastSrc.src = net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}
	lldp.dst = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}
	bpdu.dst = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}
	pause := legit
	pause.dst = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x01}
	run(t, o, []tcase{
		{"zero source MAC", maps.DirOut, zeroSrc, 0},
		{"multicast source MAC", maps.DirOut, mcastSrc, 0},
		{"to 01:80:c2:00:00:01 (pause)", maps.DirOut, pause, 0},
		{"to 01:80:c2:00:00:0e (LLDP group)", maps.DirOut, lldp, repeat},
		{"to 01:80:c2:00:00:00 (STP group)", maps.DirOut, bpdu, repeat},
	})
	badSum := countBytes(o, maps.DirOut, func() []byte {
		b := legit.build(t)
		b[14+10] ^= 0xff // IPv4 header checksum
		return b
	})
	t.Logf("%-44s %-3v delivered %2d/%d", "IPv4 with a bad header checksum", maps.DirOut, badSum, repeat)
	if badSum != 0 {
		t.Errorf("IPv4 with a bad header checksum: delivered %d/%d, want 0 (bridge netfilter drops it)", badSum, repeat)
	}
}

func TestCleanTraffic(t *testing.T) {
	o := New(t)
	o.Bind("clean-traffic", Param{"IP", guestIP.String()})
	legit, spoofIP4, spoofMAC, tagged, _, dhcp, ipv6, arp, arpSpoof, toGuest := cases(o)
	arpProbe := arp
	arpProbe.srcIP = net.IPv4zero.To4()
	announce := frame{src: o.GuestMAC, dst: o.Sink.MAC, etype: 0x0835}
	flooded := toGuest
	flooded.dst = netenv.RandomMAC(0x52)
	arpIn := frame{src: o.Sink.MAC, dst: o.GuestMAC, arp: true, srcIP: peerIP, dstIP: guestIP}
	ipv6In := frame{src: o.Sink.MAC, dst: o.GuestMAC, ipv6: true, sport: 53, dport: 40000}
	run(t, o, []tcase{
		{"IPv4 from the guest's IP and MAC", maps.DirOut, legit, repeat},
		{"IPv4 with a spoofed source IP", maps.DirOut, spoofIP4, 0},
		{"IPv4 with a spoofed source MAC", maps.DirOut, spoofMAC, 0},
		{"DHCP discover from 0.0.0.0", maps.DirOut, dhcp, repeat},
		{"802.1Q-tagged IPv4 from the guest", maps.DirOut, tagged, 0},
		{"IPv6 from the guest", maps.DirOut, ipv6, 0},
		{"ARP request from the guest", maps.DirOut, arp, repeat},
		{"ARP with a spoofed sender IP", maps.DirOut, arpSpoof, 0},
		{"ARP probe from 0.0.0.0 (DAD)", maps.DirOut, arpProbe, 0},
		{"EtherType 0x0835 (qemu-announce-self)", maps.DirOut, announce, repeat},
		{"IPv4 to the guest", maps.DirIn, toGuest, repeat},
		{"IPv4 to another MAC, flooded to the guest", maps.DirIn, flooded, repeat},
		{"ARP to the guest", maps.DirIn, arpIn, repeat},
		{"IPv6 to the guest", maps.DirIn, ipv6In, 0},
	})
	// Unbinding removes libvirt's rules: the spoofed frame passes again.
	o.Unbind()
	run(t, o, []tcase{{"spoofed source IP after unbind", maps.DirOut, spoofIP4, repeat}})
}

// TestNoIPSpoofingVLAN pins NWFILTER.md §13: no-ip-spoofing only looks at
// untagged IPv4.
func TestNoIPSpoofingVLAN(t *testing.T) {
	o := New(t)
	o.Bind("no-ip-spoofing", Param{"IP", guestIP.String()})
	legit, spoofIP4, spoofMAC, _, tagSpoof, _, _, _, _, _ := cases(o)
	dhcpAnyPort := legit
	dhcpAnyPort.srcIP, dhcpAnyPort.dport = net.IPv4zero.To4(), 4444
	run(t, o, []tcase{
		{"IPv4 from the guest's IP", maps.DirOut, legit, repeat},
		{"IPv4 with a spoofed source IP", maps.DirOut, spoofIP4, 0},
		{"802.1Q-tagged, spoofed source IP", maps.DirOut, tagSpoof, repeat},
		{"UDP from 0.0.0.0 to any port", maps.DirOut, dhcpAnyPort, repeat},
		{"guest IP, spoofed MAC (not checked)", maps.DirOut, spoofMAC, repeat},
	})
}

// TestConntrack checks libvirt's stateful L3 rules and FlushConntrack: the
// reply to a UDP flow the guest opened is let in until conntrack forgets the
// flow.
func TestConntrack(t *testing.T) {
	o := New(t)
	name := DefineFilter(t, fmt.Sprintf(`<filter name='%s' chain='root'>
  <rule action='accept' direction='out'><udp dstportstart='53'/></rule>
  <rule action='drop' direction='inout'><all/></rule>
</filter>`, netenv.Name("nwbpf-ct-")))
	o.Bind(name)
	legit, _, _, _, _, _, _, _, _, reply := cases(o)
	otherPort := legit
	otherPort.dport = 54
	run(t, o, []tcase{
		{"reply before the guest sent anything", maps.DirIn, reply, 0},
		{"UDP to port 53", maps.DirOut, legit, repeat},
		{"UDP to port 54", maps.DirOut, otherPort, 0},
		{"reply after the guest's request", maps.DirIn, reply, repeat},
	})
	FlushConntrack(t)
	run(t, o, []tcase{{"reply after a conntrack flush", maps.DirIn, reply, 0}})
}

// TestSweep checks that New removes the binding of an Oracle port that no
// longer exists, as a killed test binary leaves behind.
func TestSweep(t *testing.T) {
	Ensure(t)
	port := netenv.Name(PortPrefix)
	// libvirt keeps a binding for a port that does not exist (it
	// instantiates nothing).
	Bind(t, port, netenv.RandomMAC(0x52), "no-ip-spoofing", Param{"IP", guestIP.String()})
	if !slices.Contains(Bindings(t), port) {
		t.Fatalf("libvirt did not keep a binding for missing port %s", port)
	}
	New(t)
	if slices.Contains(Bindings(t), port) {
		t.Errorf("New left the stale binding of %s", port)
	}
}
