// SPDX-License-Identifier: Apache-2.0

package netenv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// netnsDir is where named namespaces are bind-mounted (as by `ip netns`).
const netnsDir = "/var/run/netns"

// maxIfName is the longest Linux interface name (IFNAMSIZ - 1).
const maxIfName = 15

// Name returns prefix followed by 8 random hex digits. Prefixes longer than
// 7 characters are cut so the result is a valid interface name.
func Name(prefix string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("netenv: read random bytes: %v", err))
	}
	if n := maxIfName - 2*len(b); len(prefix) > n {
		prefix = prefix[:n]
	}
	return prefix + hex.EncodeToString(b[:])
}

// NS is a network namespace: a private one from [NewNS], or the test
// process's own from [Host].
type NS struct {
	// Name is the namespace's name under /var/run/netns (usable with
	// `ip netns`); empty for the host namespace.
	Name string
	// Handle is a netlink handle bound to the namespace.
	Handle *netlink.Handle

	ns netns.NsHandle
}

// NewNS creates a uniquely named network namespace with its loopback up,
// and deletes it in t.Cleanup.
func NewNS(t testing.TB) *NS {
	t.Helper()
	name := Name("nwt")
	ns, err := createNamed(name)
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	n := &NS{Name: name, ns: ns}
	t.Cleanup(func() {
		if n.Handle != nil {
			n.Handle.Close()
		}
		if err := n.ns.Close(); err != nil {
			t.Errorf("close netns %s: %v", name, err)
		}
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	if n.Handle, err = netlink.NewHandleAt(ns); err != nil {
		t.Fatalf("netlink handle in netns %s: %v", name, err)
	}
	lo, err := n.Handle.LinkByName("lo")
	if err == nil {
		err = n.Handle.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("netns %s: set lo up: %v", name, err)
	}
	return n
}

// Host returns the test process's own network namespace (the one its main
// thread is in), with a netlink handle closed in t.Cleanup. Devices created
// through it are visible to host daemons such as libvirtd.
func Host(t testing.TB) *NS {
	t.Helper()
	ns, err := netns.GetFromPath("/proc/self/ns/net")
	if err != nil {
		t.Fatalf("open host netns: %v", err)
	}
	n := &NS{ns: ns}
	t.Cleanup(func() {
		if n.Handle != nil {
			n.Handle.Close()
		}
		n.ns.Close()
	})
	if n.Handle, err = netlink.NewHandleAt(ns); err != nil {
		t.Fatalf("netlink handle in host netns: %v", err)
	}
	return n
}

// String returns the namespace's name, or "host".
func (n *NS) String() string {
	if n.Name == "" {
		return "host"
	}
	return n.Name
}

// FD returns a file descriptor referring to the namespace, valid until
// cleanup (for netlink.NsFd and setns).
func (n *NS) FD() int { return int(n.ns) }

// Do runs fn on a locked OS thread that is inside the namespace, and returns
// fn's error. Sockets and devices fn creates belong to the namespace. The
// calling goroutine never changes namespace; a thread that cannot be moved
// back is left locked, so the Go runtime discards it.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(n.ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", n, err)
			return
		}
		ferr := call(fn)
		if err := netns.Set(orig); err != nil {
			// Stay locked: the thread exits with the goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", n, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// call runs fn and turns a panic into an error, so that Do always gets the
// chance to move its thread back.
func call(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in netns work: %v", r)
		}
	}()
	return fn()
}

// createNamed creates the namespace /var/run/netns/name on a locked thread
// and moves that thread back to where it was.
func createNamed(name string) (netns.NsHandle, error) {
	if _, err := os.Stat(filepath.Join(netnsDir, name)); err == nil {
		return netns.None(), fmt.Errorf("%s already exists", name)
	}
	type result struct {
		ns  netns.NsHandle
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{netns.None(), fmt.Errorf("get current netns: %w", err)}
			return
		}
		defer orig.Close()
		ns, nerr := netns.NewNamed(name)
		if err := netns.Set(orig); err != nil {
			// Stay locked: the thread exits with the goroutine.
			if nerr == nil {
				ns.Close()
				_ = netns.DeleteNamed(name)
			}
			res <- result{netns.None(), fmt.Errorf("return from new netns: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		res <- result{ns, nerr}
	}()
	r := <-res
	return r.ns, r.err
}

// sysctl writes value to /proc/sys/<key> inside the namespace.
func (n *NS) sysctl(key, value string) error {
	return n.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
}

// disableIPv6 turns IPv6 off on the named device so it sends no IPv6
// control traffic of its own.
func (n *NS) disableIPv6(dev string) error {
	if err := n.sysctl("net/ipv6/conf/"+dev+"/disable_ipv6", "1"); err != nil {
		return fmt.Errorf("disable IPv6 on %s in netns %s: %w", dev, n, err)
	}
	return nil
}
