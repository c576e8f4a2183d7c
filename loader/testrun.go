// SPDX-License-Identifier: Apache-2.0

package loader

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/nwbpf/nwbpf/maps"
)

// LoopbackIfindex is the loopback device's ifindex, the same in every
// network namespace. BPF_PROG_TEST_RUN runs a frame "on" the device its
// context names and refuses an ifindex the caller's namespace does not
// have, except 0 and 1, which mean the loopback; a TestRun binding on it
// filters nothing real, because a TestRun's maps belong to no attached
// program.
const LoopbackIfindex = 1

// TC verdicts the classifier returns (include/uapi/linux/pkt_cls.h).
const (
	TCActOK       = 0
	TCActShot     = 2
	TCActRedirect = 7
)

// testRunCapacity shrinks the big array maps of a private load, which
// holds one binding at a time, not a host's worth: two programs of the
// largest size (the one in force and its replacement, written before the
// old one is released) and as many instances. The full-size maps take
// a few hundred milliseconds to create and zero. The classifier only reads
// entries the Store wrote, so it needs no change: an index past a map's
// end would fail closed as a malformed program.
var testRunCapacity = map[string]uint32{
	"nwf_rules":      2 * 4 * maps.MaxStageLen,
	"nwf_rule_stats": 2 * 4 * maps.MaxStageLen,
	"nwf_vidx":       2 * 4 * maps.MaxStageLen,
	"nwf_vals":       2 * 4 * maps.MaxStageLen,
}

// ErrFrameRefused says BPF_PROG_TEST_RUN cannot run the frame: it is
// shorter than an Ethernet header, or its ethertype says IPv4 or IPv6 and
// the fixed IP header (20 or 40 bytes) is cut off, which the kernel checks
// before the program runs. Such frames can reach a real device's TC hooks;
// only a test on a real device can show what the classifier does with them.
var ErrFrameRefused = errors.New("BPF_PROG_TEST_RUN refuses the frame")

// checkFrame reports frames BPF_PROG_TEST_RUN refuses.
func checkFrame(frame []byte) error {
	const eth = 14
	if len(frame) < eth {
		return fmt.Errorf("%w: %d bytes, shorter than an Ethernet header", ErrFrameRefused, len(frame))
	}
	switch typ := uint16(frame[12])<<8 | uint16(frame[13]); {
	case typ == 0x0800 && len(frame) < eth+20:
		return fmt.Errorf("%w: IPv4 ethertype with %d bytes of IP header, the kernel wants 20", ErrFrameRefused, len(frame)-eth)
	case typ == 0x86dd && len(frame) < eth+40:
		return fmt.Errorf("%w: IPv6 ethertype with %d bytes of IP header, the kernel wants 40", ErrFrameRefused, len(frame)-eth)
	}
	return nil
}

// TestRun is a private load of the classifier for running frames through
// BPF_PROG_TEST_RUN: traced, with maps that are not pinned and programs
// attached nowhere, so its bindings change no traffic and several TestRuns
// (in one process or many) never see each other's state. It is what the
// `nwbpf verdict` command, the conformance harness and the differential
// fuzz test run frames through. Methods are safe for concurrent use; runs
// are serialised, because a run's decision is read back from the per-CPU
// trace.
type TestRun struct {
	mu    sync.Mutex
	l     *Loader
	store *maps.Store
}

// NewTestRun loads a private, traced copy of the classifier.
func NewTestRun() (*TestRun, error) {
	spec, err := loadNwbpf()
	if err != nil {
		return nil, fmt.Errorf("load private classifier: %w", err)
	}
	if err := spec.Variables["nwf_cfg_trace"].Set(uint8(1)); err != nil {
		return nil, fmt.Errorf("load private classifier: set nwf_cfg_trace: %w", err)
	}
	for name, n := range testRunCapacity {
		spec.Maps[name].MaxEntries = n
	}
	// Conntrack as a default Load has it: table size and timeouts.
	if err := configureConntrack(spec, Options{}, ""); err != nil {
		return nil, fmt.Errorf("load private classifier: %w", err)
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("load private classifier: %w", err)
	}
	l := &Loader{cpus: cpus}
	if err := spec.LoadAndAssign(&l.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load private classifier: %+v", ve)
		}
		return nil, fmt.Errorf("load private classifier: %w", err)
	}
	// No quarantine: nothing runs the private maps but this TestRun's own
	// serialised runs, so a replaced range is never read again.
	store, err := maps.NewStore(l.Maps(), maps.Options{Quarantine: -1})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("load private classifier: %w", err)
	}
	return &TestRun{l: l, store: store}, nil
}

// Close releases the private classifier and its maps.
func (r *TestRun) Close() error {
	return r.l.Close()
}

// Map returns one of the private classifier's maps by its C name (to read
// counters, say), or nil.
func (r *TestRun) Map(name string) *ebpf.Map { return loadedMaps(&r.l.objs)[name] }

// CPUs returns the number of possible CPUs: the length of every per-CPU
// value.
func (r *TestRun) CPUs() int { return r.l.cpus }

// Binding returns the binding in force for ifindex.
func (r *TestRun) Binding(ifindex int) (maps.Binding, bool) { return r.store.Binding(uint32(ifindex)) }

// Bind makes ifindex (LoopbackIfindex, or a device of the caller's network
// namespace) evaluate req, replacing what it evaluated before.
func (r *TestRun) Bind(ifindex int, req maps.BindRequest) error {
	if err := r.store.Bind(uint32(ifindex), req); err != nil {
		return fmt.Errorf("test run: %w", err)
	}
	return nil
}

// Unbind removes ifindex's binding.
func (r *TestRun) Unbind(ifindex int) error {
	if err := r.store.Unbind(uint32(ifindex)); err != nil {
		return fmt.Errorf("test run: %w", err)
	}
	return nil
}

// Decision is the classifier's answer for one frame.
type Decision struct {
	// Ret is the TC verdict the program returned (TCActOK, TCActShot,
	// TCActRedirect for an L3/L4 reject that sends an ICMP error).
	Ret uint32
	// Traced is false when the interface has no binding: the classifier
	// passed the frame without evaluating it, and Trace and Pkt are zero.
	Traced bool
	// Trace is the decision as the classifier recorded it: verdict,
	// deciding stage, entry and rule id, drop reason.
	Trace maps.Trace
	// Pkt is the classifier's parse of the frame.
	Pkt maps.Pkt
}

// Run runs frame through the hook that carries direction dir for
// ifindex's binding (ingress for "out" on a tap-like binding) and returns
// the decision. Per-flow state (fragments, connections) carries over from
// earlier runs until ResetState. The kernel refuses some frames
// (ErrFrameRefused).
func (r *TestRun) Run(ifindex int, dir maps.Dir, frame []byte) (Decision, error) {
	b, ok := r.store.Binding(uint32(ifindex))
	if !ok {
		return Decision{}, fmt.Errorf("test run ifindex %d: %w", ifindex, maps.ErrNotBound)
	}
	hook := b.OutHook
	if dir == maps.DirIn {
		hook = 1 - b.OutHook
	}
	return r.RunHook(ifindex, hook, frame)
}

// RunHook runs frame through one hook's program as if it crossed
// ifindex, bound or not. A frame the kernel would refuse is an error
// wrapping ErrFrameRefused.
func (r *TestRun) RunHook(ifindex int, hook maps.Hook, frame []byte) (Decision, error) {
	if err := checkFrame(frame); err != nil {
		return Decision{}, fmt.Errorf("test run ifindex %d: %w", ifindex, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	before, err := r.traces()
	if err != nil {
		return Decision{}, err
	}
	ret, err := r.l.Program(hook).Run(&ebpf.RunOptions{
		Data:    frame,
		Context: skbContext{Ifindex: uint32(ifindex)},
	})
	if err != nil {
		return Decision{}, fmt.Errorf("test run ifindex %d: %w", ifindex, err)
	}
	after, err := r.traces()
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Ret: ret}
	cpu := -1
	for c := range after {
		if c < len(before) && after[c].Seq != before[c].Seq {
			cpu = c
			d.Traced, d.Trace = true, after[c]
		}
	}
	if cpu < 0 {
		return d, nil
	}
	var pkts []maps.Pkt
	if err := r.l.objs.NwfScratch.Lookup(uint32(0), &pkts); err != nil {
		return Decision{}, fmt.Errorf("test run: read nwf_scratch: %w", err)
	}
	if cpu < len(pkts) {
		d.Pkt = pkts[cpu]
	}
	return d, nil
}

func (r *TestRun) traces() ([]maps.Trace, error) {
	var ts []maps.Trace
	if err := r.l.objs.NwfTrace.Lookup(uint32(0), &ts); err != nil {
		return nil, fmt.Errorf("test run: read nwf_trace: %w", err)
	}
	return ts, nil
}

// ResetState forgets every flow, so that the next frame starts from no
// state at all: it empties the first fragments' verdicts (nwf_frags) and
// the conntrack table (Loader.FlushConntrack, nwf_ct2).
func (r *TestRun) ResetState() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := clearMap(r.l.objs.NwfFrags); err != nil {
		return fmt.Errorf("test run: reset nwf_frags: %w", err)
	}
	if err := r.l.FlushConntrack(); err != nil {
		return fmt.Errorf("test run: reset: %w", err)
	}
	return nil
}

// StateMaps names the maps ResetState empties.
func (r *TestRun) StateMaps() []string { return []string{"nwf_frags", "nwf_ct2"} }

// loadedMaps returns the loaded maps by their C names, from the bpf2go
// struct's `ebpf:"name"` tags, so that maps added to the object later are
// found without a change here.
func loadedMaps(objs *nwbpfObjects) map[string]*ebpf.Map {
	out := map[string]*ebpf.Map{}
	v := reflect.ValueOf(&objs.nwbpfMaps).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Tag.Get("ebpf")
		if m, ok := v.Field(i).Interface().(*ebpf.Map); ok && m != nil && name != "" {
			out[name] = m
		}
	}
	return out
}

// clearMap deletes every key of a hash map.
func clearMap(m *ebpf.Map) error {
	for {
		k, err := m.NextKeyBytes(nil)
		if err != nil {
			return err
		}
		if k == nil {
			return nil
		}
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
}

// skbContext is the head of struct __sk_buff up to ifindex: the part of
// the context BPF_PROG_TEST_RUN lets a caller set that the classifier
// reads (the rest stays zero).
type skbContext struct {
	Len, PktType, Mark, QueueMapping, Protocol uint32
	VlanPresent, VlanTCI, VlanProto, Priority  uint32
	IngressIfindex, Ifindex                    uint32
}
