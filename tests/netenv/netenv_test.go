// SPDX-License-Identifier: Apache-2.0

package netenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/nwbpf/nwbpf/internal/privtest"
	"github.com/nwbpf/nwbpf/internal/sandbox"
)

// wait bounds every positive delivery check; negatives take this long.
const wait = 500 * time.Millisecond

var seq atomic.Uint64

// udpFrame builds an IPv4/UDP frame from src to dst with a unique payload,
// 802.1Q-tagged with vid when vid > 0, padded to 60 bytes when short.
func udpFrame(t testing.TB, src, dst net.HardwareAddr, vid uint16) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	ls := []gopacket.SerializableLayer{eth}
	if vid > 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: vid, Type: layers.EthernetTypeIPv4})
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(10, 9, 0, 2), DstIP: net.IPv4(10, 9, 0, 1)}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 9}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	payload := gopacket.Payload(fmt.Sprintf("nwbpf-netenv-%d", seq.Add(1)))
	ls = append(ls, ip, udp, payload)
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatal(err)
	}
	f := buf.Bytes()
	if len(f) < 60 {
		f = append(f, make([]byte, 60-len(f))...)
	}
	return f
}

func TestName(t *testing.T) {
	seen := map[string]bool{}
	for _, prefix := range []string{"", "nwt", "averyveryverylongprefix"} {
		for range 100 {
			n := Name(prefix)
			if len(n) > sandbox.MaxIfName {
				t.Fatalf("Name(%q) = %q: longer than %d", prefix, n, sandbox.MaxIfName)
			}
			if !strings.HasPrefix(prefix, n[:len(n)-8]) {
				t.Fatalf("Name(%q) = %q: does not start with the prefix", prefix, n)
			}
			if seen[n] {
				t.Fatalf("Name(%q) repeated %q", prefix, n)
			}
			seen[n] = true
		}
	}
}

func TestRandomMAC(t *testing.T) {
	for range 100 {
		m := RandomMAC(0xfe)
		if m[0] != 0xfe {
			t.Fatalf("RandomMAC(0xfe) = %s", m)
		}
		if m := RandomMAC(0x53); m[0] != 0x52 {
			t.Fatalf("RandomMAC(0x53) = %s: want first octet 52 (local, unicast)", m)
		}
	}
}

func TestNSDo(t *testing.T) {
	privtest.Require(t)
	n := NewNS(t)
	host, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	target, err := netns.GetFromName(n.Name)
	if err != nil {
		t.Fatalf("namespace %s is not visible under %s: %v", n.Name, sandbox.NetnsDir, err)
	}
	defer target.Close()

	err = n.Do(func() error {
		cur, err := netns.Get()
		if err != nil {
			return err
		}
		defer cur.Close()
		if !cur.Equal(target) {
			return fmt.Errorf("Do runs in %s, want %s", cur.UniqueId(), target.UniqueId())
		}
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		if len(links) != 1 || links[0].Attrs().Name != "lo" {
			return fmt.Errorf("fresh namespace has links %v, want only lo", links)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := netns.Get(); err != nil || !cur.Equal(host) {
		t.Fatalf("test goroutine moved to another namespace (%v)", err)
	}
	want := errors.New("boom")
	if err := n.Do(func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	if err := n.Do(func() error { panic("boom") }); err == nil {
		t.Error("Do swallowed a panic")
	}
	if lo := n.Link(t, "lo"); lo.Attrs().Flags&net.FlagUp == 0 {
		t.Error("lo is down in the new namespace")
	}
}

// TestCleanup builds one of everything in a subtest and checks that nothing
// is left once the subtest has returned.
func TestCleanup(t *testing.T) {
	privtest.Require(t)
	var nsNames, hostLinks []string
	t.Run("build", func(t *testing.T) {
		host := Host(t)
		a, b := NewNS(t), NewNS(t)
		nsNames = append(nsNames, a.Name, b.Name)
		br := host.AddBridge(t)
		tap := host.AddTap(t)
		v, _ := host.AddVeth(t, a)
		lower, _ := a.AddVeth(t, b)
		mvt := a.AddMacvtap(t, lower, netlink.MACVLAN_MODE_BRIDGE)
		NewSink(t, b, b.Link(t, "lo"))
		host.Attach(t, host.Link(t, tap.Name), br)
		hostLinks = append(hostLinks, br.Name, tap.Name, v.Attrs().Name)
		if !strings.HasPrefix(mvt.Name, "nwmvt") {
			t.Errorf("macvtap name %q", mvt.Name)
		}
	})
	for _, name := range nsNames {
		if _, err := os.Stat(filepath.Join(sandbox.NetnsDir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s survived cleanup (%v)", name, err)
		}
	}
	for _, name := range hostLinks {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("host link %s survived cleanup", name)
		}
	}
}

// bridged is a tap (the VM) and a veth port on one bridge in a private
// namespace; the veth's peer, in a second namespace, carries the sink.
type bridged struct {
	ns    *NS // the bridge's and the tap's
	tap   *Tap
	sink  *Sink
	guest net.HardwareAddr
}

func newBridged(t *testing.T) bridged {
	a, b := NewNS(t), NewNS(t)
	br := a.AddBridge(t)
	tap := a.AddTap(t)
	a.Attach(t, a.Link(t, tap.Name), br)
	port, peer := a.AddVeth(t, b)
	a.Attach(t, port, br)
	return bridged{ns: a, tap: tap, sink: NewSink(t, b, peer), guest: RandomMAC(0x52)}
}

func TestTapBridgeSink(t *testing.T) {
	privtest.Require(t)
	env := newBridged(t)
	for _, vid := range []uint16{0, 42} {
		out := udpFrame(t, env.guest, env.sink.MAC, vid)
		if err := env.tap.Send(out); err != nil {
			t.Fatal(err)
		}
		if ok, err := Await(env.sink, out, wait); err != nil || !ok {
			t.Errorf("vid %d: frame written on the tap fd did not reach the sink (%v)", vid, err)
		}
		in := udpFrame(t, env.sink.MAC, env.guest, vid)
		if err := env.sink.Send(in); err != nil {
			t.Fatal(err)
		}
		if ok, err := Await(env.tap, in, wait); err != nil || !ok {
			t.Errorf("vid %d: frame sent by the sink did not reach the tap fd (%v)", vid, err)
		}
	}
	// Await must be able to say no.
	never := udpFrame(t, env.guest, env.sink.MAC, 0)
	if ok, err := Await(env.sink, never, 50*time.Millisecond); err != nil || ok {
		t.Errorf("Await found a frame nobody sent: %v, %v", ok, err)
	}
	if f, err := env.tap.Recv(10 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("idle tap Recv: %x, %v, want a deadline error", f, err)
	}
}

func TestMacvtap(t *testing.T) {
	privtest.Require(t)
	for name, mode := range map[string]netlink.MacvlanMode{"bridge": netlink.MACVLAN_MODE_BRIDGE, "vepa": netlink.MACVLAN_MODE_VEPA} {
		t.Run(name, func(t *testing.T) {
			a, b := NewNS(t), NewNS(t)
			lower, peer := a.AddVeth(t, b)
			vm := a.AddMacvtap(t, lower, mode)
			sink := NewSink(t, b, peer)
			for _, vid := range []uint16{0, 42} {
				out := udpFrame(t, vm.MAC, sink.MAC, vid)
				if err := vm.Send(out); err != nil {
					t.Fatal(err)
				}
				if ok, err := Await(sink, out, wait); err != nil || !ok {
					t.Errorf("vid %d: frame written on the macvtap fd did not reach the sink (%v)", vid, err)
				}
				in := udpFrame(t, sink.MAC, vm.MAC, vid)
				if err := sink.Send(in); err != nil {
					t.Fatal(err)
				}
				if ok, err := Await(vm, in, wait); err != nil || !ok {
					t.Errorf("vid %d: frame sent by the sink did not reach the macvtap fd (%v)", vid, err)
				}
			}
			// macvtap delivers by destination MAC: another guest's frame
			// must not reach this VM.
			stray := udpFrame(t, sink.MAC, RandomMAC(0x52), 0)
			if err := sink.Send(stray); err != nil {
				t.Fatal(err)
			}
			if ok, err := Await(vm, stray, 50*time.Millisecond); err != nil || ok {
				t.Errorf("frame for another MAC reached the macvtap fd: %v, %v", ok, err)
			}
		})
	}
}
