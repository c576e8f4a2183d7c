// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// linkAttrs returns attributes for a new link named name. They start from
// netlink.NewLinkAttrs so that unset fields keep the kernel's defaults (a
// zero TxQLen, for one, gives a macvtap queue a ring that drops every
// frame).
func linkAttrs(name string) netlink.LinkAttrs {
	a := netlink.NewLinkAttrs()
	a.Name = name
	return a
}

// AddBridge creates the bridge name with address mac (STP off, multicast
// snooping off, IPv6 off, up) in n. A bridge with an address of its own
// keeps it when ports come and go, as libvirt's virbr0 does; with a nil
// mac it takes its ports' lowest. Without snooping the bridge floods all
// multicast and sends no IGMP reports of its own (with it, it joins
// 224.0.0.106 and reports that to every port).
func (n *NS) AddBridge(name string, mac net.HardwareAddr) (*netlink.Bridge, error) {
	snooping := false
	a := linkAttrs(name)
	a.HardwareAddr = mac
	br := &netlink.Bridge{LinkAttrs: a, MulticastSnooping: &snooping}
	if err := n.Handle.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("create bridge %s in netns %s: %w", name, n, err)
	}
	if err := n.Up(name); err != nil {
		return nil, errors.Join(err, n.DelLink(name))
	}
	l, err := n.Handle.LinkByName(name)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("bridge %s in netns %s: %w", name, n, err), n.DelLink(name))
	}
	return l.(*netlink.Bridge), nil
}

// AddVeth creates a veth pair, name in n and peerName in peer (which may
// be n), brings both ends up with IPv6 off, and returns the end in n and
// the end in peer.
func (n *NS) AddVeth(name string, peer *NS, peerName string) (local, remote netlink.Link, err error) {
	veth := &netlink.Veth{
		LinkAttrs:     linkAttrs(name),
		PeerName:      peerName,
		PeerNamespace: netlink.NsFd(peer.FD()),
	}
	if err := n.Handle.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("create veth %s (netns %s) / %s (netns %s): %w", name, n, peerName, peer, err)
	}
	if err := n.Up(name); err != nil {
		return nil, nil, errors.Join(err, n.DelLink(name))
	}
	if err := peer.Up(peerName); err != nil {
		return nil, nil, errors.Join(err, n.DelLink(name))
	}
	if local, err = n.Handle.LinkByName(name); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("veth %s in netns %s: %w", name, n, err), n.DelLink(name))
	}
	if remote, err = peer.Handle.LinkByName(peerName); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("veth %s in netns %s: %w", peerName, peer, err), n.DelLink(name))
	}
	return local, remote, nil
}

// Up turns IPv6 off on the named link and sets it up.
func (n *NS) Up(name string) error {
	if err := n.DisableIPv6(name); err != nil {
		return err
	}
	l, err := n.Handle.LinkByName(name)
	if err == nil {
		err = n.Handle.LinkSetUp(l)
	}
	if err != nil {
		return fmt.Errorf("set %s up in netns %s: %w", name, n, err)
	}
	return nil
}

// SetMaster makes the link name a port of bridge.
func (n *NS) SetMaster(name, bridge string) error {
	l, err := n.Handle.LinkByName(name)
	if err != nil {
		return fmt.Errorf("attach %s to bridge %s in netns %s: %w", name, bridge, n, err)
	}
	br, err := n.Handle.LinkByName(bridge)
	if err == nil {
		err = n.Handle.LinkSetMaster(l, br)
	}
	if err != nil {
		return fmt.Errorf("attach %s to bridge %s in netns %s: %w", name, bridge, n, err)
	}
	return nil
}

// AddAddr adds the address cidr ("192.168.122.1/24") to the link name.
func (n *NS) AddAddr(name, cidr string) error {
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return fmt.Errorf("address %s for %s: %w", cidr, name, err)
	}
	l, err := n.Handle.LinkByName(name)
	if err == nil {
		err = n.Handle.AddrAdd(l, addr)
	}
	if err != nil {
		return fmt.Errorf("add address %s to %s in netns %s: %w", cidr, name, n, err)
	}
	return nil
}

// HardwareAddr returns the named link's MAC address.
func (n *NS) HardwareAddr(name string) (net.HardwareAddr, error) {
	l, err := n.Handle.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("link %s in netns %s: %w", name, n, err)
	}
	return l.Attrs().HardwareAddr, nil
}

// DelLink deletes the named link; a link already gone is no error.
func (n *NS) DelLink(name string) error {
	l, err := n.Handle.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err == nil {
		err = n.Handle.LinkDel(l)
	}
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("delete %s in netns %s: %w", name, n, err)
	}
	return nil
}

// RandomMAC returns a MAC address with the given first bytes and random
// others.
func RandomMAC(prefix ...byte) (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	copy(mac, prefix)
	if _, err := rand.Read(mac[len(prefix):]); err != nil {
		return nil, fmt.Errorf("read random bytes: %w", err)
	}
	return mac, nil
}
