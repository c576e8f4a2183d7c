// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// NetnsDir is where named namespaces are bind-mounted (as by `ip netns`).
const NetnsDir = "/var/run/netns"

// MaxIfName is the longest Linux interface name (IFNAMSIZ - 1).
const MaxIfName = 15

// Suffix returns 8 random hex digits, the unique part of a sandbox's names.
func Suffix() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Name returns prefix followed by suffix, with prefix cut so that the
// result fits an interface name (MaxIfName characters) whenever the suffix
// alone does.
func Name(prefix, suffix string) string {
	if n := MaxIfName - len(suffix); len(prefix) > n {
		prefix = prefix[:max(n, 0)]
	}
	return prefix + suffix
}

// NS is a network namespace: a private, named one from [NewNS], or the
// calling process's own from [Host].
type NS struct {
	// Name is the namespace's name under NetnsDir (usable with `ip netns`);
	// empty for the process's own namespace.
	Name string
	// Handle is a netlink handle bound to the namespace.
	Handle *netlink.Handle

	ns netns.NsHandle
}

// NewNS creates the network namespace name with its loopback up and IPv6
// off. On error nothing is left behind.
func NewNS(name string) (*NS, error) {
	ns, err := createNamed(name)
	if err != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	n := &NS{Name: name, ns: ns}
	if err := n.init(); err != nil {
		return nil, errors.Join(err, n.Close())
	}
	return n, nil
}

// Host returns the calling process's own network namespace (the one its
// main thread is in), with a netlink handle. Devices created through it
// are visible to the host's daemons, libvirtd included. Close releases
// the handles and leaves the namespace alone.
func Host() (*NS, error) {
	ns, err := netns.GetFromPath("/proc/self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("open host netns: %w", err)
	}
	n := &NS{ns: ns}
	if n.Handle, err = netlink.NewHandleAt(ns); err != nil {
		return nil, errors.Join(fmt.Errorf("netlink handle in host netns: %w", err), n.Close())
	}
	return n, nil
}

func (n *NS) init() error {
	var err error
	if n.Handle, err = netlink.NewHandleAt(n.ns); err != nil {
		return fmt.Errorf("netlink handle in netns %s: %w", n.Name, err)
	}
	lo, err := n.Handle.LinkByName("lo")
	if err == nil {
		err = n.Handle.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("netns %s: set lo up: %w", n.Name, err)
	}
	// New devices inherit "default"; a kernel without IPv6 has neither.
	for _, key := range []string{"net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6"} {
		if err := n.Sysctl(key, "1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Close releases the namespace's handles and deletes its name (never the
// process's own namespace); the kernel removes the namespace, with every
// device and nftables table in it, once no socket or file descriptor
// refers to it any more.
func (n *NS) Close() error {
	if n.Handle != nil {
		n.Handle.Close()
		n.Handle = nil
	}
	var errs []error
	if n.ns.IsOpen() {
		if err := n.ns.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close netns %s: %w", n.Name, err))
		}
	}
	if n.Name == "" {
		return errors.Join(errs...)
	}
	if err := netns.DeleteNamed(n.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("delete netns %s: %w", n.Name, err))
	}
	return errors.Join(errs...)
}

// String returns the namespace's name, or "host".
func (n *NS) String() string {
	if n.Name == "" {
		return "host"
	}
	return n.Name
}

// FD returns a file descriptor referring to the namespace, valid until
// Close (for netlink.NsFd and setns).
func (n *NS) FD() int { return int(n.ns) }

// Do runs fn on a locked OS thread that is inside the namespace, and returns
// fn's error. Sockets and devices fn creates belong to the namespace, and
// processes it starts run in it. The calling goroutine never changes
// namespace; a thread that cannot be moved back is left locked, so the Go
// runtime discards it.
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

// createNamed creates the namespace NetnsDir/name on a locked thread and
// moves that thread back to where it was.
func createNamed(name string) (netns.NsHandle, error) {
	if _, err := os.Stat(filepath.Join(NetnsDir, name)); err == nil {
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

// Sysctl writes value to /proc/sys/<key> inside the namespace.
func (n *NS) Sysctl(key, value string) error {
	err := n.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
	if err != nil {
		return fmt.Errorf("sysctl %s=%s in netns %s: %w", key, value, n, err)
	}
	return nil
}

// DisableIPv6 turns IPv6 off on the named device, so that it sends no IPv6
// control traffic of its own (router solicitations, MLD reports). On a
// kernel without IPv6 there is nothing to turn off.
func (n *NS) DisableIPv6(dev string) error {
	err := n.Sysctl("net/ipv6/conf/"+dev+"/disable_ipv6", "1")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
