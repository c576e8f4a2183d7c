// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nwbpf/nwbpf/maps"
)

// Method is how the classifier is attached to a device.
type Method uint8

// Attach methods.
const (
	// MethodTCX attaches through TCX links (kernel 6.6 and later), pinned
	// under PinDir/links/<device>/.
	MethodTCX Method = iota
	// MethodClsact adds a direct-action cls_bpf filter to the device's
	// clsact qdisc, for older kernels.
	MethodClsact
)

// String names the method.
func (m Method) String() string {
	switch m {
	case MethodTCX:
		return "tcx"
	case MethodClsact:
		return "clsact"
	}
	return "method?"
}

// The cls_bpf filters nwbpf adds: priority 1 so they run before any other
// filter of the hook, and a handle of their own ("nw") to find them again.
const (
	filterPrio   = 1
	filterHandle = 0x6e77
)

// ErrNoDevice says the device does not exist (or vanished during the
// operation).
var ErrNoDevice = errors.New("no such device")

// ErrDeviceType says the device is neither a tap nor a macvtap.
var ErrDeviceType = errors.New("not a tap or macvtap device")

// AttachOptions tune Attach.
type AttachOptions struct {
	// ForceClsact attaches through clsact even where TCX is available.
	ForceClsact bool
	// AnyDevice accepts a device that is neither a tap nor a macvtap
	// (a veth in tests, say) and treats it like a tap: its TC ingress
	// carries the guest's frames.
	AnyDevice bool
}

// Attachment describes the classifier attached to a device.
type Attachment struct {
	Device  string
	Ifindex int
	// Kind is the kernel's link type: "tuntap", "macvtap", or another
	// with AnyDevice.
	Kind string
	// OutHook is the hook that carries the guest's frames, for the
	// device's maps.Binding.
	OutHook maps.Hook
	Method  Method
}

var hooks = [...]struct {
	hook   maps.Hook
	name   string
	tcx    ebpf.AttachType
	parent uint32
}{
	{maps.HookIngress, "ingress", ebpf.AttachTCXIngress, netlink.HANDLE_MIN_INGRESS},
	{maps.HookEgress, "egress", ebpf.AttachTCXEgress, netlink.HANDLE_MIN_EGRESS},
}

// Attach attaches the classifier to both hooks of device dev, in the
// network namespace of the calling thread (lock an OS thread inside
// another namespace to attach there). The hook that carries the guest's
// frames comes from the kernel's link type: ingress for a tap, egress for
// a macvtap. Attaching again is a no-op, or an atomic program replacement
// when the program changed; switching methods removes the other method's
// attachment after the new one is in place. On error, what this call
// added is removed and what was attached before stays.
func (l *Loader) Attach(dev string, opts AttachOptions) (*Attachment, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("attach %s: netlink: %w", dev, err)
	}
	defer h.Close()
	lk, err := h.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", dev, deviceErr(err))
	}
	a := &Attachment{Device: dev, Ifindex: lk.Attrs().Index, Kind: lk.Type()}
	switch t := lk.(type) {
	case *netlink.Tuntap:
		if t.Mode != netlink.TUNTAP_MODE_TAP {
			return nil, fmt.Errorf("attach %s: a tun device carries no Ethernet frames: %w", dev, ErrDeviceType)
		}
		a.OutHook = maps.HookIngress
	case *netlink.Macvtap:
		a.OutHook = maps.HookEgress
	default:
		if !opts.AnyDevice {
			return nil, fmt.Errorf("attach %s: link type %q: %w", dev, a.Kind, ErrDeviceType)
		}
		a.OutHook = maps.HookIngress
	}

	a.Method = MethodClsact
	if !opts.ForceClsact {
		err := l.attachTCX(a)
		if err == nil {
			a.Method = MethodTCX
			if err := l.detachClsact(h, a); err != nil {
				return nil, fmt.Errorf("attach %s: remove clsact attachment: %w", dev, err)
			}
			return a, nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return nil, err
		}
	}
	if err := l.attachClsact(h, a); err != nil {
		return nil, err
	}
	if err := l.detachTCX(a); err != nil {
		return nil, fmt.Errorf("attach %s: remove tcx attachment: %w", dev, err)
	}
	return a, nil
}

// deviceErr turns the kernel's and netlink's ways of saying a device is
// gone into ErrNoDevice.
func deviceErr(err error) error {
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("%w: %w", ErrNoDevice, err)
	}
	return err
}

func (l *Loader) linkDir(dev string) string { return filepath.Join(l.pinDir, "links", dev) }

// attachTCX attaches both hooks through TCX links pinned under linkDir.
// It returns an error wrapping ebpf.ErrNotSupported when the kernel has no
// TCX (the probe runs on first use, on the real device).
func (l *Loader) attachTCX(a *Attachment) error {
	if l.noTCX != nil {
		return l.noTCX
	}
	dir := l.linkDir(a.Device)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("attach %s: %w", a.Device, err)
	}
	var added []string
	undo := func(err error) error {
		for _, p := range added {
			if lk, lerr := link.LoadPinnedLink(p, nil); lerr == nil {
				_ = lk.Unpin()
				lk.Close()
			}
		}
		return err
	}
	for _, hk := range hooks {
		prog := l.Program(hk.hook)
		path := filepath.Join(dir, hk.name)
		ok, err := l.adoptTCX(path, a.Ifindex, prog)
		if err != nil {
			return undo(fmt.Errorf("attach %s %s: %w", a.Device, hk.name, deviceErr(err)))
		}
		if ok {
			continue
		}
		lk, err := link.AttachTCX(link.TCXOptions{
			Interface: a.Ifindex,
			Program:   prog,
			Attach:    hk.tcx,
			Anchor:    link.Head(),
		})
		if errors.Is(err, ebpf.ErrNotSupported) {
			l.noTCX = err // the probe: this kernel has no TCX
			return undo(fmt.Errorf("attach %s %s: %w", a.Device, hk.name, err))
		}
		if err != nil {
			return undo(fmt.Errorf("attach %s %s: %w", a.Device, hk.name, deviceErr(err)))
		}
		err = lk.Pin(path)
		lk.Close()
		if err != nil {
			return undo(fmt.Errorf("attach %s %s: pin link: %w", a.Device, hk.name, err))
		}
		added = append(added, path)
	}
	return nil
}

// adoptTCX handles a link already pinned at path: one on the same device
// is kept (its program replaced atomically if it changed) and reported
// true; a stale one (a vanished device of the same name) is removed.
func (l *Loader) adoptTCX(path string, ifindex int, prog *ebpf.Program) (bool, error) {
	lk, err := link.LoadPinnedLink(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load pinned link %s: %w", path, err)
	}
	defer lk.Close()
	info, err := lk.Info()
	if err != nil {
		return false, fmt.Errorf("link info %s: %w", path, err)
	}
	if tcx := info.TCX(); tcx == nil || int(tcx.Ifindex) != ifindex {
		return false, lk.Unpin()
	}
	pi, err := prog.Info()
	if err != nil {
		return false, fmt.Errorf("program info: %w", err)
	}
	if id, ok := pi.ID(); ok && id == info.Program {
		return true, nil
	}
	if err := lk.Update(prog); err != nil {
		return false, fmt.Errorf("update link %s: %w", path, err)
	}
	return true, nil
}

// detachTCX removes the device's pinned links, which detaches them.
func (l *Loader) detachTCX(a *Attachment) error {
	dir := l.linkDir(a.Device)
	var errs []error
	for _, hk := range hooks {
		path := filepath.Join(dir, hk.name)
		lk, err := link.LoadPinnedLink(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("load pinned link %s: %w", path, err))
			continue
		}
		if err := lk.Unpin(); err != nil {
			errs = append(errs, fmt.Errorf("unpin %s: %w", path, err))
		}
		if err := lk.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close link %s: %w", path, err))
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// attachClsact adds (or atomically replaces) nwbpf's cls_bpf filter on
// both hooks, creating the clsact qdisc if needed.
func (l *Loader) attachClsact(h *netlink.Handle, a *Attachment) error {
	qd := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: a.Ifindex,
			Handle:    netlink.MakeHandle(0xffff, 0),
			Parent:    netlink.HANDLE_CLSACT,
		},
		QdiscType: "clsact",
	}
	created := false
	if err := h.QdiscAdd(qd); err == nil {
		created = true
	} else if !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("attach %s: add clsact qdisc: %w", a.Device, deviceErr(err))
	}
	var added []uint32
	undo := func(err error) error {
		for _, parent := range added {
			_ = h.FilterDel(ourFilter(a.Ifindex, parent, nil, ""))
		}
		if created {
			_ = h.QdiscDel(qd)
		}
		return err
	}
	for _, hk := range hooks {
		existed, err := hasOurFilter(h, a.Ifindex, hk.parent)
		if err != nil {
			return undo(fmt.Errorf("attach %s %s: %w", a.Device, hk.name, deviceErr(err)))
		}
		prog := l.Program(hk.hook)
		name := "nwf_" + hk.name
		if err := h.FilterReplace(ourFilter(a.Ifindex, hk.parent, prog, name)); err != nil {
			return undo(fmt.Errorf("attach %s %s: add cls_bpf filter: %w", a.Device, hk.name, deviceErr(err)))
		}
		if !existed {
			added = append(added, hk.parent)
		}
	}
	return nil
}

func ourFilter(ifindex int, parent uint32, prog *ebpf.Program, name string) *netlink.BpfFilter {
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex,
			Parent:    parent,
			Handle:    filterHandle,
			Priority:  filterPrio,
			Protocol:  unix.ETH_P_ALL,
		},
		Name:         name,
		DirectAction: true,
	}
	if prog != nil {
		f.Fd = prog.FD()
	}
	return f
}

// hasOurFilter reports whether nwbpf's filter is on the hook.
func hasOurFilter(h *netlink.Handle, ifindex int, parent uint32) (bool, error) {
	fs, err := h.FilterList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}, parent)
	if errors.Is(err, unix.EINVAL) {
		return false, nil // no clsact qdisc
	}
	if err != nil {
		return false, fmt.Errorf("list filters: %w", err)
	}
	for _, f := range fs {
		if isOurs(f) {
			return true, nil
		}
	}
	return false, nil
}

func isOurs(f netlink.Filter) bool {
	b, ok := f.(*netlink.BpfFilter)
	return ok && b.Handle == filterHandle && b.Priority == filterPrio && strings.HasPrefix(b.Name, "nwf_")
}

// detachClsact removes nwbpf's filters from both hooks, and the clsact
// qdisc when no filter of anyone is left on it.
func (l *Loader) detachClsact(h *netlink.Handle, a *Attachment) error {
	left := 0
	for _, hk := range hooks {
		fs, err := h.FilterList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: a.Ifindex}}, hk.parent)
		if errors.Is(err, unix.EINVAL) {
			return nil // no clsact qdisc: nothing of ours
		}
		if err != nil {
			return fmt.Errorf("detach %s %s: list filters: %w", a.Device, hk.name, deviceErr(err))
		}
		for _, f := range fs {
			if !isOurs(f) {
				left++
				continue
			}
			if err := h.FilterDel(f); err != nil {
				return fmt.Errorf("detach %s %s: delete filter: %w", a.Device, hk.name, deviceErr(err))
			}
		}
	}
	if left > 0 {
		return nil
	}
	qds, err := h.QdiscList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: a.Ifindex}})
	if err != nil {
		return fmt.Errorf("detach %s: list qdiscs: %w", a.Device, deviceErr(err))
	}
	for _, q := range qds {
		if q.Type() == "clsact" {
			if err := h.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("detach %s: delete clsact qdisc: %w", a.Device, deviceErr(err))
			}
		}
	}
	return nil
}

// Detach removes everything nwbpf attached to dev, in the calling
// thread's network namespace: its TCX links and its cls_bpf filters (and a
// clsact qdisc left with no filter at all). Other programs and filters on
// the device stay. When the device is gone the kernel has already detached
// the programs, and Detach only removes the pins.
func (l *Loader) Detach(dev string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := &Attachment{Device: dev}
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("detach %s: netlink: %w", dev, err)
	}
	defer h.Close()
	lk, err := h.LinkByName(dev)
	if err != nil {
		if errors.Is(deviceErr(err), ErrNoDevice) {
			if err := l.detachTCX(a); err != nil {
				return fmt.Errorf("detach %s: %w", dev, err)
			}
			return nil
		}
		return fmt.Errorf("detach %s: %w", dev, err)
	}
	a.Ifindex = lk.Attrs().Index
	if err := l.detachTCX(a); err != nil {
		return fmt.Errorf("detach %s: %w", dev, err)
	}
	return l.detachClsact(h, a)
}
