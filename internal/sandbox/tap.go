// SPDX-License-Identifier: Apache-2.0

package sandbox

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// maxFrame bounds one frame read.
const maxFrame = 65536

// Tap is a tap device whose file descriptor the caller holds, so that the
// caller plays the VM behind it, as QEMU does with libvirt's vnetN devices:
// [Tap.Send] is a frame the VM sends, [Tap.Recv] a frame delivered to it.
type Tap struct {
	// Name and Index identify the network device in its namespace.
	Name  string
	Index int
	// MAC is the host side's address (the VM uses its own MAC).
	MAC net.HardwareAddr

	f *os.File
}

// AddTap creates the tap device name (IFF_TAP|IFF_NO_PI) in n with the
// host-side address mac, sets it up and keeps its file descriptor. The
// device is not persistent: [Tap.Close] removes it.
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
	tp := &Tap{Name: name, MAC: mac, f: os.NewFile(uintptr(fd), "tap "+name)}
	l, err := n.Handle.LinkByName(name)
	if err == nil {
		tp.Index = l.Attrs().Index
		err = n.Handle.LinkSetHardwareAddr(l, mac)
	}
	if err == nil {
		err = n.Handle.LinkSetUp(l)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("set up tap %s in netns %s: %w", name, n, err), tp.Close())
	}
	return tp, nil
}

// Close closes the file descriptor, which removes the device.
func (tp *Tap) Close() error {
	if err := tp.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("close tap %s: %w", tp.Name, err)
	}
	return nil
}

// Send writes frame as if the VM sent it. The kernel runs the device's
// receive path, TC ingress included, before the write returns.
func (tp *Tap) Send(frame []byte) error {
	if _, err := tp.f.Write(frame); err != nil {
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
	buf := make([]byte, maxFrame)
	n, err := tp.f.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("read from %s: %w", tp.Name, err)
	}
	return buf[:n], nil
}

// Drain discards every frame already queued for the VM.
func (tp *Tap) Drain() error {
	for {
		_, err := tp.Recv(time.Millisecond)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
