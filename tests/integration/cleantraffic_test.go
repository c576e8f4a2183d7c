// SPDX-License-Identifier: Apache-2.0

package integration

import (
	"errors"
	"net"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"

	"github.com/nwbpf/nwbpf/loader"
	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// topology is a guest device played by the test and a peer namespace
// whose sink sees what leaves the guest's side.
type topology struct {
	ns   *netenv.NS // holds the guest device
	vm   *netenv.Tap
	peer *netenv.Sink
	mac  net.HardwareAddr // the guest's MAC
}

// tapTopology is a tap on a bridge whose other port is a veth to a peer
// namespace, as libvirt's bridged guests are.
func tapTopology(t *testing.T) *topology {
	ns, peerNS := netenv.NewNS(t), netenv.NewNS(t)
	local, remote := ns.AddVeth(t, peerNS)
	br := ns.AddBridge(t)
	vm := ns.AddTap(t)
	ns.Attach(t, ns.Link(t, vm.Name), br)
	ns.Attach(t, local, br)
	return &topology{ns: ns, vm: vm, peer: netenv.NewSink(t, peerNS, remote), mac: netenv.RandomMAC(0x52)}
}

// macvtapTopology is a macvtap (bridge mode) on a veth whose peer is in
// another namespace, as libvirt's type='direct' guests are. The guest's
// MAC is the macvtap's.
func macvtapTopology(t *testing.T) *topology {
	ns, peerNS := netenv.NewNS(t), netenv.NewNS(t)
	local, remote := ns.AddVeth(t, peerNS)
	vm := ns.AddMacvtap(t, local, netlink.MACVLAN_MODE_BRIDGE)
	return &topology{ns: ns, vm: vm, peer: netenv.NewSink(t, peerNS, remote), mac: vm.MAC}
}

// attach attaches the shared classifier to the topology's guest device
// and binds prog to it; both are undone in t.Cleanup.
func (tp *topology) attach(t *testing.T, l *loader.Loader, store *maps.Store, clsact bool, stages [2][2][]maps.Rule, inst [][][]maps.CVal) *loader.Attachment {
	t.Helper()
	var a *loader.Attachment
	err := tp.ns.Do(func() error {
		var err error
		a, err = l.Attach(tp.vm.Name, loader.AttachOptions{ForceClsact: clsact})
		return err
	})
	if err != nil {
		t.Fatalf("attach %s: %v", tp.vm.Name, err)
	}
	t.Cleanup(func() {
		if err := tp.ns.Do(func() error { return l.Detach(tp.vm.Name) }); err != nil {
			t.Errorf("detach %s: %v", tp.vm.Name, err)
		}
	})
	wantMethod := loader.MethodTCX
	if clsact {
		wantMethod = loader.MethodClsact
	}
	if a.Method != wantMethod {
		t.Fatalf("attached through %s, want %s", a.Method, wantMethod)
	}
	if err := store.Bind(uint32(a.Ifindex), maps.BindRequest{ID: uint32(a.Ifindex), OutHook: a.OutHook, Stages: stages, Instances: inst}); err != nil {
		t.Fatalf("bind %s: %v", tp.vm.Name, err)
	}
	t.Cleanup(func() {
		if err := store.Unbind(uint32(a.Ifindex)); err != nil && !errors.Is(err, maps.ErrNotBound) {
			t.Errorf("unbind %s: %v", tp.vm.Name, err)
		}
	})
	return a
}

// TestCleanTraffic enforces the stock clean-traffic filter on a tap and a
// macvtap, attached through TCX and through clsact, with real frames:
// from the guest, MAC, IP and ARP spoofing are dropped while its own ARP,
// IPv4 and DHCP discovery (from 0.0.0.0) pass; to the guest, IPv4 and ARP
// pass and IPv6 is dropped. Each topology is first checked without the
// classifier, where every probe is delivered, so every drop afterwards is
// the filter's; the classifier's drop counters must account for them.
func TestCleanTraffic(t *testing.T) {
	l, store := classifier(t)
	guestIP := net.IPv4(10, 0, 0, 5)
	gwIP := net.IPv4(10, 0, 0, 1)
	other := net.IPv4(10, 0, 0, 66)
	for _, dev := range []struct {
		name string
		topo func(*testing.T) *topology
	}{{"tap", tapTopology}, {"macvtap", macvtapTopology}} {
		for _, clsact := range []bool{false, true} {
			method := "tcx"
			if clsact {
				method = "clsact"
			}
			t.Run(dev.name+"/"+method, func(t *testing.T) {
				tp := dev.topo(t)
				vm, gw := tp.mac, tp.peer.MAC
				spoofMAC := netenv.RandomMAC(0x52)
				bcast := layers.EthernetBroadcast
				zero := net.HardwareAddr{0, 0, 0, 0, 0, 0}

				fromVM := func() []probe {
					return []probe{
						{"ipv4 from the guest", udp4Frame(t, vm, gw, guestIP, gwIP, 4000, 9), 1},
						{"arp request from the guest", arpFrame(t, layers.ARPRequest, vm, bcast, vm, guestIP, zero, gwIP), 1},
						{"arp reply from the guest", arpFrame(t, layers.ARPReply, vm, gw, vm, guestIP, gw, gwIP), 1},
						{"dhcp discover from 0.0.0.0", udp4Frame(t, vm, bcast, net.IPv4zero, net.IPv4bcast, 68, 67), 1},
						{"mac spoofing", udp4Frame(t, spoofMAC, gw, guestIP, gwIP, 4000, 9), 0},
						{"ip spoofing", udp4Frame(t, vm, gw, other, gwIP, 4000, 9), 0},
						{"arp spoofing: sender ip", arpFrame(t, layers.ARPReply, vm, gw, vm, other, gw, gwIP), 0},
						{"arp spoofing: sender mac", arpFrame(t, layers.ARPReply, vm, gw, spoofMAC, guestIP, gw, gwIP), 0},
						{"arp spoofing: frame mac", arpFrame(t, layers.ARPRequest, spoofMAC, bcast, spoofMAC, guestIP, zero, gwIP), 0},
					}
				}
				toVM := func() []probe {
					return []probe{
						{"ipv4 to the guest", udp4Frame(t, gw, vm, gwIP, guestIP, 9, 4000), 1},
						{"arp request for the guest", arpFrame(t, layers.ARPRequest, gw, bcast, gw, gwIP, zero, guestIP), 1},
						{"arp reply to the guest", arpFrame(t, layers.ARPReply, gw, vm, gw, gwIP, vm, guestIP), 1},
						{"ipv6 to the guest", udp6Frame(t, gw, vm, net.ParseIP("fd00::1"), net.ParseIP("fd00::5")), 0},
					}
				}
				outMarker := func() []byte { return udp4Frame(t, vm, gw, guestIP, gwIP, 4001, 9) }
				inMarker := func() []byte { return udp4Frame(t, gw, vm, gwIP, guestIP, 9, 4001) }
				all := func(ps []probe) []probe {
					for i := range ps {
						ps[i].want = 1
					}
					return ps
				}

				// Without nwbpf the topology delivers every probe.
				expect(t, "unfiltered, from the guest", tp.vm, tp.peer, outMarker(), all(fromVM()))
				expect(t, "unfiltered, to the guest", tp.peer, tp.vm, inMarker(), all(toVM()))

				prog, inst := cleanTraffic(t, vm, guestIP)
				a := tp.attach(t, l, store, clsact, prog.Stages, inst)
				wantHook := maps.HookIngress
				if dev.name == "macvtap" {
					wantHook = maps.HookEgress
				}
				if a.OutHook != wantHook {
					t.Fatalf("guest's frames on hook %d, want %d", a.OutHook, wantHook)
				}
				outDrops := dropCount(t, l, maps.DropL2, maps.DirOut)
				inDrops := dropCount(t, l, maps.DropL2, maps.DirIn)
				out, in := fromVM(), toVM()
				expect(t, "from the guest", tp.vm, tp.peer, outMarker(), out)
				expect(t, "to the guest", tp.peer, tp.vm, inMarker(), in)
				if got, want := dropCount(t, l, maps.DropL2, maps.DirOut)-outDrops, dropped(out); got < want {
					t.Errorf("classifier counted %d L2 drops from the guest, want at least %d", got, want)
				}
				if got, want := dropCount(t, l, maps.DropL2, maps.DirIn)-inDrops, dropped(in); got < want {
					t.Errorf("classifier counted %d L2 drops to the guest, want at least %d", got, want)
				}
			})
		}
	}
}

func dropped(ps []probe) uint64 {
	var n uint64
	for _, p := range ps {
		if p.want == 0 {
			n++
		}
	}
	return n
}
