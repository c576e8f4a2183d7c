// SPDX-License-Identifier: Apache-2.0

package libvirtref

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nwbpf/nwbpf/maps"
	"github.com/nwbpf/nwbpf/tests/netenv"
)

// PortPrefix starts the name of every tap an Oracle creates. libvirt names
// its chains after the port (libvirt-I-<port>, FI-<port>, ...); the prefix
// also lets New remove bindings that a crashed run left behind.
const PortPrefix = "nwvnt"

// DefaultTimeout is how long Send waits before it decides that a frame was
// not delivered. Delivery through the bridge takes well under a millisecond.
const DefaultTimeout = 100 * time.Millisecond

// lockPath serialises Oracles across test binaries.
const lockPath = "/run/lock/nwbpf-libvirtref.lock"

// groupFwdMask makes the bridge forward link-local 01:80:c2:00:00:0X frames
// (LLDP, 802.1X, ...) like any other multicast; X = 0 (STP) is forwarded
// because STP is off, X = 1 and 2 the kernel never forwards.
const groupFwdMask = "0xfff8"

// Oracle is a tap (played by the test) and an AF_PACKET sink on one bridge
// in the host's network namespace, ready for libvirt filter bindings.
type Oracle struct {
	// Tap is the guest's port: Tap.Name is what bindings name as portdev.
	Tap *netenv.Tap
	// Sink is the far end of the bridge, in a private namespace.
	Sink *netenv.Sink
	// GuestMAC is the VM's MAC (52:54:00:…), used by Bind. Out frames
	// should carry it as source, in frames as destination.
	GuestMAC net.HardwareAddr
	// Timeout is how long Send waits for a frame; DefaultTimeout unless
	// changed.
	Timeout time.Duration

	t testing.TB
}

var procMu sync.Mutex // one Oracle at a time in this process

// New builds an Oracle and tears it down in t.Cleanup. It calls Ensure,
// enables the bridge netfilter hooks libvirt needs
// (net.bridge.bridge-nf-call-iptables and -ip6tables = 1), removes stale
// bindings of earlier runs, and waits for other test binaries' Oracles.
//
// Delivery is judged by the bridge: frames with a multicast or zero source
// MAC, pause and LACP frames (01:80:c2:00:00:01/02), frames over the MTU and
// IPv4/IPv6 frames with a malformed IP header (checked by bridge netfilter)
// never cross it, whatever the filter says. Out frames must be addressed to
// Sink.MAC or a group or unknown MAC: frames for the bridge's own addresses
// go to the host, not to the sink.
func New(t testing.TB) *Oracle {
	t.Helper()
	Ensure(t)
	lock(t)
	if err := bridgeNetfilter(); err != nil {
		t.Fatal(err)
	}
	if err := forwardPolicy(); err != nil {
		t.Fatal(err)
	}
	sweep(t)

	host := netenv.Host(t)
	sinkNS := netenv.NewNS(t)
	br := host.AddBridge(t)
	if err := os.WriteFile(filepath.Join("/sys/class/net", br.Name, "bridge/group_fwd_mask"), []byte(groupFwdMask), 0o644); err != nil {
		t.Fatalf("bridge %s: set group_fwd_mask: %v", br.Name, err)
	}
	tap := host.AddTapNamed(t, netenv.Name(PortPrefix))
	tapLink := host.Link(t, tap.Name)
	port, peer := host.AddVeth(t, sinkNS)
	for _, l := range []netlink.Link{tapLink, port} {
		host.Attach(t, l, br)
		// Without learning every unicast frame is flooded to the one
		// other port, so no earlier frame can change where a frame goes.
		if err := host.Handle.LinkSetLearning(l, false); err != nil {
			t.Fatalf("bridge port %s: learning off: %v", l.Attrs().Name, err)
		}
	}
	o := &Oracle{
		Tap:      tap,
		Sink:     netenv.NewSink(t, sinkNS, peer),
		GuestMAC: append(net.HardwareAddr{0x52, 0x54, 0x00}, netenv.RandomMAC(0)[3:]...),
		Timeout:  DefaultTimeout,
		t:        t,
	}
	return o
}

// Bind instantiates filter on the Oracle's tap for GuestMAC (see [Bind]) and
// flushes conntrack.
func (o *Oracle) Bind(filter string, params ...Param) {
	o.t.Helper()
	Bind(o.t, o.Tap.Name, o.GuestMAC, filter, params...)
	FlushConntrack(o.t)
}

// Unbind removes the binding of the Oracle's tap.
func (o *Oracle) Unbind() {
	o.t.Helper()
	Unbind(o.t, o.Tap.Name)
}

// Send sends frame in direction dir and reports whether it was delivered:
// for maps.DirOut it is written on the tap fd (sent by the VM) and must
// arrive at the sink, for maps.DirIn it is sent by the sink and must arrive
// on the tap fd (delivered to the VM). The frame is matched exactly, except
// for Ethernet padding that bridge netfilter trims; frames queued before
// the send are discarded first. Give every frame a unique payload so a late
// copy of an earlier frame cannot be mistaken for it.
func (o *Oracle) Send(dir maps.Dir, frame []byte) bool {
	o.t.Helper()
	var from, to netenv.Endpoint
	switch dir {
	case maps.DirOut:
		from, to = o.Tap, o.Sink
	case maps.DirIn:
		from, to = o.Sink, o.Tap
	default:
		o.t.Fatalf("oracle send: bad direction %v", dir)
	}
	if err := netenv.Drain(to); err != nil {
		o.t.Fatalf("oracle send %v: %v", dir, err)
	}
	if err := from.Send(frame); err != nil {
		o.t.Fatalf("oracle send %v: %v", dir, err)
	}
	ok, err := netenv.Await(to, frame, o.Timeout)
	if err != nil {
		o.t.Fatalf("oracle send %v: %v", dir, err)
	}
	return ok
}

// lock takes the process and the host-wide Oracle locks until t ends.
func lock(t testing.TB) {
	t.Helper()
	procMu.Lock()
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		procMu.Unlock()
		t.Fatal(err)
	}
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	}
	if err != nil {
		procMu.Unlock()
		t.Fatalf("lock %s: %v", lockPath, err)
	}
	t.Cleanup(func() {
		f.Close() // releases the flock
		procMu.Unlock()
	})
}

// errNoBridgeNF says br_netfilter is missing.
var errNoBridgeNF = errors.New("br_netfilter is not loaded (modprobe br_netfilter)")

// bridgeNetfilter loads br_netfilter if needed and sets the sysctls that
// libvirt's iptables rules (physdev matches) rely on.
func bridgeNetfilter() error {
	const dir = "/proc/sys/net/bridge"
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
			return fmt.Errorf("%w: %v: %s", errNoBridgeNF, err, strings.TrimSpace(string(out)))
		}
	}
	for _, key := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"} {
		if err := os.WriteFile(filepath.Join(dir, key), []byte("1"), 0o644); err != nil {
			return fmt.Errorf("set net.bridge.%s=1: %w", key, err)
		}
	}
	return nil
}

// forwardPolicy fails when the host drops forwarded traffic by default (as
// Docker sets it up): bridged IP frames pass iptables' FORWARD chain, so
// every frame the oracle bridges would be dropped whatever the filter says.
func forwardPolicy() error {
	for _, cmd := range []string{"iptables", "ip6tables"} {
		out, err := exec.Command(cmd, "-w", "-S", "FORWARD").Output()
		if err != nil {
			return fmt.Errorf("%s -S FORWARD: %w", cmd, err)
		}
		if strings.Contains(string(out), "-P FORWARD DROP") {
			return fmt.Errorf("%s FORWARD policy is DROP on this host (Docker?): bridged frames never reach the sink; "+
				"the libvirt oracle needs `%s -P FORWARD ACCEPT`", cmd, cmd)
		}
	}
	return nil
}

// sweep deletes the bindings of Oracle ports that no longer exist: leftovers
// of a killed test binary.
func sweep(t testing.TB) {
	t.Helper()
	for _, port := range Bindings(t) {
		if !strings.HasPrefix(port, PortPrefix) {
			continue
		}
		if _, err := netlink.LinkByName(port); err == nil {
			continue
		}
		if _, err := virsh("nwfilter-binding-delete", port); err != nil {
			t.Logf("remove stale binding of %s: %v", port, err)
		}
	}
}
