// SPDX-License-Identifier: Apache-2.0

package netenv

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

// RandomMAC returns a random locally administered unicast MAC address whose
// first octet is first with the two low bits forced to "local, unicast".
func RandomMAC(first byte) net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac[1:]); err != nil {
		panic(fmt.Sprintf("netenv: read random bytes: %v", err))
	}
	mac[0] = first&^0x01 | 0x02
	return mac
}

// linkAttrs returns attributes for a new link named name. They start from
// netlink.NewLinkAttrs so that unset fields keep the kernel's defaults: a
// zero TxQLen would, among other things, give a macvtap queue a ring of
// size 0 that drops every frame for the VM.
func linkAttrs(name string) netlink.LinkAttrs {
	a := netlink.NewLinkAttrs()
	a.Name = name
	return a
}

// AddBridge creates a bridge (STP off, multicast snooping off, IPv6 off, up)
// in n and deletes it in t.Cleanup. Without snooping the bridge floods all
// multicast and sends no IGMP reports of its own (with it, it joins
// 224.0.0.106 and reports that to every port).
func (n *NS) AddBridge(t testing.TB) *netlink.Bridge {
	t.Helper()
	snooping := false
	br := &netlink.Bridge{LinkAttrs: linkAttrs(Name("nwbr")), MulticastSnooping: &snooping}
	if err := n.Handle.LinkAdd(br); err != nil {
		t.Fatalf("add bridge %s in netns %s: %v", br.Name, n, err)
	}
	n.cleanupLink(t, br.Name)
	n.up(t, br.Name)
	l, err := n.Handle.LinkByName(br.Name)
	if err != nil {
		t.Fatalf("bridge %s in netns %s: %v", br.Name, n, err)
	}
	return l.(*netlink.Bridge)
}

// AddVeth creates a veth pair with one end in n and the other in peer (which
// may be n), brings both up with IPv6 off, and deletes the pair in
// t.Cleanup. It returns the end in n and the end in peer.
func (n *NS) AddVeth(t testing.TB, peer *NS) (local, remote netlink.Link) {
	t.Helper()
	name, peerName := Name("nwv"), Name("nwp")
	veth := &netlink.Veth{
		LinkAttrs:     linkAttrs(name),
		PeerName:      peerName,
		PeerNamespace: netlink.NsFd(peer.FD()),
	}
	if err := n.Handle.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s (netns %s) / %s (netns %s): %v", name, n, peerName, peer, err)
	}
	n.cleanupLink(t, name)
	peer.cleanupLink(t, peerName)
	n.up(t, name)
	peer.up(t, peerName)
	var err error
	if local, err = n.Handle.LinkByName(name); err != nil {
		t.Fatalf("veth %s in netns %s: %v", name, n, err)
	}
	if remote, err = peer.Handle.LinkByName(peerName); err != nil {
		t.Fatalf("veth %s in netns %s: %v", peerName, peer, err)
	}
	return local, remote
}

// Attach makes link a port of bridge (both in n) and sets it up.
func (n *NS) Attach(t testing.TB, link, bridge netlink.Link) {
	t.Helper()
	if err := n.Handle.LinkSetMaster(link, bridge); err != nil {
		t.Fatalf("attach %s to bridge %s in netns %s: %v", link.Attrs().Name, bridge.Attrs().Name, n, err)
	}
	if err := n.Handle.LinkSetUp(link); err != nil {
		t.Fatalf("set %s up in netns %s: %v", link.Attrs().Name, n, err)
	}
}

// Link returns the current state of the named link in n.
func (n *NS) Link(t testing.TB, name string) netlink.Link {
	t.Helper()
	l, err := n.Handle.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s in netns %s: %v", name, n, err)
	}
	return l
}

// up disables IPv6 on the named link and sets it up.
func (n *NS) up(t testing.TB, name string) {
	t.Helper()
	if err := n.disableIPv6(name); err != nil {
		t.Fatal(err)
	}
	l, err := n.Handle.LinkByName(name)
	if err == nil {
		err = n.Handle.LinkSetUp(l)
	}
	if err != nil {
		t.Fatalf("set %s up in netns %s: %v", name, n, err)
	}
}

// cleanupLink deletes the named link in t.Cleanup unless it is already gone
// (with its namespace, or as the peer of a deleted veth).
func (n *NS) cleanupLink(t testing.TB, name string) {
	t.Cleanup(func() {
		l, err := n.Handle.LinkByName(name)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return
		}
		if err == nil {
			err = n.Handle.LinkDel(l)
		}
		if err != nil && !errors.As(err, &nf) {
			t.Errorf("delete %s in netns %s: %v", name, n, err)
		}
	})
}
