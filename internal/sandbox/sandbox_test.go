// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/nwbpf/nwbpf/internal/privtest"
)

func TestName(t *testing.T) {
	for _, c := range []struct{ prefix, suffix, want string }{
		{"nwbr-", "0123abcd", "nwbr-0123abcd"},
		{"averylongprefix-", "0123abcd", "averylo0123abcd"},
		{"x", "0123456789abcdef", "0123456789abcdef"},
	} {
		if got := Name(c.prefix, c.suffix); got != c.want {
			t.Errorf("Name(%q, %q) = %q, want %q", c.prefix, c.suffix, got, c.want)
		}
	}
	a, err := Suffix()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Suffix()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 8 || a == b {
		t.Errorf("Suffix() = %q then %q, want two different 8-digit suffixes", a, b)
	}
}

// namespaces lists the named namespaces whose name contains suffix.
func namespaces(t *testing.T, suffix string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(NetnsDir, "*"+suffix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestNetwork builds a network, checks that the NAT carries a guest's
// datagram to the upstream server and its echo back, and that Close
// removes both namespaces.
func TestNetwork(t *testing.T) {
	privtest.Require(t)
	if _, err := NftBinary(); err != nil {
		t.Fatal(err)
	}
	suffix, err := Suffix()
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNetwork(suffix, 1)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			n.Close()
		}
	})
	if got := namespaces(t, suffix); len(got) != 2 {
		t.Errorf("namespaces %q, want host and upstream", got)
	}
	g := n.Guests[0]
	if !strings.HasSuffix(g.Tap.Name, suffix) || !strings.HasSuffix(n.Bridge, suffix) {
		t.Errorf("names %s, %s lack the suffix %s", g.Tap.Name, n.Bridge, suffix)
	}

	// The guest, an address of the bridge's subnet, sends to the server
	// through the bridge's MAC; the server sees the NAT's address, and the
	// echo comes back to the guest's address.
	payload := []byte("sandbox test " + suffix)
	frame := udp4(t, g.MAC, n.BridgeMAC, g.IP, ServerIP, 40000, ServerPort, payload)
	// The host must know the guest's MAC to send the echo: a real guest
	// ARPs for its gateway first, which teaches the host.
	arp := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, g.MAC[0], g.MAC[1], g.MAC[2], g.MAC[3], g.MAC[4], g.MAC[5], 0x08, 0x06,
		0, 1, 8, 0, 6, 4, 0, 1, g.MAC[0], g.MAC[1], g.MAC[2], g.MAC[3], g.MAC[4], g.MAC[5], g.IP[0], g.IP[1], g.IP[2], g.IP[3],
		0, 0, 0, 0, 0, 0, GatewayIP[0], GatewayIP[1], GatewayIP[2], GatewayIP[3],
	}
	if err := g.Tap.Send(arp); err != nil {
		t.Fatal(err)
	}
	if err := g.Tap.Send(frame); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-n.Server.Received:
		if !d.From.IP.Equal(UplinkIP) || string(d.Payload) != string(payload) {
			t.Errorf("server got %q from %s, want %q from %s", d.Payload, d.From, payload, UplinkIP)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the server got nothing")
	}
	echoed := false
	for deadline := time.Now().Add(2 * time.Second); !echoed && time.Now().Before(deadline); {
		f, err := g.Tap.Recv(time.Until(deadline))
		if err != nil {
			break
		}
		echoed = len(f) >= 14+20+8 && f[12] == 0x08 && f[13] == 0x00 &&
			net.IP(f[14+12:14+16]).Equal(ServerIP) && net.IP(f[14+16:14+20]).Equal(g.IP) &&
			strings.HasSuffix(string(f), string(payload))
	}
	if !echoed {
		t.Error("the echo did not come back to the guest")
	}
	cs, err := n.NftCounters()
	if err != nil || len(cs) != 3 || cs[2] == 0 {
		t.Errorf("nft counters %v, %v: want the masquerade rule's to count", cs, err)
	}

	closed = true
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if got := namespaces(t, suffix); len(got) != 0 {
		t.Errorf("left behind: %q", got)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestNetworkUndo: when a step fails, what was built before is removed.
func TestNetworkUndo(t *testing.T) {
	privtest.Require(t)
	suffix, err := Suffix()
	if err != nil {
		t.Fatal(err)
	}
	// The upstream namespace's name is taken, so its creation fails
	// after the host namespace was made.
	taken, err := NewNS("nwbpf-demo-upstream-" + suffix)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	n, err := NewNetwork(suffix, 2)
	if err == nil {
		n.Close()
		t.Fatal("NewNetwork succeeded with its upstream namespace's name taken")
	}
	if got := namespaces(t, suffix); len(got) != 1 || !strings.Contains(got[0], "upstream") {
		t.Errorf("namespaces after the failure: %q, want only the one the test made", got)
	}
	if _, err := NewNetwork(suffix, -1); err == nil {
		t.Error("NewNetwork with -1 guests succeeded")
	}
	if err := taken.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(NetnsDir, taken.Name)); !os.IsNotExist(err) {
		t.Errorf("NS.Close left %s: %v", taken.Name, err)
	}
}

// TestDevicesClose: Close removes a tap and a macvtap (whose device, unlike
// a tap's, outlives its file descriptor), closes a sink, and closing the
// process's own namespace (Host) leaves it in place.
func TestDevicesClose(t *testing.T) {
	privtest.Require(t)
	suffix, err := Suffix()
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNS(Name("nwsbt", suffix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	lower, peer, err := n.AddVeth(Name("nwsbv", suffix), n, Name("nwsbp", suffix))
	if err != nil {
		t.Fatal(err)
	}
	mvt, err := n.AddMacvtap(Name("nwsbm", suffix), lower, netlink.MACVLAN_MODE_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	tap, err := n.AddTap(Name("nwsbt", suffix), net.HardwareAddr{0xfe, 0, 0, 0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := n.NewSink(peer)
	if err != nil {
		t.Fatal(err)
	}
	if !mvt.Macvtap || tap.Macvtap || mvt.Index == 0 || tap.Index == 0 {
		t.Errorf("macvtap %+v, tap %+v", mvt, tap)
	}
	for _, c := range []interface{ Close() error }{mvt, tap, sink} {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
	for _, name := range []string{mvt.Name, tap.Name} {
		if _, err := n.Handle.LinkByName(name); err == nil {
			t.Errorf("%s survived Close", name)
		}
	}
	if err := sink.Send(make([]byte, 60)); err == nil {
		t.Error("a closed sink sends")
	}
	h, err := Host()
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != "host" {
		t.Errorf("Host().String() = %q", h)
	}
	// Deleting the host namespace's (empty) name would fail.
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}
