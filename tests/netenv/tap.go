// SPDX-License-Identifier: Apache-2.0

package netenv

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/nwbpf/nwbpf/internal/sandbox"
)

// VnetHdrLen is the virtio-net header length set on every macvtap queue.
const VnetHdrLen = sandbox.VnetHdrLen

// Tap is a tap or macvtap device whose character device the test holds, so
// the test plays the VM: Send is a frame the VM sends, Recv a frame
// delivered to the VM.
type Tap = sandbox.Tap

// AddTap creates a tap device (IFF_TAP|IFF_NO_PI, IPv6 off, up) in n with a
// random fe:… host-side MAC, like libvirt's vnetN devices, and keeps its file
// descriptor. The device is removed in t.Cleanup.
func (n *NS) AddTap(t testing.TB) *Tap {
	t.Helper()
	return n.AddTapNamed(t, Name("nwtap"))
}

// AddTapNamed is [NS.AddTap] with a caller-chosen (unique) device name.
func (n *NS) AddTapNamed(t testing.TB, name string) *Tap {
	t.Helper()
	tp, err := n.NS.AddTap(name, RandomMAC(0xfe))
	if err != nil {
		t.Fatal(err)
	}
	closeInCleanup(t, tp)
	return tp
}

// AddMacvtap creates a macvtap device on lower (in n) in the given mode
// (netlink.MACVLAN_MODE_BRIDGE, _VEPA, ...), sets it up with IPv6 off, opens
// its character device with a [VnetHdrLen]-byte virtio-net header, and
// removes it in t.Cleanup.
func (n *NS) AddMacvtap(t testing.TB, lower netlink.Link, mode netlink.MacvlanMode) *Tap {
	t.Helper()
	tp, err := n.NS.AddMacvtap(Name("nwmvt"), lower, mode)
	if err != nil {
		t.Fatal(err)
	}
	closeInCleanup(t, tp)
	return tp
}

// closeInCleanup closes c in t.Cleanup, reporting an error.
func closeInCleanup(t testing.TB, c interface{ Close() error }) {
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
}
