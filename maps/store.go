// SPDX-License-Identifier: Apache-2.0

package maps

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Map is the part of a BPF map the Store writes through. *ebpf.Map from
// github.com/cilium/ebpf satisfies it; the Store itself makes no syscalls.
type Map interface {
	Put(key, value any) error
	Delete(key any) error
	MaxEntries() uint32
}

// Maps are the classifier's maps a Store writes.
type Maps struct {
	Bindings Map // nwf_bindings
	Rulesets Map // nwf_rulesets
	Rules    Map // nwf_rules
	Vidx     Map // nwf_vidx
	Vals     Map // nwf_vals
	// RuleStats (nwf_rule_stats, per-CPU) is optional: when set, the
	// counters of a range are zeroed before a new ruleset is written into
	// it, with CPUs values per entry.
	RuleStats Map
	CPUs      int
}

// DefaultQuarantine is how long a freed range stays unused. A classifier
// run holds the binding it looked up for the length of one frame, under
// RCU; the control plane cannot wait for that grace period, so it waits
// far longer than any frame's evaluation (bounded by bpf_loop's step limit)
// before a range or a ruleset id can be reused.
const DefaultQuarantine = 5 * time.Second

// Options tune a Store.
type Options struct {
	// Quarantine overrides DefaultQuarantine (a negative value means no
	// quarantine at all, for tests that check reuse).
	Quarantine time.Duration
	// Now overrides time.Now, for tests.
	Now func() time.Time
}

// BindRequest is what a binding needs: the compiled program's stages
// (compiler.Program.Stages: Stages[dir][stage], jump targets relative to
// the stage) and the binding's instances (compiler.Instances:
// [slot][instance][value]).
type BindRequest struct {
	ID        uint32 // binding id, for logs and metrics
	OutHook   Hook   // the TC hook that carries the VM's frames
	Mode      Mode
	Stages    [2][2][]Rule
	Instances [][][]CVal
}

// ruleset is one stored compiled program, shared by every binding whose
// program is identical.
type ruleset struct {
	id     uint32
	digest [sha256.Size]byte
	rules  span
	val    Ruleset
	refs   int
	until  time.Time // refs == 0: deleted after this time
}

// binding is what the Store wrote for one interface.
type binding struct {
	val        Binding
	rs         *ruleset
	vidx, vals span
}

// quarantined ranges wait here until no classifier run can read them.
type quarantined struct {
	until      time.Time
	vidx, vals span
}

// Store writes rulesets and bindings into the classifier's maps, so that a
// frame is always evaluated against one whole, consistent program: a
// ruleset is written into free entries first, and a binding switches to it
// (ruleset id and instance base together) in one nwf_bindings update.
// Identical programs are stored once and reference-counted. Methods are
// safe for concurrent use.
type Store struct {
	mu         sync.Mutex
	m          Maps
	quarantine time.Duration
	now        func() time.Time

	rules, vidx, vals *allocator
	byDigest          map[[sha256.Size]byte]*ruleset
	byID              map[uint32]*ruleset
	bindings          map[uint32]*binding
	pending           []quarantined
	nextID            uint32
	gen               uint64 // last Binding.Gen written
}

// NewStore returns a Store that writes into m, which it assumes empty.
func NewStore(m Maps, opts Options) (*Store, error) {
	for _, x := range []struct {
		name string
		m    Map
	}{
		{"nwf_bindings", m.Bindings}, {"nwf_rulesets", m.Rulesets},
		{"nwf_rules", m.Rules}, {"nwf_vidx", m.Vidx}, {"nwf_vals", m.Vals},
	} {
		if x.m == nil {
			return nil, fmt.Errorf("new store: map %s missing", x.name)
		}
	}
	if m.RuleStats != nil && m.CPUs <= 0 {
		return nil, fmt.Errorf("new store: nwf_rule_stats needs a CPU count, got %d", m.CPUs)
	}
	s := &Store{
		m:          m,
		quarantine: DefaultQuarantine,
		now:        time.Now,
		rules:      newAllocator("nwf_rules", m.Rules.MaxEntries()),
		vidx:       newAllocator("nwf_vidx", m.Vidx.MaxEntries()),
		vals:       newAllocator("nwf_vals", m.Vals.MaxEntries()),
		byDigest:   map[[sha256.Size]byte]*ruleset{},
		byID:       map[uint32]*ruleset{},
		bindings:   map[uint32]*binding{},
		nextID:     1,
	}
	if opts.Quarantine != 0 {
		s.quarantine = max(opts.Quarantine, 0)
	}
	if opts.Now != nil {
		s.now = opts.Now
	}
	return s, nil
}

// Bind makes ifindex evaluate req: it stores req's program (or shares an
// identical stored one), writes the instances into fresh entries and then
// replaces the interface's nwf_bindings value in one update. The previous
// program and instances of ifindex are released after the quarantine. On
// error nothing in force changes.
func (s *Store) Bind(ifindex uint32, req BindRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reap()
	if err := checkRequest(&req); err != nil {
		return fmt.Errorf("bind ifindex %d: %w", ifindex, err)
	}
	rs, err := s.acquire(&req.Stages)
	if err != nil {
		return fmt.Errorf("bind ifindex %d: %w", ifindex, err)
	}
	vidx, vals, err := s.writeInstances(req.Instances)
	if err != nil {
		s.unref(rs)
		return fmt.Errorf("bind ifindex %d: %w", ifindex, err)
	}
	b := &binding{
		val: Binding{Ruleset: rs.id, Vidx: vidx.Start, ID: req.ID, OutHook: req.OutHook, Mode: req.Mode,
			Flags: bindingFlags(&req.Stages), Gen: s.nextGen()},
		rs:   rs,
		vidx: vidx,
		vals: vals,
	}
	if err := s.m.Bindings.Put(ifindex, &b.val); err != nil {
		// Never referenced: the ranges are free at once.
		s.vidx.release(vidx)
		s.vals.release(vals)
		s.unref(rs)
		return fmt.Errorf("bind ifindex %d: write nwf_bindings: %w", ifindex, err)
	}
	if old := s.bindings[ifindex]; old != nil {
		s.retire(old)
	}
	s.bindings[ifindex] = b
	return nil
}

// Unbind removes ifindex's binding: from then on the classifier passes the
// interface's frames unfiltered, so detach it first. Its program and
// instances are released after the quarantine.
func (s *Store) Unbind(ifindex uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reap()
	b := s.bindings[ifindex]
	if b == nil {
		return fmt.Errorf("unbind ifindex %d: %w", ifindex, ErrNotBound)
	}
	if err := s.m.Bindings.Delete(ifindex); err != nil {
		return fmt.Errorf("unbind ifindex %d: delete from nwf_bindings: %w", ifindex, err)
	}
	delete(s.bindings, ifindex)
	s.retire(b)
	return nil
}

// ErrNotBound says an interface has no binding.
var ErrNotBound = errors.New("not bound")

// Binding returns the value in force for ifindex.
func (s *Store) Binding(ifindex uint32) (Binding, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bindings[ifindex]
	if b == nil {
		return Binding{}, false
	}
	return b.val, true
}

// Ruleset returns the stored ruleset id, as in nwf_rulesets.
func (s *Store) Ruleset(id uint32) (Ruleset, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.byID[id]
	if rs == nil {
		return Ruleset{}, false
	}
	return rs.val, true
}

// Usage counts what a Store holds.
type Usage struct {
	Bindings    int // interfaces bound
	Rulesets    int // stored programs, quarantined ones included
	Rules       uint64
	Vidx        uint64
	Vals        uint64
	Quarantined int // ranges and rulesets waiting for their quarantine
}

// Usage reports the Store's use of the maps, after releasing what is due.
func (s *Store) Usage() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reap()
	u := Usage{
		Bindings: len(s.bindings),
		Rulesets: len(s.byID),
		Rules:    uint64(s.rules.cap) - s.rules.available(),
		Vidx:     uint64(s.vidx.cap) - s.vidx.available(),
		Vals:     uint64(s.vals.cap) - s.vals.available(),
	}
	u.Quarantined = len(s.pending)
	for _, rs := range s.byID {
		if rs.refs == 0 {
			u.Quarantined++
		}
	}
	return u
}

// Reap releases the ranges and rulesets whose quarantine is over. Every
// other method reaps too; a long idle daemon may call it periodically.
func (s *Store) Reap() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reap()
}

func (s *Store) reap() error {
	now := s.now()
	keep := s.pending[:0]
	for _, q := range s.pending {
		if now.Before(q.until) {
			keep = append(keep, q)
			continue
		}
		s.vidx.release(q.vidx)
		s.vals.release(q.vals)
	}
	s.pending = keep
	var errs []error
	for id, rs := range s.byID {
		if rs.refs > 0 || now.Before(rs.until) {
			continue
		}
		if err := s.m.Rulesets.Delete(id); err != nil {
			errs = append(errs, fmt.Errorf("delete ruleset %d: %w", id, err))
			continue
		}
		delete(s.byID, id)
		delete(s.byDigest, rs.digest)
		s.rules.release(rs.rules)
	}
	return errors.Join(errs...)
}

// retire quarantines what a replaced or removed binding used.
func (s *Store) retire(b *binding) {
	s.pending = append(s.pending, quarantined{until: s.now().Add(s.quarantine), vidx: b.vidx, vals: b.vals})
	s.unref(b.rs)
}

// unref drops a reference; the last one quarantines the ruleset.
func (s *Store) unref(rs *ruleset) {
	rs.refs--
	if rs.refs == 0 {
		rs.until = s.now().Add(s.quarantine)
	}
}

// acquire returns the stored ruleset for stages, writing it if new.
func (s *Store) acquire(stages *[2][2][]Rule) (*ruleset, error) {
	d := digest(stages)
	if rs := s.byDigest[d]; rs != nil {
		rs.refs++ // revives a quarantined one too
		return rs, nil
	}
	if len(s.byID) >= int(s.m.Rulesets.MaxEntries()) {
		return nil, fmt.Errorf("nwf_rulesets full (%d rulesets)", len(s.byID))
	}
	n := 0
	for d := range 2 {
		for st := range 2 {
			n += len(stages[d][st])
		}
	}
	sp, err := s.rules.alloc(n)
	if err != nil {
		return nil, err
	}
	rs := &ruleset{id: s.newID(), digest: d, rules: sp, refs: 1}
	at := sp.Start
	for d := range 2 {
		for st := range 2 {
			rs.val.Start[d][st] = at
			rs.val.Len[d][st] = uint32(len(stages[d][st]))
			for i := range stages[d][st] {
				if err := s.writeRule(at, &stages[d][st][i]); err != nil {
					s.rules.release(sp)
					return nil, err
				}
				at++
			}
		}
	}
	if err := s.m.Rulesets.Put(rs.id, &rs.val); err != nil {
		s.rules.release(sp)
		return nil, fmt.Errorf("write nwf_rulesets[%d]: %w", rs.id, err)
	}
	s.byID[rs.id] = rs
	s.byDigest[d] = rs
	return rs, nil
}

func (s *Store) writeRule(at uint32, r *Rule) error {
	if s.m.RuleStats != nil {
		if err := s.m.RuleStats.Put(at, make([]Count, s.m.CPUs)); err != nil {
			return fmt.Errorf("zero nwf_rule_stats[%d]: %w", at, err)
		}
	}
	if err := s.m.Rules.Put(at, r); err != nil {
		return fmt.Errorf("write nwf_rules[%d]: %w", at, err)
	}
	return nil
}

// bindingFlags are the BF* flags of a binding running stages.
func bindingFlags(stages *[2][2][]Rule) uint8 {
	if FlowInvariant(stages) {
		return BFCTCache
	}
	return 0
}

// nextGen returns a Binding.Gen no earlier binding value had, in this
// Store or (the wall clock in ns being its floor) in an earlier daemon's
// Store over the same pinned maps, so that no flow's cached verdict is
// taken for a new binding value.
func (s *Store) nextGen() uint64 {
	s.gen = max(s.gen+1, uint64(s.now().UnixNano()))
	return s.gen
}

// newID returns a ruleset id not in use (ids are never 0).
func (s *Store) newID() uint32 {
	for s.nextID == 0 || s.byID[s.nextID] != nil {
		s.nextID++
	}
	id := s.nextID
	s.nextID++
	return id
}

// writeInstances stores a binding's instances in fresh nwf_vals and
// nwf_vidx ranges: slot i is nwf_vidx[vidx.Start+i].
func (s *Store) writeInstances(inst [][][]CVal) (vidx, vals span, err error) {
	n := 0
	for _, slot := range inst {
		for _, in := range slot {
			n += len(in)
		}
	}
	if vals, err = s.vals.alloc(n); err != nil {
		return span{}, span{}, err
	}
	if vidx, err = s.vidx.alloc(len(inst)); err != nil {
		s.vals.release(vals)
		return span{}, span{}, err
	}
	undo := func(e error) (span, span, error) {
		s.vals.release(vals)
		s.vidx.release(vidx)
		return span{}, span{}, e
	}
	at := vals.Start
	for i, slot := range inst {
		x := Vidx{First: at, Count: uint32(len(slot))}
		for _, in := range slot {
			for j := range in {
				if err := s.m.Vals.Put(at, &in[j]); err != nil {
					return undo(fmt.Errorf("write nwf_vals[%d]: %w", at, err))
				}
				at++
			}
		}
		if err := s.m.Vidx.Put(vidx.Start+uint32(i), &x); err != nil {
			return undo(fmt.Errorf("write nwf_vidx[%d]: %w", vidx.Start+uint32(i), err))
		}
	}
	return vidx, vals, nil
}

// checkRequest checks what the layout depends on: stage sizes and that
// every variable rule finds its slot with instances of its NVar values.
// The semantics of the entries are the classifier's to judge (it fails
// closed on a malformed entry).
func checkRequest(req *BindRequest) error {
	for d := range 2 {
		for st := range 2 {
			if n := len(req.Stages[d][st]); n > MaxStageLen {
				return fmt.Errorf("%s %s stage has %d entries, at most %d", Dir(d), Stage(st), n, MaxStageLen)
			}
		}
	}
	width := make([]int, len(req.Instances)) // values per instance, -1 unknown
	for i, slot := range req.Instances {
		if len(slot) > MaxInstances {
			return fmt.Errorf("variable slot %d has %d instances, at most %d", i, len(slot), MaxInstances)
		}
		width[i] = -1
		for k, in := range slot {
			if width[i] >= 0 && len(in) != width[i] {
				return fmt.Errorf("variable slot %d: instance %d has %d values, instance 0 has %d", i, k, len(in), width[i])
			}
			width[i] = len(in)
		}
	}
	for d := range 2 {
		for st := range 2 {
			for i, r := range req.Stages[d][st] {
				if r.NVar == 0 {
					continue
				}
				if int64(r.VSlot) >= int64(len(req.Instances)) {
					return fmt.Errorf("%s %s entry %d: variable slot %d missing (%d slots)", Dir(d), Stage(st), i, r.VSlot, len(req.Instances))
				}
				if w := width[r.VSlot]; w >= 0 && w != int(r.NVar) {
					return fmt.Errorf("%s %s entry %d: slot %d instances have %d values, the entry needs %d", Dir(d), Stage(st), i, r.VSlot, w, r.NVar)
				}
			}
		}
	}
	return nil
}

// digest identifies a program by its stages' binary encoding.
func digest(stages *[2][2][]Rule) [sha256.Size]byte {
	var buf bytes.Buffer
	for d := range 2 {
		for st := range 2 {
			_ = binary.Write(&buf, binary.LittleEndian, uint32(len(stages[d][st])))
			// Rule is fixed-size: binary.Write cannot fail on it.
			_ = binary.Write(&buf, binary.LittleEndian, stages[d][st])
		}
	}
	return sha256.Sum256(buf.Bytes())
}
