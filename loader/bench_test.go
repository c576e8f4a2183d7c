// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// cleanTrafficLike is a small program shaped like libvirt's clean-traffic
// for the VM's frames: MAC anti-spoofing, an ipv4 sub-chain with IP
// anti-spoofing, an arp sub-chain, a final L2 drop, and two L3/L4 rules.
// Slot 0 holds the VM's MAC, slot 1 its IP.
func cleanTrafficLike() ([2][2][]maps.Rule, [][][]maps.CVal) {
	mac := slot(match(maps.ActDrop, neg(variable(eq(maps.FSrcMAC, 0), 0))), 0)
	ip := slot(match(maps.ActDrop, neg(variable(eq(maps.FIP4Src, 0), 0))), 1)
	sha := slot(match(maps.ActDrop, neg(variable(eq(maps.FArpSHA, 0), 0))), 0)
	spa := slot(match(maps.ActDrop, neg(variable(eq(maps.FArpSPA, 0), 0))), 1)
	var s [2][2][]maps.Rule
	s[maps.DirOut][maps.StageL2] = []maps.Rule{
		mac,
		jump(5, eq(maps.FEthProto, 0x0800)),
		jump(8, eq(maps.FEthProto, 0x0806)),
		match(maps.ActDrop),
		end(maps.ActAccept),
		// ipv4
		ip,
		match(maps.ActAccept, eq(maps.FL3, 4)),
		end(maps.ActAccept),
		// arp
		sha,
		spa,
		match(maps.ActAccept, rng(maps.FArpOpcode, 1, 2)),
		match(maps.ActDrop),
		end(maps.ActAccept),
	}
	s[maps.DirOut][maps.StageL34] = []maps.Rule{
		match(maps.ActDrop, eq(maps.FL4Proto, 6), eq(maps.FDport, 25)),
		match(maps.ActAccept, eq(maps.FL3, 4)),
	}
	inst := [][][]maps.CVal{
		{{{A: u(macVMv), B: all}}},
		{{{A: u(ipVMv), B: all}}},
	}
	return s, inst
}

// benchLoader loads the classifier as in production (no tracing) with its
// own pins, removed when the benchmark ends.
func benchLoader(b *testing.B) *Loader {
	testLoader(b) // privileges
	dir := filepath.Join("/sys/fs/bpf", netenv.Name("nwbpfb"))
	l, err := Load(Options{PinDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		l.Close()
		os.RemoveAll(dir)
	})
	return l
}

// benchBind binds a program to the loopback (ifindex 1), the test run's
// device when no context is given.
func benchBind(b *testing.B, l *Loader, stages [2][2][]maps.Rule, inst [][][]maps.CVal) {
	store, err := maps.NewStore(l.Maps(), maps.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := store.Bind(1, maps.BindRequest{Stages: stages, Instances: inst}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkClassifier measures the cost per frame through
// BPF_PROG_TEST_RUN of the classifier (loaded as in production, without
// tracing) running cleanTrafficLike, next to an empty TC program from the
// same object. Without a context the test run's device is the loopback
// (ifindex 1), which the benchmark binds in its own maps.
func BenchmarkClassifier(b *testing.B) {
	l := benchLoader(b)
	stages, inst := cleanTrafficLike()
	benchBind(b, l, stages, inst)
	arp := frame(b, eth(layers.EthernetTypeARP), &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: 1, SourceHwAddress: macVM, SourceProtAddress: ipVM, DstHwAddress: make(net.HardwareAddr, 6), DstProtAddress: ipGW,
	})
	spoofed := ip4(layers.IPProtocolUDP)
	spoofed.SrcIP = net.IPv4(10, 0, 0, 66)
	for _, bc := range []struct {
		name  string
		prog  *ebpf.Program
		frame []byte
		want  uint32
	}{
		{"empty", l.EmptyProgram(), udp4(b), tcOK},
		{"udp-accepted", l.Program(maps.HookIngress), udp4(b), tcOK},
		{"tcp-syn-accepted", l.Program(maps.HookIngress), frame(b, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcpSyn(40000, 443)), tcOK},
		{"arp-accepted", l.Program(maps.HookIngress), arp, tcOK},
		{"ip-spoof-dropped", l.Program(maps.HookIngress), frame(b, eth(layers.EthernetTypeIPv4), spoofed, udp(1, 2)), tcShot},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ret, d, err := bc.prog.Benchmark(bc.frame, b.N, b.ResetTimer)
			if err != nil {
				b.Fatal(err)
			}
			if ret != bc.want {
				b.Fatalf("verdict %d, want %d", ret, bc.want)
			}
			b.ReportMetric(float64(d.Nanoseconds()), "ns/frame")
		})
	}
}
