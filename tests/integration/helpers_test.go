// SPDX-License-Identifier: Apache-2.0

package integration

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/nwbpf/nwbpf/compiler"
	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/loader"
	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// stockDir holds libvirt's stock filters (libvirt-daemon-config-nwfilter,
// installed by .ci/run).
const stockDir = "/usr/share/libvirt/nwfilter"

// shared is one pinned classifier for the package's attach tests.
var shared struct {
	once  sync.Once
	dir   string
	l     *loader.Loader
	store *maps.Store
	err   error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.l != nil {
		shared.l.Close()
	}
	if shared.dir != "" {
		if err := os.RemoveAll(shared.dir); err != nil {
			fmt.Fprintf(os.Stderr, "unpin %s: %v\n", shared.dir, err)
			code = 1
		}
	}
	if fuzzRun.tr != nil {
		fuzzRun.tr.Close()
	}
	os.Exit(code)
}

// classifier returns the package's pinned classifier and its Store.
func classifier(t testing.TB) (*loader.Loader, *maps.Store) {
	t.Helper()
	privtest.Require(t)
	shared.once.Do(func() {
		shared.dir = filepath.Join(privtest.BPFFS, netenv.Name("nwbit"))
		shared.l, shared.err = loader.Load(loader.Options{PinDir: shared.dir})
		if shared.err != nil {
			return
		}
		shared.store, shared.err = maps.NewStore(shared.l.Maps(), maps.Options{})
	})
	if shared.err != nil {
		t.Fatalf("load classifier: %v", shared.err)
	}
	return shared.l, shared.store
}

// stockSet loads libvirt's stock filters.
func stockSet(t testing.TB) *compiler.Set {
	t.Helper()
	if _, err := os.Stat(stockDir); err != nil {
		if privtest.CI() {
			t.Fatalf("stock filters: %v (.ci/run installs libvirt-daemon-config-nwfilter)", err)
		}
		t.Skipf("stock filters: %v (apt-get install libvirt-daemon-config-nwfilter)", err)
	}
	set, err := compiler.LoadDir(stockDir)
	if err != nil {
		t.Fatalf("load %s: %v", stockDir, err)
	}
	return set
}

// cleanTraffic compiles the stock clean-traffic and binds it to a guest.
func cleanTraffic(t testing.TB, mac net.HardwareAddr, ip net.IP) (*compiler.Program, compiler.Instances) {
	t.Helper()
	prog, err := stockSet(t).Compile("clean-traffic", compiler.Options{})
	if err != nil {
		t.Fatalf("compile clean-traffic: %v", err)
	}
	var vars compiler.Params
	vars.Add("MAC", mac.String())
	vars.Add("IP", ip.String())
	inst, err := prog.Bind(&vars)
	if err != nil {
		t.Fatalf("bind clean-traffic: %v", err)
	}
	return prog, inst
}

// dropCount sums the classifier's drop counters of one reason and
// direction.
func dropCount(t testing.TB, l *loader.Loader, r maps.DropReason, d maps.Dir) uint64 {
	t.Helper()
	var cs []maps.DropCount
	if err := l.Map("nwf_drop_stats").Lookup(maps.DropStatsKey(r, d), &cs); err != nil {
		t.Fatalf("read nwf_drop_stats: %v", err)
	}
	var n uint64
	for _, c := range cs {
		n += c.Packets
	}
	return n
}

// ---- Frames ----

// nonce returns random bytes that make a frame unique, so the receiver
// counts only the test's own frames.
func nonce(t testing.TB) gopacket.Payload {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// serialize builds a frame, fixing lengths and checksums.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	for _, l := range ls {
		if u, ok := l.(*layers.UDP); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					if err := u.SetNetworkLayerForChecksum(nl); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return buf.Bytes()
}

// udp4Frame is a UDP datagram from (smac, sip) to (dmac, dip).
func udp4Frame(t testing.TB, smac, dmac net.HardwareAddr, sip, dip net.IP, sport, dport uint16) []byte {
	return serialize(t,
		&layers.Ethernet{SrcMAC: smac, DstMAC: dmac, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: sip.To4(), DstIP: dip.To4()},
		&layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)},
		nonce(t))
}

// udp6Frame is an IPv6 UDP datagram.
func udp6Frame(t testing.TB, smac, dmac net.HardwareAddr, sip, dip net.IP) []byte {
	return serialize(t,
		&layers.Ethernet{SrcMAC: smac, DstMAC: dmac, EthernetType: layers.EthernetTypeIPv6},
		&layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: sip, DstIP: dip},
		&layers.UDP{SrcPort: 5000, DstPort: 5001},
		nonce(t))
}

// arpFrame is an ARP packet in an Ethernet frame from esrc to edst, with
// a nonce in the trailing padding (which ARP ignores).
func arpFrame(t testing.TB, op uint16, esrc, edst, sha net.HardwareAddr, spa net.IP, tha net.HardwareAddr, tpa net.IP) []byte {
	return serialize(t,
		&layers.Ethernet{SrcMAC: esrc, DstMAC: edst, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: op, SourceHwAddress: sha, SourceProtAddress: spa.To4(), DstHwAddress: tha, DstProtAddress: tpa.To4(),
		},
		nonce(t))
}

// probe is a frame with the number of copies the receiver must get.
type probe struct {
	name  string
	frame []byte
	want  int
}

// expect sends the probes in order from one endpoint, then a marker frame
// that must be delivered, and counts what the other endpoint receives
// until the marker (and a little after it, for stragglers): frames of one
// path arrive in order, so a probe not seen by then was dropped.
func expect(t *testing.T, what string, from, to netenv.Endpoint, marker []byte, probes []probe) {
	t.Helper()
	if err := netenv.Drain(to); err != nil {
		t.Fatalf("%s: drain: %v", what, err)
	}
	for _, p := range probes {
		if err := from.Send(p.frame); err != nil {
			t.Fatalf("%s: send %s: %v", what, p.name, err)
		}
	}
	if err := from.Send(marker); err != nil {
		t.Fatalf("%s: send marker: %v", what, err)
	}
	got := make([]int, len(probes))
	deadline := time.Now().Add(3 * time.Second)
	seen := false
	for {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		f, err := to.Recv(left)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("%s: receive: %v", what, err)
		}
		for i, p := range probes {
			if netenv.FrameMatches(p.frame, f) {
				got[i]++
			}
		}
		if !seen && netenv.FrameMatches(marker, f) {
			seen = true
			deadline = time.Now().Add(150 * time.Millisecond)
		}
	}
	if !seen {
		t.Fatalf("%s: the marker frame was not delivered", what)
	}
	for i, p := range probes {
		if got[i] != p.want {
			t.Errorf("%s: %s: received %d, want %d", what, p.name, got[i], p.want)
		}
	}
}
