// SPDX-License-Identifier: Apache-2.0

package netenv

import (
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/nwbpf/nwbpf/internal/sandbox"
)

// Sink is an AF_PACKET socket bound to one link: it sends raw Ethernet
// frames out of the link and receives the frames that arrive on it (frames
// the link itself transmits are ignored; a VLAN tag the kernel moved out of
// a frame is put back).
type Sink = sandbox.Sink

// NewSink opens an AF_PACKET socket on link, which lives in ns, and closes
// it in t.Cleanup. The socket belongs to ns, so it can be used from any
// goroutine.
func NewSink(t testing.TB, ns *NS, link netlink.Link) *Sink {
	t.Helper()
	s, err := ns.NewSink(link)
	if err != nil {
		t.Fatal(err)
	}
	closeInCleanup(t, s)
	return s
}
