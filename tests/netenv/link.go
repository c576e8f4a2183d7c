// SPDX-License-Identifier: Apache-2.0

package netenv

import (
	"fmt"
	"net"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/nwbpf/nwbpf/internal/sandbox"
)

// RandomMAC returns a random locally administered unicast MAC address whose
// first octet is first with the two low bits forced to "local, unicast".
func RandomMAC(first byte) net.HardwareAddr {
	mac, err := sandbox.RandomMAC(first&^0x01 | 0x02)
	if err != nil {
		panic(fmt.Sprintf("netenv: %v", err))
	}
	return mac
}

// AddBridge creates a uniquely named bridge (STP off, multicast snooping
// off, IPv6 off, up) in n and deletes it in t.Cleanup.
func (n *NS) AddBridge(t testing.TB) *netlink.Bridge {
	t.Helper()
	br, err := n.NS.AddBridge(Name("nwbr"), nil)
	if err != nil {
		t.Fatal(err)
	}
	n.cleanupLink(t, br.Name)
	return br
}

// AddVeth creates a veth pair with one end in n and the other in peer (which
// may be n), brings both up with IPv6 off, and deletes the pair in
// t.Cleanup. It returns the end in n and the end in peer.
func (n *NS) AddVeth(t testing.TB, peer *NS) (local, remote netlink.Link) {
	t.Helper()
	name, peerName := Name("nwv"), Name("nwp")
	local, remote, err := n.NS.AddVeth(name, peer.NS, peerName)
	if err != nil {
		t.Fatal(err)
	}
	n.cleanupLink(t, name)
	peer.cleanupLink(t, peerName)
	return local, remote
}

// Attach makes link a port of bridge (both in n) and sets it up.
func (n *NS) Attach(t testing.TB, link, bridge netlink.Link) {
	t.Helper()
	if err := n.SetMaster(link.Attrs().Name, bridge.Attrs().Name); err != nil {
		t.Fatal(err)
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

// cleanupLink deletes the named link in t.Cleanup unless it is already gone
// (with its namespace, or as the peer of a deleted veth).
func (n *NS) cleanupLink(t testing.TB, name string) {
	t.Cleanup(func() {
		if err := n.DelLink(name); err != nil {
			t.Error(err)
		}
	})
}
