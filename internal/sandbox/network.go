// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// The addresses of a [Network], as in libvirt's default network: the
// bridge holds the first address of 192.168.122.0/24 and its guests NAT to
// the outside. The outside is 203.0.113.0/24 (TEST-NET-3), which has no
// route back to the guests' subnet: only the NAT makes replies come back.
var (
	GuestSubnet = mustCIDR("192.168.122.0/24")
	GatewayIP   = net.IPv4(192, 168, 122, 1).To4()
	UplinkIP    = net.IPv4(203, 0, 113, 1).To4()
	ServerIP    = net.IPv4(203, 0, 113, 10).To4()
)

// ServerPort is the UDP port of the upstream echo server.
const ServerPort = 7

// NftTable is the name of the nftables table (family ip) holding the NAT
// rules in the host namespace.
const NftTable = "nwbpf_demo"

// nftRuleset is libvirt's default network NAT (its nftables backend
// writes the same three rules): no NAT to multicast or broadcast, and
// MASQUERADE for everything else that leaves the subnet.
const nftRuleset = `table ip ` + NftTable + ` {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 192.168.122.0/24 ip daddr 224.0.0.0/24 counter return
		ip saddr 192.168.122.0/24 ip daddr 255.255.255.255 counter return
		ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter masquerade
	}
}
`

func mustCIDR(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// Guest is a VM on the bridge, played through its tap's file descriptor.
type Guest struct {
	// Name is the guest's (libvirt domain's) name.
	Name string
	// MAC and IP are the addresses the VM owns.
	MAC net.HardwareAddr
	IP  net.IP
	// Tap is the guest's interface on the host (libvirt's vnetN).
	Tap *Tap
}

// Network is a throw-away copy of libvirt's default network:
//
//	guests (taps) ── bridge 192.168.122.1/24 ── host netns ── veth ── upstream netns
//	                 (virbr0)                   ip_forward,   203.0.113.1  203.0.113.10
//	                                            nft MASQUERADE             UDP echo :7
//
// Everything lives in two private namespaces, Host and Upstream; the
// caller's namespace is not touched.
type Network struct {
	// Suffix is the unique part of every name.
	Suffix string
	// Host holds the bridge, the guests' taps and the NAT; Upstream the
	// echo server.
	Host, Upstream *NS
	// Bridge is the guests' bridge, with address GatewayIP.
	Bridge    string
	BridgeMAC net.HardwareAddr
	// Uplink is the host's veth to Upstream, with address UplinkIP.
	Uplink string
	Guests []*Guest
	Server *EchoServer

	undo []func() error
}

// NewNetwork builds a Network with the given guests (named guest1,
// guest2, …, with addresses 192.168.122.10, .11, …) and unique names
// ending in suffix. On error, everything built so far is removed.
func NewNetwork(suffix string, guests int) (*Network, error) {
	if guests < 0 || guests > 200 {
		return nil, fmt.Errorf("%d guests: want 0 to 200", guests)
	}
	n := &Network{
		Suffix: suffix,
		Bridge: Name("nwbr-", suffix),
		Uplink: Name("nwup-", suffix),
	}
	if err := n.build(guests); err != nil {
		return nil, errors.Join(err, n.Close())
	}
	return n, nil
}

func (n *Network) build(guests int) error {
	var err error
	if n.Host, err = NewNS("nwbpf-demo-host-" + n.Suffix); err != nil {
		return err
	}
	n.undo = append(n.undo, n.Host.Close)
	if n.Upstream, err = NewNS("nwbpf-demo-upstream-" + n.Suffix); err != nil {
		return err
	}
	n.undo = append(n.undo, n.Upstream.Close)

	// The bridge, like virbr0: a fixed address, the subnet's first IP.
	if n.BridgeMAC, err = RandomMAC(0x52, 0x54, 0x00); err != nil {
		return err
	}
	if _, err := n.Host.AddBridge(n.Bridge, n.BridgeMAC); err != nil {
		return err
	}
	if err := n.Host.AddAddr(n.Bridge, GatewayIP.String()+"/24"); err != nil {
		return err
	}

	// The uplink, and a server that only the NAT can answer: Upstream
	// has no route to the guests' subnet.
	down := Name("nwdn-", n.Suffix)
	if _, _, err := n.Host.AddVeth(n.Uplink, n.Upstream, down); err != nil {
		return err
	}
	if err := n.Host.AddAddr(n.Uplink, UplinkIP.String()+"/24"); err != nil {
		return err
	}
	if err := n.Upstream.AddAddr(down, ServerIP.String()+"/24"); err != nil {
		return err
	}
	if err := n.Host.Sysctl("net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	if _, err := n.Host.Nft(nftRuleset, "-f", "-"); err != nil {
		return fmt.Errorf("create nft table %s: %w", NftTable, err)
	}
	if n.Server, err = n.Upstream.ListenEcho(&net.UDPAddr{IP: ServerIP, Port: ServerPort}); err != nil {
		return err
	}
	n.undo = append(n.undo, n.Server.Close)

	for i := range guests {
		if err := n.addGuest(i); err != nil {
			return err
		}
	}
	return nil
}

// addGuest adds guest i+1 with a tap on the bridge.
func (n *Network) addGuest(i int) error {
	g := &Guest{Name: fmt.Sprintf("guest%d", i+1), IP: net.IPv4(192, 168, 122, byte(10+i)).To4()}
	var err error
	if g.MAC, err = RandomMAC(0x52, 0x54, 0x00); err != nil {
		return err
	}
	// libvirt gives the host side of a tap the guest's MAC with the first
	// byte 0xfe, so the bridge never picks it as its own.
	host := append(net.HardwareAddr{0xfe}, g.MAC[1:]...)
	if g.Tap, err = n.Host.AddTap(Name(fmt.Sprintf("vnet%d-", i), n.Suffix), host); err != nil {
		return err
	}
	n.undo = append(n.undo, g.Tap.Close)
	if err := n.Host.SetMaster(g.Tap.Name, n.Bridge); err != nil {
		return err
	}
	n.Guests = append(n.Guests, g)
	return nil
}

// NftCounters returns the packet counters of the NAT rules, in rule
// order (return to multicast, return to broadcast, masquerade).
func (n *Network) NftCounters() ([]uint64, error) {
	out, err := n.Host.Nft("", "list", "table", "ip", NftTable)
	if err != nil {
		return nil, err
	}
	var cs []uint64
	for _, line := range strings.Split(out, "\n") {
		_, rest, ok := strings.Cut(line, "counter packets ")
		if !ok {
			continue
		}
		var p uint64
		if _, err := fmt.Sscanf(rest, "%d", &p); err != nil {
			return nil, fmt.Errorf("nft counter %q: %w", strings.TrimSpace(line), err)
		}
		cs = append(cs, p)
	}
	return cs, nil
}

// Close removes everything the Network built, in reverse order, and
// returns every error met on the way.
func (n *Network) Close() error {
	var errs []error
	for i := len(n.undo) - 1; i >= 0; i-- {
		errs = append(errs, n.undo[i]())
	}
	n.undo = nil
	return errors.Join(errs...)
}
