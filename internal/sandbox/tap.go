// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VnetHdrLen is the virtio-net header length set on every macvtap queue
// (struct virtio_net_hdr_mrg_rxbuf, as QEMU uses).
const VnetHdrLen = 12

// maxFrame bounds one frame read.
const maxFrame = 65536

// Tap is a tap or macvtap device whose file descriptor the caller holds, so
// that the caller plays the VM behind it, as QEMU does with libvirt's vnetN
// and macvtapN devices: [Tap.Send] is a frame the VM sends, [Tap.Recv] a
// frame delivered to it.
type Tap struct {
	// Name and Index identify the network device in its namespace.
	Name  string
	Index int
	// MAC is the device's address. For a tap it is the host side's
	// address (the VM uses its own MAC); for a macvtap it is the VM's MAC.
	MAC net.HardwareAddr
	// Macvtap is true for a macvtap device.
	Macvtap bool

	ns  *NS
	f   *os.File
	hdr int // bytes of virtio-net header before each frame
}

// AddTap creates the tap device name (IFF_TAP|IFF_NO_PI) in n with the
// host-side address mac, sets it up with IPv6 off and keeps its file
// descriptor. [Tap.Close] removes it.
func (n *NS) AddTap(name string, mac net.HardwareAddr) (*Tap, error) {
	var fd int
	err := n.Do(func() error {
		// The tun file's namespace, and so the device's, is the opener's.
		var err error
		fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err == nil {
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create tap %s in netns %s: %w", name, n, err)
	}
	tp := &Tap{Name: name, MAC: mac, ns: n, f: os.NewFile(uintptr(fd), "tap "+name)}
	l, err := n.Handle.LinkByName(name)
	if err == nil {
		tp.Index = l.Attrs().Index
		err = n.Handle.LinkSetHardwareAddr(l, mac)
	}
	if err == nil {
		err = n.Up(name)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("set up tap %s in netns %s: %w", name, n, err), tp.Close())
	}
	return tp, nil
}

// AddMacvtap creates the macvtap device name on lower (in n) in the given
// mode (netlink.MACVLAN_MODE_BRIDGE, _VEPA, ...), sets it up with IPv6 off,
// and opens its character device with a [VnetHdrLen]-byte virtio-net
// header. [Tap.Close] removes it.
//
// The character device node is made in a private temporary directory from
// the major:minor the namespace's own sysfs reports, and removed once open:
// /dev/tapN is named after the ifindex, which is only unique within one
// namespace, and may be missing without udev.
func (n *NS) AddMacvtap(name string, lower netlink.Link, mode netlink.MacvlanMode) (*Tap, error) {
	mvt := &netlink.Macvtap{Macvlan: netlink.Macvlan{LinkAttrs: linkAttrs(name), Mode: mode}}
	mvt.ParentIndex = lower.Attrs().Index
	if err := n.Handle.LinkAdd(mvt); err != nil {
		return nil, fmt.Errorf("create macvtap %s on %s in netns %s: %w", name, lower.Attrs().Name, n, err)
	}
	tp, err := n.openMacvtap(name)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("macvtap %s in netns %s: %w", name, n, err), n.DelLink(name))
	}
	if err := n.Up(name); err != nil {
		return nil, errors.Join(err, tp.Close())
	}
	return tp, nil
}

// openMacvtap opens the character device of the macvtap name.
func (n *NS) openMacvtap(name string) (*Tap, error) {
	l, err := n.Handle.LinkByName(name)
	if err != nil {
		return nil, err
	}
	tp := &Tap{Name: name, Index: l.Attrs().Index, MAC: l.Attrs().HardwareAddr, Macvtap: true, ns: n, hdr: VnetHdrLen}
	var devt string
	err = n.Do(func() error {
		var err error
		devt, err = readNSSysfs(fmt.Sprintf("class/net/%s/macvtap/tap%d/dev", name, tp.Index))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find its character device: %w", err)
	}
	major, minor, err := parseDevT(devt)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nwbpf-macvtap-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir) // the open descriptor outlives the node
	node := filepath.Join(dir, fmt.Sprintf("tap%d", tp.Index))
	if err := unix.Mknod(node, unix.S_IFCHR|0o600, int(unix.Mkdev(major, minor))); err != nil {
		return nil, fmt.Errorf("mknod %s: %w", node, err)
	}
	fd, err := unix.Open(node, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", node, err)
	}
	tp.f = os.NewFile(uintptr(fd), "macvtap "+name)
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, VnetHdrLen); err != nil {
		return nil, errors.Join(fmt.Errorf("TUNSETVNETHDRSZ: %w", err), tp.f.Close())
	}
	return tp, nil
}

// Close closes the file descriptor, which removes a tap device, and
// deletes the device if it is still there (a macvtap is). A device
// already gone is no error.
func (tp *Tap) Close() error {
	var errs []error
	if err := tp.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		errs = append(errs, fmt.Errorf("close tap %s: %w", tp.Name, err))
	}
	if tp.ns != nil && tp.ns.Handle != nil {
		errs = append(errs, tp.ns.DelLink(tp.Name))
	}
	return errors.Join(errs...)
}

// Send writes frame as if the VM sent it. For a tap, the kernel runs the
// device's receive path, TC ingress included, before the write returns.
func (tp *Tap) Send(frame []byte) error {
	buf := frame
	if tp.hdr > 0 {
		buf = make([]byte, tp.hdr+len(frame))
		copy(buf[tp.hdr:], frame)
	}
	if _, err := tp.f.Write(buf); err != nil {
		return fmt.Errorf("write to %s: %w", tp.Name, err)
	}
	return nil
}

// Recv returns the next frame delivered to the VM, waiting at most timeout.
// When none arrives the error satisfies errors.Is(err, os.ErrDeadlineExceeded).
func (tp *Tap) Recv(timeout time.Duration) ([]byte, error) {
	if err := tp.f.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("set deadline on %s: %w", tp.Name, err)
	}
	buf := make([]byte, tp.hdr+maxFrame)
	n, err := tp.f.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("read from %s: %w", tp.Name, err)
	}
	if n < tp.hdr {
		return nil, fmt.Errorf("read from %s: %d bytes, shorter than the %d-byte virtio-net header", tp.Name, n, tp.hdr)
	}
	return append([]byte(nil), buf[tp.hdr:n]...), nil
}

// Drain discards every frame already queued for the VM.
func (tp *Tap) Drain() error { return Drain(tp) }

// readNSSysfs reads a file from a sysfs instance that belongs to the calling
// thread's network namespace. The host's /sys only shows the devices of the
// namespace that mounted it, so a fresh, detached sysfs mount (never
// attached to any directory) is made and read through its descriptor.
func readNSSysfs(rel string) (string, error) {
	fsfd, err := unix.Fsopen("sysfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("fsopen sysfs: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return "", fmt.Errorf("create sysfs instance: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return "", fmt.Errorf("fsmount sysfs: %w", err)
	}
	defer unix.Close(mfd)
	fd, err := unix.Openat(mfd, rel, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open sysfs %s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	buf := make([]byte, 64)
	k, err := f.Read(buf)
	if err != nil {
		return "", fmt.Errorf("read sysfs %s: %w", rel, err)
	}
	return strings.TrimSpace(string(buf[:k])), nil
}

// parseDevT parses "major:minor".
func parseDevT(s string) (major, minor uint32, err error) {
	a, b, ok := strings.Cut(s, ":")
	ma, err1 := strconv.ParseUint(a, 10, 32)
	mi, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad device number %q", s)
	}
	return uint32(ma), uint32(mi), nil
}
