// SPDX-License-Identifier: Apache-2.0

package maps

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeMap is an in-memory Map that records writes and can fail on demand.
type fakeMap struct {
	name   string
	max    uint32
	data   map[any]any
	puts   int
	failAt int // the failAt-th Put fails (1-based); 0 never
}

func newFake(name string, max uint32) *fakeMap {
	return &fakeMap{name: name, max: max, data: map[any]any{}}
}

func (m *fakeMap) Put(key, value any) error {
	m.puts++
	if m.failAt != 0 && m.puts == m.failAt {
		return fmt.Errorf("%s: injected failure", m.name)
	}
	switch v := value.(type) {
	case *Rule:
		m.data[key] = *v
	case *Ruleset:
		m.data[key] = *v
	case *Binding:
		m.data[key] = *v
	case *Vidx:
		m.data[key] = *v
	case *CVal:
		m.data[key] = *v
	default:
		m.data[key] = v
	}
	return nil
}

func (m *fakeMap) Delete(key any) error {
	if _, ok := m.data[key]; !ok {
		return fmt.Errorf("%s: key %v not found", m.name, key)
	}
	delete(m.data, key)
	return nil
}

func (m *fakeMap) MaxEntries() uint32 { return m.max }

type fakes struct {
	bindings, rulesets, rules, vidx, vals *fakeMap
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestStore(t *testing.T, rules uint32) (*Store, *fakes, *clock) {
	t.Helper()
	f := &fakes{
		bindings: newFake("nwf_bindings", MaxBindings), rulesets: newFake("nwf_rulesets", 4),
		rules: newFake("nwf_rules", rules), vidx: newFake("nwf_vidx", 64), vals: newFake("nwf_vals", 64),
	}
	c := &clock{t: time.Unix(1000, 0)}
	s, err := NewStore(Maps{Bindings: f.bindings, Rulesets: f.rulesets, Rules: f.rules, Vidx: f.vidx, Vals: f.vals},
		Options{Quarantine: time.Second, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return s, f, c
}

// prog returns a program with n L2 out entries, distinguished by id.
func prog(id uint32, n int) [2][2][]Rule {
	var s [2][2][]Rule
	for i := range n {
		s[DirOut][StageL2] = append(s[DirOut][StageL2], Rule{Kind: RKMatch, Action: ActDrop, ID: id*100 + uint32(i)})
	}
	s[DirIn][StageL34] = []Rule{{Kind: RKChainEnd, ID: id}}
	return s
}

func TestStoreLayout(t *testing.T) {
	s, f, _ := newTestStore(t, 32)
	p := prog(1, 3)
	p[DirIn][StageL2] = []Rule{{Kind: RKMatch, NVar: 2, VSlot: 1, NCond: 2,
		Cond: [MaxConds]Cond{{Flags: CFVar, Var: 0}, {Flags: CFVar, Var: 1}}}}
	v := func(x uint64) CVal { return CVal{A: U128{0, x}} }
	inst := [][][]CVal{{{v(1)}}, {{v(2), v(3)}, {v(4), v(5)}}}
	if err := s.Bind(7, BindRequest{ID: 9, OutHook: HookEgress, Mode: ModeShadow, Stages: p, Instances: inst}); err != nil {
		t.Fatal(err)
	}
	b := f.bindings.data[uint32(7)].(Binding)
	if diff := cmp.Diff(Binding{Ruleset: b.Ruleset, Vidx: b.Vidx, ID: 9, OutHook: HookEgress, Mode: ModeShadow,
		Flags: BFCTCache, Gen: b.Gen}, b); diff != "" {
		t.Errorf("binding (-want +got):\n%s", diff)
	}
	if b.Gen == 0 {
		t.Errorf("binding Gen is 0")
	}
	rs := f.rulesets.data[b.Ruleset].(Ruleset)
	// Stages are laid out out/l2, out/l34, in/l2, in/l34.
	wantRS := Ruleset{Start: [2][2]uint32{{0, 3}, {3, 4}}, Len: [2][2]uint32{{3, 0}, {1, 1}}}
	if diff := cmp.Diff(wantRS, rs); diff != "" {
		t.Errorf("ruleset (-want +got):\n%s", diff)
	}
	for d := range 2 {
		for st := range 2 {
			for i, r := range p[d][st] {
				if got := f.rules.data[rs.Start[d][st]+uint32(i)]; !cmp.Equal(got, r) {
					t.Errorf("nwf_rules[%d] = %+v, want %+v", rs.Start[d][st]+uint32(i), got, r)
				}
			}
		}
	}
	// Instance i, value j of slot s: nwf_vals[vidx[s].First + i*nvar + j].
	for sl, insts := range inst {
		x := f.vidx.data[b.Vidx+uint32(sl)].(Vidx)
		if x.Count != uint32(len(insts)) {
			t.Errorf("slot %d count %d, want %d", sl, x.Count, len(insts))
		}
		for i, in := range insts {
			for j, val := range in {
				if got := f.vals.data[x.First+uint32(i*len(in)+j)]; got != val {
					t.Errorf("slot %d instance %d value %d = %v, want %v", sl, i, j, got, val)
				}
			}
		}
	}
}

func TestStoreSharesIdenticalPrograms(t *testing.T) {
	s, f, c := newTestStore(t, 32)
	for i := range uint32(3) {
		if err := s.Bind(i+1, BindRequest{Stages: prog(1, 4)}); err != nil {
			t.Fatal(err)
		}
	}
	if u := s.Usage(); u.Rulesets != 1 || u.Rules != 5 {
		t.Errorf("three bindings of one program: %+v, want 1 ruleset of 5 entries", u)
	}
	rulePuts := f.rules.puts
	// Rebinding all but one keeps the ruleset; the last one retires it.
	for i := range uint32(3) {
		if err := s.Bind(i+1, BindRequest{Stages: prog(2, 2)}); err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(2 * time.Second)
		want := 2
		if i == 2 {
			want = 1
		}
		if u := s.Usage(); u.Rulesets != want {
			t.Errorf("after rebinding %d: %d rulesets, want %d", i+1, u.Rulesets, want)
		}
	}
	if f.rules.puts != rulePuts+3 {
		t.Errorf("rule writes %d, want %d (the new program once)", f.rules.puts-rulePuts, 3)
	}
	if len(f.rulesets.data) != 1 {
		t.Errorf("nwf_rulesets holds %d, want 1", len(f.rulesets.data))
	}
}

// TestStoreQuarantine checks that freed ranges and ruleset ids are reused
// only after the quarantine, and that a quarantined program is revived.
func TestStoreQuarantine(t *testing.T) {
	s, f, c := newTestStore(t, 10)
	if err := s.Bind(1, BindRequest{Stages: prog(1, 4), Instances: [][][]CVal{{{{}}}}}); err != nil {
		t.Fatal(err)
	}
	old, _ := s.Binding(1)
	oldRS, _ := s.Ruleset(old.Ruleset)
	if err := s.Bind(1, BindRequest{Stages: prog(2, 4), Instances: [][][]CVal{{{{}}}}}); err != nil {
		t.Fatal(err)
	}
	cur, _ := s.Binding(1)
	curRS, _ := s.Ruleset(cur.Ruleset)
	if curRS.Start[0][0] < oldRS.Start[0][0]+5 || cur.Vidx == old.Vidx {
		t.Errorf("new program reused a range under quarantine: old %+v %+v, new %+v %+v", old, oldRS, cur, curRS)
	}
	if _, ok := f.rulesets.data[old.Ruleset]; !ok {
		t.Errorf("old ruleset deleted before the quarantine ended")
	}
	// Capacity 10: a third 5-entry program does not fit while both live.
	if err := s.Bind(2, BindRequest{Stages: prog(3, 4)}); err == nil || !strings.Contains(err.Error(), "no free range") {
		t.Errorf("bind over capacity: %v, want a no-free-range error", err)
	}
	// Rebinding the old program inside the quarantine revives it.
	if err := s.Bind(2, BindRequest{Stages: prog(1, 4)}); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Binding(2); b.Ruleset != old.Ruleset {
		t.Errorf("revived program got ruleset %d, want %d", b.Ruleset, old.Ruleset)
	}
	if err := s.Unbind(2); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Second)
	if err := s.Reap(); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.rulesets.data[old.Ruleset]; ok {
		t.Errorf("old ruleset still in nwf_rulesets after the quarantine")
	}
	if err := s.Bind(2, BindRequest{Stages: prog(3, 4)}); err != nil {
		t.Errorf("bind after the quarantine: %v", err)
	}
	if u := s.Usage(); u.Rules != 10 || u.Quarantined != 0 {
		t.Errorf("usage %+v, want 10 rules and nothing quarantined", u)
	}
}

// TestStoreFailures checks that a failed write leaves what is in force
// untouched and leaks nothing.
func TestStoreFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(*fakes) *int
	}{
		{"rule write", func(f *fakes) *int { return &f.rules.failAt }},
		{"ruleset write", func(f *fakes) *int { return &f.rulesets.failAt }},
		{"value write", func(f *fakes) *int { return &f.vals.failAt }},
		{"slot write", func(f *fakes) *int { return &f.vidx.failAt }},
		{"binding write", func(f *fakes) *int { return &f.bindings.failAt }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, c := newTestStore(t, 32)
			inst := [][][]CVal{{{{}}, {{}}}}
			if err := s.Bind(1, BindRequest{Stages: prog(1, 2), Instances: inst}); err != nil {
				t.Fatal(err)
			}
			before, _ := s.Binding(1)
			p := tc.fail(f)
			*p = map[*int]int{&f.rules.failAt: f.rules.puts + 2, &f.rulesets.failAt: f.rulesets.puts + 1,
				&f.vals.failAt: f.vals.puts + 2, &f.vidx.failAt: f.vidx.puts + 1, &f.bindings.failAt: f.bindings.puts + 1}[p]
			err := s.Bind(1, BindRequest{Stages: prog(2, 2), Instances: inst})
			if err == nil || !strings.Contains(err.Error(), "injected failure") {
				t.Fatalf("bind = %v, want the injected failure", err)
			}
			if after, _ := s.Binding(1); after != before || f.bindings.data[uint32(1)] != before {
				t.Errorf("binding changed: %+v, was %+v", after, before)
			}
			c.t = c.t.Add(time.Second)
			if u := s.Usage(); u.Rulesets != 1 || u.Rules != 3 || u.Vidx != 1 || u.Vals != 2 {
				t.Errorf("usage after the failure %+v, want only the first binding's", u)
			}
		})
	}
}

func TestStoreRejects(t *testing.T) {
	long := prog(1, 0)
	long[DirOut][StageL2] = make([]Rule, MaxStageLen+1)
	varRule := func(slot uint32, nvar uint8) [2][2][]Rule {
		var p [2][2][]Rule
		p[DirOut][StageL34] = []Rule{{NVar: nvar, VSlot: slot}}
		return p
	}
	many := make([][]CVal, MaxInstances+1)
	for i := range many {
		many[i] = []CVal{{}}
	}
	for _, tc := range []struct {
		name string
		req  BindRequest
		want string
	}{
		{"stage too long", BindRequest{Stages: long}, "out l2 stage has 8193 entries"},
		{"slot missing", BindRequest{Stages: varRule(1, 1), Instances: [][][]CVal{{{{}}}}}, "variable slot 1 missing"},
		{"wrong value count", BindRequest{Stages: varRule(0, 2), Instances: [][][]CVal{{{{}}}}}, "instances have 1 values, the entry needs 2"},
		{"ragged instances", BindRequest{Instances: [][][]CVal{{{{}}, {{}, {}}}}}, "instance 1 has 2 values"},
		{"too many instances", BindRequest{Instances: [][][]CVal{many}}, "65 instances"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, _ := newTestStore(t, MaxStageLen+8)
			err := s.Bind(3, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("bind = %v, want an error containing %q", err, tc.want)
			}
			if f.rules.puts+f.bindings.puts+f.vals.puts != 0 {
				t.Errorf("a rejected request wrote to the maps")
			}
		})
	}
	s, _, _ := newTestStore(t, 8)
	if err := s.Unbind(5); !errors.Is(err, ErrNotBound) {
		t.Errorf("unbind of an unbound interface = %v, want ErrNotBound", err)
	}
}

func TestAllocator(t *testing.T) {
	a := newAllocator("test", 10)
	x, _ := a.alloc(3)
	y, _ := a.alloc(3)
	z, _ := a.alloc(4)
	if _, err := a.alloc(1); err == nil {
		t.Fatal("alloc from a full allocator succeeded")
	}
	a.release(x)
	a.release(z)
	a.release(y) // merges all three
	if diff := cmp.Diff([]span{{0, 10}}, a.free); diff != "" {
		t.Errorf("free list (-want +got):\n%s", diff)
	}
	if s, err := a.alloc(10); err != nil || s != (span{0, 10}) {
		t.Errorf("alloc(10) = %v, %v after merging", s, err)
	}
}
