// SPDX-License-Identifier: Apache-2.0

package maps

import (
	"encoding/hex"
	"fmt"
	"sort"
	"time"
)

// Range is a range [Start, Start+Len) of an array map's indexes.
type Range struct {
	Start uint32 `json:"start"`
	Len   uint32 `json:"len"`
}

// StoreState is what a Store knows beyond the maps' contents: which
// entries are in use, by which ruleset or binding, and what waits in
// quarantine. The maps outlive the process (they are pinned); a control
// plane that runs as separate processes saves a StoreState with every
// change and restores the Store from it (RestoreStore), so that the next
// process writes only into free entries. It marshals to JSON.
type StoreState struct {
	NextID   uint32         `json:"next_id"`
	Rulesets []RulesetState `json:"rulesets"`
	Bindings []BindingState `json:"bindings"`
	Pending  []PendingState `json:"pending,omitempty"`
}

// RulesetState is one stored program.
type RulesetState struct {
	ID     uint32    `json:"id"`
	Digest string    `json:"digest"` // hex SHA-256 of the stages
	Rules  Range     `json:"rules"`  // its nwf_rules entries
	Value  Ruleset   `json:"value"`  // as in nwf_rulesets
	Until  time.Time `json:"until"`  // unreferenced: deleted after this time
}

// BindingState is one bound interface.
type BindingState struct {
	Ifindex uint32  `json:"ifindex"`
	Value   Binding `json:"value"` // as in nwf_bindings
	Vidx    Range   `json:"vidx"`
	Vals    Range   `json:"vals"`
}

// PendingState is a quarantined pair of instance ranges.
type PendingState struct {
	Until time.Time `json:"until"`
	Vidx  Range     `json:"vidx"`
	Vals  Range     `json:"vals"`
}

// State returns the Store's state, sorted (rulesets by id, bindings by
// ifindex) so that equal states marshal alike.
func (s *Store) State() StoreState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := StoreState{NextID: s.nextID, Rulesets: []RulesetState{}, Bindings: []BindingState{}}
	for _, rs := range s.byID {
		st.Rulesets = append(st.Rulesets, RulesetState{
			ID: rs.id, Digest: hex.EncodeToString(rs.digest[:]), Rules: Range(rs.rules), Value: rs.val, Until: rs.until,
		})
	}
	sort.Slice(st.Rulesets, func(i, j int) bool { return st.Rulesets[i].ID < st.Rulesets[j].ID })
	for ifindex, b := range s.bindings {
		st.Bindings = append(st.Bindings, BindingState{Ifindex: ifindex, Value: b.val, Vidx: Range(b.vidx), Vals: Range(b.vals)})
	}
	sort.Slice(st.Bindings, func(i, j int) bool { return st.Bindings[i].Ifindex < st.Bindings[j].Ifindex })
	for _, q := range s.pending {
		st.Pending = append(st.Pending, PendingState{Until: q.until, Vidx: Range(q.vidx), Vals: Range(q.vals)})
	}
	return st
}

// RestoreStore returns a Store over m, whose contents st describes (what
// State returned for the Store that wrote them). It checks that st is
// consistent with itself and with the maps' capacities: every range inside
// its map, no two in-use ranges overlapping, every binding naming a stored
// ruleset, reference counts as the bindings give them. It does not read
// the maps; the caller checks that they are the ones st was saved for.
func RestoreStore(m Maps, st StoreState, opts Options) (*Store, error) {
	s, err := NewStore(m, opts)
	if err != nil {
		return nil, fmt.Errorf("restore store: %w", err)
	}
	fail := func(format string, args ...any) (*Store, error) {
		return nil, fmt.Errorf("restore store: "+format, args...)
	}
	s.nextID = st.NextID
	for _, r := range st.Rulesets {
		if r.ID == 0 || s.byID[r.ID] != nil {
			return fail("ruleset id %d: zero or repeated", r.ID)
		}
		raw, err := hex.DecodeString(r.Digest)
		if err != nil || len(raw) != len(ruleset{}.digest) {
			return fail("ruleset %d: bad digest %q", r.ID, r.Digest)
		}
		rs := &ruleset{id: r.ID, rules: span(r.Rules), val: r.Value, until: r.Until}
		copy(rs.digest[:], raw)
		if s.byDigest[rs.digest] != nil {
			return fail("ruleset %d: same program as ruleset %d", r.ID, s.byDigest[rs.digest].id)
		}
		if err := s.rules.take(rs.rules); err != nil {
			return fail("ruleset %d: %w", r.ID, err)
		}
		if err := checkRulesetRange(rs); err != nil {
			return fail("ruleset %d: %w", r.ID, err)
		}
		s.byID[rs.id] = rs
		s.byDigest[rs.digest] = rs
	}
	for _, b := range st.Bindings {
		if s.bindings[b.Ifindex] != nil {
			return fail("ifindex %d bound twice", b.Ifindex)
		}
		rs := s.byID[b.Value.Ruleset]
		if rs == nil {
			return fail("ifindex %d: ruleset %d not stored", b.Ifindex, b.Value.Ruleset)
		}
		if b.Vidx.Len > 0 && b.Value.Vidx != b.Vidx.Start {
			return fail("ifindex %d: binding's vidx base %d is not its range's start %d", b.Ifindex, b.Value.Vidx, b.Vidx.Start)
		}
		if err := s.vidx.take(span(b.Vidx)); err != nil {
			return fail("ifindex %d: %w", b.Ifindex, err)
		}
		if err := s.vals.take(span(b.Vals)); err != nil {
			return fail("ifindex %d: %w", b.Ifindex, err)
		}
		rs.refs++
		s.bindings[b.Ifindex] = &binding{val: b.Value, rs: rs, vidx: span(b.Vidx), vals: span(b.Vals)}
	}
	for i, q := range st.Pending {
		if err := s.vidx.take(span(q.Vidx)); err != nil {
			return fail("quarantined range %d: %w", i, err)
		}
		if err := s.vals.take(span(q.Vals)); err != nil {
			return fail("quarantined range %d: %w", i, err)
		}
		s.pending = append(s.pending, quarantined{until: q.Until, vidx: span(q.Vidx), vals: span(q.Vals)})
	}
	return s, nil
}

// checkRulesetRange checks that a ruleset's stages lie in its range.
func checkRulesetRange(rs *ruleset) error {
	var n uint64
	for d := range 2 {
		for st := range 2 {
			start, l := uint64(rs.val.Start[d][st]), uint64(rs.val.Len[d][st])
			if l > 0 && (start < uint64(rs.rules.Start) || start+l > uint64(rs.rules.end())) {
				return fmt.Errorf("%s %s stage [%d, %d) outside its range [%d, %d)", Dir(d), Stage(st), start, start+l, rs.rules.Start, rs.rules.end())
			}
			n += l
		}
	}
	if n != uint64(rs.rules.Len) {
		return fmt.Errorf("stages hold %d entries, its range %d", n, rs.rules.Len)
	}
	return nil
}

// take marks s as in use; it must lie wholly in one free range.
func (a *allocator) take(s span) error {
	if s.Len == 0 {
		return nil
	}
	if uint64(s.Start)+uint64(s.Len) > uint64(a.cap) {
		return fmt.Errorf("%s: range [%d, %d) past the map's %d entries", a.name, s.Start, uint64(s.Start)+uint64(s.Len), a.cap)
	}
	for i, f := range a.free {
		if s.Start < f.Start || s.end() > f.end() {
			continue
		}
		var repl []span
		if s.Start > f.Start {
			repl = append(repl, span{f.Start, s.Start - f.Start})
		}
		if s.end() < f.end() {
			repl = append(repl, span{s.end(), f.end() - s.end()})
		}
		a.free = append(a.free[:i], append(repl, a.free[i+1:]...)...)
		return nil
	}
	return fmt.Errorf("%s: range [%d, %d) overlaps one in use", a.name, s.Start, s.end())
}
