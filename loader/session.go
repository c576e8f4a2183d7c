// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nwbpf/nwbpf/maps"
)

// DefaultStateDir is where a Session keeps its state file. It must be a
// regular filesystem (bpffs holds only BPF objects); /run is cleared on
// reboot, as the pins under /sys/fs/bpf are.
const DefaultStateDir = "/run/nwbpf"

// stateFile is the state's file name in the state directory; lockFile
// serialises sessions.
const (
	stateFile    = "state.json"
	lockFile     = "lock"
	stateVersion = 1
)

// ErrNotAttached says a device has no attachment this state knows of.
var ErrNotAttached = errors.New("not attached by nwbpf")

// SessionOptions configure OpenSession.
type SessionOptions struct {
	// PinDir is the root of the pins (DefaultPinDir when empty).
	PinDir string
	// StateDir holds the state file (DefaultStateDir when empty).
	StateDir string
	// Programs loads the classifier (adopting the pinned maps), which
	// Attach needs. Without it only the pinned maps are opened, enough to
	// detach and report status, and much faster (no verifier run).
	Programs bool
}

// Entry describes one entry of a device's compiled program, for listings.
type Entry struct {
	Kind     string `json:"kind"` // match, jump, end
	Chain    string `json:"chain"`
	Priority int    `json:"priority"`
	Action   string `json:"action"`
	Filter   string `json:"filter"`
	Rule     int    `json:"rule"`
	Match    string `json:"match"`
}

// Param is one filter parameter of a binding.
type Param struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// Device is what a Session records for a device it attached: the
// attachment, the binding's identity and the program's entries (the
// counters in nwf_rule_stats are indexed like them).
type Device struct {
	Name      string    `json:"name"`
	Ifindex   int       `json:"ifindex"`
	Kind      string    `json:"kind"`   // the kernel's link type: tuntap, macvtap
	Method    string    `json:"method"` // tcx or clsact
	OutHook   maps.Hook `json:"out_hook"`
	Mode      maps.Mode `json:"mode"`
	BindingID uint32    `json:"binding_id"`
	Owner     string    `json:"owner"`
	OwnerUUID string    `json:"owner_uuid"`
	MAC       string    `json:"mac"`
	Filter    string    `json:"filter"`
	Params    []Param   `json:"params"`
	// Entries lists the program's entries per direction and stage, in
	// the order of nwf_rules.
	Entries  [2][2][]Entry `json:"entries"`
	Attached time.Time     `json:"attached"`
}

// hostState is the state file.
type hostState struct {
	Version int    `json:"version"`
	PinDir  string `json:"pin_dir"`
	// MapID is nwf_bindings' kernel id: a recreated map (pins removed,
	// reboot) is another map, and the rest of the state is void.
	MapID         uint32            `json:"map_id"`
	NextBindingID uint32            `json:"next_binding_id"`
	Store         maps.StoreState   `json:"store"`
	Devices       map[string]Device `json:"devices"`
}

// Session is one control-plane operation on this host's pinned classifier
// (an `nwbpf attach`, `detach` or `status`): it holds the state
// directory's lock, restores the maps.Store from the state file, checks it
// against the pinned maps, and saves the state after every change. The
// Store's allocation state lives in memory only, so a control plane made
// of separate processes carries it from one to the next in the state file.
type Session struct {
	opts  SessionOptions
	lock  *os.File
	l     *Loader // programs, with SessionOptions.Programs
	maps  map[string]*ebpf.Map
	cpus  int
	store *maps.Store
	st    hostState
	// Warnings says what the session found and repaired (a stale state
	// file for recreated maps).
	Warnings []string
}

// sessionMaps are the pinned maps a session works with.
var sessionMaps = []string{"nwf_bindings", "nwf_rulesets", "nwf_rules", "nwf_vidx", "nwf_vals", "nwf_rule_stats", "nwf_drop_stats"}

// OpenSession locks the state directory and opens the pinned classifier:
// loaded (pins adopted or created) with SessionOptions.Programs, else its
// pinned maps, which must exist unless the state knows no device (then
// the session has nothing to work on: Devices is empty). The state file
// must describe the pinned maps: a state file for maps that were since
// recreated empty is discarded (with a warning); a disagreement with maps
// that hold bindings is an error, and nothing is changed.
func OpenSession(opts SessionOptions) (*Session, error) {
	if opts.PinDir == "" {
		opts.PinDir = DefaultPinDir
	}
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(opts.StateDir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open session: lock %s: %w", lock.Name(), err)
	}
	s := &Session{opts: opts, lock: lock, maps: map[string]*ebpf.Map{}}
	if err := s.open(); err != nil {
		s.Close()
		return nil, fmt.Errorf("open session: %w", err)
	}
	return s, nil
}

func (s *Session) open() error {
	st, found, err := readState(filepath.Join(s.opts.StateDir, stateFile))
	if err != nil {
		return err
	}
	if found && st.PinDir != s.opts.PinDir {
		return fmt.Errorf("state dir %s belongs to pin dir %s, not %s", s.opts.StateDir, st.PinDir, s.opts.PinDir)
	}
	if s.opts.Programs {
		s.l, err = Load(Options{PinDir: s.opts.PinDir})
		if err != nil {
			return err
		}
		for _, name := range sessionMaps {
			s.maps[name] = s.l.Map(name)
		}
		s.cpus = s.l.CPUs()
	} else {
		for _, name := range sessionMaps {
			m, err := ebpf.LoadPinnedMap(filepath.Join(s.opts.PinDir, "maps", name), nil)
			if errors.Is(err, os.ErrNotExist) && len(st.Devices) == 0 {
				s.closeMaps()
				s.st = newState(s.opts.PinDir)
				return nil // nothing pinned, nothing known: an empty session
			}
			if err != nil {
				return fmt.Errorf("open pinned map %s: %w", name, err)
			}
			s.maps[name] = m
		}
		if s.cpus, err = ebpf.PossibleCPU(); err != nil {
			return err
		}
	}
	info, err := s.maps["nwf_bindings"].Info()
	if err != nil {
		return fmt.Errorf("nwf_bindings info: %w", err)
	}
	id, _ := info.ID()
	kernel, err := readBindings(s.maps["nwf_bindings"])
	if err != nil {
		return err
	}
	forgot := false
	switch {
	case !found:
		st = newState(s.opts.PinDir)
	case st.MapID != uint32(id) && len(kernel) == 0:
		if len(st.Devices) > 0 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("state file describes maps that no longer exist (pinned maps recreated); forgot %d device(s)", len(st.Devices)))
			forgot = true
		}
		st = newState(s.opts.PinDir)
	case st.MapID != uint32(id):
		return fmt.Errorf("state file %s describes nwf_bindings id %d, the pinned map is id %d and holds %d bindings: remove %s and %s to start over",
			filepath.Join(s.opts.StateDir, stateFile), st.MapID, id, len(kernel), s.opts.PinDir, s.opts.StateDir)
	}
	st.MapID = uint32(id)
	if err := checkBindings(st, kernel); err != nil {
		return fmt.Errorf("pinned maps under %s and state dir %s disagree: %w", s.opts.PinDir, s.opts.StateDir, err)
	}
	s.store, err = maps.RestoreStore(s.storeMaps(), st.Store, maps.Options{})
	if err != nil {
		return err
	}
	s.st = st
	if forgot {
		return s.save()
	}
	return nil
}

func newState(pinDir string) hostState {
	return hostState{Version: stateVersion, PinDir: pinDir, NextBindingID: 1, Devices: map[string]Device{}}
}

func (s *Session) storeMaps() maps.Maps {
	return maps.Maps{
		Bindings: s.maps["nwf_bindings"], Rulesets: s.maps["nwf_rulesets"], Rules: s.maps["nwf_rules"],
		Vidx: s.maps["nwf_vidx"], Vals: s.maps["nwf_vals"], RuleStats: s.maps["nwf_rule_stats"], CPUs: s.cpus,
	}
}

func readState(path string) (hostState, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return hostState{}, false, nil
	}
	if err != nil {
		return hostState{}, false, err
	}
	var st hostState
	if err := json.Unmarshal(data, &st); err != nil {
		return hostState{}, false, fmt.Errorf("state file %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return hostState{}, false, fmt.Errorf("state file %s: version %d, this nwbpf reads %d", path, st.Version, stateVersion)
	}
	if st.Devices == nil {
		st.Devices = map[string]Device{}
	}
	return st, true, nil
}

// readBindings returns every nwf_bindings entry.
func readBindings(m *ebpf.Map) (map[uint32]maps.Binding, error) {
	out := map[uint32]maps.Binding{}
	var k uint32
	var v maps.Binding
	it := m.Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read nwf_bindings: %w", err)
	}
	return out, nil
}

// checkBindings compares the state's bindings with the kernel's.
func checkBindings(st hostState, kernel map[uint32]maps.Binding) error {
	known := map[uint32]bool{}
	for _, b := range st.Store.Bindings {
		known[b.Ifindex] = true
		got, ok := kernel[b.Ifindex]
		if !ok {
			return fmt.Errorf("ifindex %d: bound in the state file, not in nwf_bindings", b.Ifindex)
		}
		if got != b.Value {
			return fmt.Errorf("ifindex %d: nwf_bindings holds %+v, the state file %+v", b.Ifindex, got, b.Value)
		}
	}
	for ifindex := range kernel {
		if !known[ifindex] {
			return fmt.Errorf("ifindex %d: bound in nwf_bindings, unknown to the state file", ifindex)
		}
	}
	return nil
}

// save writes the state file atomically: a temporary file, synced, then
// renamed over the old one.
func (s *Session) save() error {
	s.st.Store = s.store.State()
	data, err := json.MarshalIndent(&s.st, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(s.opts.StateDir, stateFile)
	tmp, err := os.CreateTemp(s.opts.StateDir, stateFile+".*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save state %s: %w", path, err)
	}
	if d, err := os.Open(s.opts.StateDir); err == nil {
		_ = d.Sync() // the rename is durable once the directory is
		d.Close()
	}
	return nil
}

func (s *Session) closeMaps() {
	if s.l == nil {
		for _, m := range s.maps {
			m.Close()
		}
	}
	s.maps = map[string]*ebpf.Map{}
}

// Close releases the classifier's descriptors (pins and attachments stay)
// and the lock.
func (s *Session) Close() error {
	var err error
	if s.l != nil {
		err = s.l.Close()
	}
	s.closeMaps()
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close()) // closing drops the flock
	}
	return err
}

// Devices returns the devices the state knows, sorted by name.
func (s *Session) Devices() []Device {
	out := make([]Device, 0, len(s.st.Devices))
	for _, d := range s.st.Devices {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// AttachRequest is what Session.Attach binds to a device.
type AttachRequest struct {
	// Stages and Instances are the compiled program and the binding's
	// values (compiler.Program.Stages, compiler.Instances).
	Stages    [2][2][]maps.Rule
	Instances [][][]maps.CVal
	Mode      maps.Mode
	// Device describes the binding for Status: owner, MAC, filter,
	// parameters, entries. Name, ifindex, kind, method, hook, binding id
	// and time are filled in by Attach.
	Device Device
	Opts   AttachOptions
}

// Attach attaches the classifier to dev (in the calling thread's network
// namespace) and binds req to it, then saves the state. Attaching comes
// first: an attached, unbound device passes its frames as it did before
// nwbpf, and the binding then takes effect in one map update, so there is
// no moment with half a program; a changed binding switches atomically.
// Attaching the same again changes nothing a frame can see. On error, a
// device that was not attached before is detached again and one that was
// keeps its binding.
func (s *Session) Attach(dev string, req AttachRequest) (*Device, error) {
	if s.l == nil {
		return nil, fmt.Errorf("attach %s: session opened without programs", dev)
	}
	prev, known := s.st.Devices[dev]
	a, err := s.l.Attach(dev, req.Opts)
	if err != nil {
		return nil, err
	}
	id := prev.BindingID
	if !known {
		id = s.st.NextBindingID
		s.st.NextBindingID++
	}
	err = s.store.Bind(uint32(a.Ifindex), maps.BindRequest{
		ID: id, OutHook: a.OutHook, Mode: req.Mode, Stages: req.Stages, Instances: req.Instances,
	})
	if err != nil {
		if !known {
			err = errors.Join(err, s.l.Detach(dev))
		}
		return nil, fmt.Errorf("attach %s: %w", dev, err)
	}
	if known && prev.Ifindex != a.Ifindex {
		// The device was recreated under its old name: its old ifindex
		// is no longer ours to filter.
		if err := s.store.Unbind(uint32(prev.Ifindex)); err != nil && !errors.Is(err, maps.ErrNotBound) {
			return nil, fmt.Errorf("attach %s: unbind old ifindex %d: %w", dev, prev.Ifindex, err)
		}
	}
	d := req.Device
	d.Name, d.Ifindex, d.Kind, d.Method, d.OutHook = dev, a.Ifindex, a.Kind, a.Method.String(), a.OutHook
	d.Mode, d.BindingID, d.Attached = req.Mode, id, time.Now().UTC()
	s.st.Devices[dev] = d
	if err := s.save(); err != nil {
		return nil, fmt.Errorf("attach %s: %w", dev, err)
	}
	return &d, nil
}

// Detach removes the classifier from dev (in the calling thread's network
// namespace), then its binding, and saves the state. A device that
// vanished only loses its pins and binding.
func (s *Session) Detach(dev string) error {
	d, ok := s.st.Devices[dev]
	if !ok {
		return fmt.Errorf("detach %s: %w (state dir %s)", dev, ErrNotAttached, s.opts.StateDir)
	}
	l := s.l
	if l == nil {
		l = &Loader{pinDir: s.opts.PinDir} // Detach needs no program
	}
	if err := l.Detach(dev); err != nil {
		return err
	}
	if err := s.store.Unbind(uint32(d.Ifindex)); err != nil && !errors.Is(err, maps.ErrNotBound) {
		return fmt.Errorf("detach %s: %w", dev, err)
	}
	delete(s.st.Devices, dev)
	if err := s.save(); err != nil {
		return fmt.Errorf("detach %s: %w", dev, err)
	}
	return nil
}

// EntryStatus is one program entry with its counters.
type EntryStatus struct {
	Entry
	Dir     string `json:"dir"`
	Stage   string `json:"stage"`
	Index   int    `json:"index"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// DeviceStatus is a device's record and what the kernel says about it now.
type DeviceStatus struct {
	Device
	// Present says a device of that name and ifindex exists in the
	// caller's network namespace.
	Present bool `json:"present"`
	// Hooks says which hooks have nwbpf's program, ingress then egress
	// (checked for the method the device was attached with).
	Hooks [2]bool `json:"hooks"`
	// Binding is the binding in force (nwf_bindings), zero if none.
	Binding maps.Binding `json:"binding"`
	Bound   bool         `json:"bound"`
	// Rules are the program's entries with their packet and byte
	// counters. Identical programs are stored once, so the counters of
	// guests with the same filter tree are shared, as their rules are.
	Rules []EntryStatus `json:"rules"`
}

// DropStatus is one drop counter (nwf_drop_stats), summed over CPUs.
type DropStatus struct {
	Reason string `json:"reason"`
	Dir    string `json:"dir"`
	maps.DropCount
}

// Status reports every known device with its counters, and the host's
// drop counters.
func (s *Session) Status() ([]DeviceStatus, []DropStatus, error) {
	var out []DeviceStatus
	if len(s.maps) == 0 {
		return nil, nil, nil
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, nil, fmt.Errorf("status: netlink: %w", err)
	}
	defer h.Close()
	for _, d := range s.Devices() {
		ds := DeviceStatus{Device: d, Rules: []EntryStatus{}}
		if lk, err := h.LinkByName(d.Name); err == nil && lk.Attrs().Index == d.Ifindex {
			ds.Present = true
			ds.Hooks, err = s.hooks(h, d)
			if err != nil {
				return nil, nil, fmt.Errorf("status %s: %w", d.Name, err)
			}
		}
		if err := s.maps["nwf_bindings"].Lookup(uint32(d.Ifindex), &ds.Binding); err == nil {
			ds.Bound = true
		} else if !errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, nil, fmt.Errorf("status %s: read nwf_bindings: %w", d.Name, err)
		}
		if ds.Bound {
			rules, err := s.ruleStats(d, ds.Binding.Ruleset)
			if err != nil {
				return nil, nil, fmt.Errorf("status %s: %w", d.Name, err)
			}
			ds.Rules = rules
		}
		out = append(out, ds)
	}
	var drops []DropStatus
	for r := maps.DropReason(0); r < maps.DropReasonMax; r++ {
		for _, dir := range []maps.Dir{maps.DirOut, maps.DirIn} {
			var cs []maps.DropCount
			if err := s.maps["nwf_drop_stats"].Lookup(maps.DropStatsKey(r, dir), &cs); err != nil {
				return nil, nil, fmt.Errorf("status: read nwf_drop_stats: %w", err)
			}
			ds := DropStatus{Reason: r.String(), Dir: dir.String()}
			for _, c := range cs {
				ds.Packets += c.Packets
				ds.Bytes += c.Bytes
				ds.ShadowPackets += c.ShadowPackets
				ds.ShadowBytes += c.ShadowBytes
			}
			drops = append(drops, ds)
		}
	}
	return out, drops, nil
}

// hooks checks which hooks carry nwbpf's program.
func (s *Session) hooks(h *netlink.Handle, d Device) ([2]bool, error) {
	var on [2]bool
	for i, hk := range hooks {
		if d.Method == MethodTCX.String() {
			_, err := os.Stat(filepath.Join(s.opts.PinDir, "links", d.Name, hk.name))
			on[i] = err == nil
			continue
		}
		ok, err := hasOurFilter(h, d.Ifindex, hk.parent)
		if err != nil {
			return on, err
		}
		on[i] = ok
	}
	return on, nil
}

// ruleStats joins a device's program entries with their counters.
func (s *Session) ruleStats(d Device, rsID uint32) ([]EntryStatus, error) {
	var rs maps.Ruleset
	if err := s.maps["nwf_rulesets"].Lookup(rsID, &rs); err != nil {
		return nil, fmt.Errorf("read nwf_rulesets[%d]: %w", rsID, err)
	}
	out := []EntryStatus{}
	for dir := range 2 {
		for st := range 2 {
			entries := d.Entries[dir][st]
			if uint32(len(entries)) != rs.Len[dir][st] {
				return nil, fmt.Errorf("%s %s: the program in force has %d entries, the state file lists %d",
					maps.Dir(dir), maps.Stage(st), rs.Len[dir][st], len(entries))
			}
			for i, e := range entries {
				var cs []maps.Count
				at := rs.Start[dir][st] + uint32(i)
				if err := s.maps["nwf_rule_stats"].Lookup(at, &cs); err != nil {
					return nil, fmt.Errorf("read nwf_rule_stats[%d]: %w", at, err)
				}
				es := EntryStatus{Entry: e, Dir: maps.Dir(dir).String(), Stage: maps.Stage(st).String(), Index: i}
				for _, c := range cs {
					es.Packets += c.Packets
					es.Bytes += c.Bytes
				}
				out = append(out, es)
			}
		}
	}
	return out, nil
}
